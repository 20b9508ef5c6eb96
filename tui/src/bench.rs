//! `demod-voice bench`: load time, real-time factor and time to first audio on a fixed paragraph.
//!
//! `tests/bench/piper_tts_bench.py` measures the reference `piper-tts` the same way (same paragraph, voice,
//! runtime version and threads), so the two can be compared line by line in the README.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use demod_voice_core::piper::SynthesisOptions;
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::context::Context;

/// The benchmark paragraph (also in `tests/bench/paragraph.txt`, which the Python side reads).
pub const PARAGRAPH: &str = include_str!("../../tests/bench/paragraph.txt");

#[derive(Serialize)]
struct BenchReport {
    voice: String,
    provider: String,
    threads: usize,
    onnxruntime: String,
    load_seconds: f64,
    audio_seconds: f64,
    synth_seconds: f64,
    real_time_factor: f64,
    first_audio_seconds: f64,
    runs: usize,
}

pub fn bench(ctx: &Context, args: BenchArgs) -> Result<()> {
    let runtime = ctx.runtime()?;
    // espeak and the model path are resolved before timing so only the model load is measured.
    let model = ctx.voice_path(args.voice.voice.as_deref())?;
    let _ = ctx.espeak()?;
    let options = ctx.session_options();
    let started = Instant::now();
    let voice = ctx.load_voice(Some(&model.display().to_string()))?;
    let load_seconds = started.elapsed().as_secs_f64();

    let synth = SynthesisOptions::default();
    // One warm-up pass so every run sees a warmed session (as the Python side does).
    voice.synthesize(PARAGRAPH, &synth, |_| Ok::<(), anyhow::Error>(()))?;
    let mut best: Option<(f64, f64, f64)> = None;
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let mut first_audio = None;
        let mut samples = 0usize;
        voice.synthesize(PARAGRAPH, &synth, |audio| {
            first_audio.get_or_insert_with(|| started.elapsed().as_secs_f64());
            samples += audio.samples.len();
            Ok::<(), anyhow::Error>(())
        })?;
        let total = started.elapsed().as_secs_f64();
        let audio_seconds = samples as f64 / f64::from(voice.sample_rate());
        let run = (total, audio_seconds, first_audio.unwrap_or(total));
        if best.is_none_or(|b| run.0 < b.0) {
            best = Some(run);
        }
    }
    let (synth_seconds, audio_seconds, first_audio_seconds) = best.unwrap_or_default();
    let report = BenchReport {
        voice: voice.name.clone(),
        provider: voice.provider(),
        threads: options.intra_threads.unwrap_or_else(demod_voice_core::runtime::physical_cores),
        onnxruntime: runtime.version.clone(),
        load_seconds,
        audio_seconds,
        synth_seconds,
        real_time_factor: synth_seconds / audio_seconds.max(1e-9),
        first_audio_seconds,
        runs: args.runs.max(1),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "voice              {} ({}, {} threads, ONNX Runtime {})",
            report.voice, report.provider, report.threads, report.onnxruntime
        )?;
        writeln!(out, "load               {:.3} s", report.load_seconds)?;
        writeln!(
            out,
            "synthesis          {:.3} s for {:.2} s of audio (best of {})",
            report.synth_seconds, report.audio_seconds, report.runs
        )?;
        writeln!(out, "real-time factor   {:.4} (lower is faster)", report.real_time_factor)?;
        writeln!(out, "time to first audio {:.3} s", report.first_audio_seconds)?;
    }
    Ok(())
}
