//! `demod-voice bench`: load time, real-time factor and time to first audio on a fixed paragraph.
//!
//! `tests/bench/piper_tts_bench.py` measures the reference `piper-tts` the same way (same paragraph, voice,
//! runtime version and threads), so the two can be compared line by line in the README.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use demod_voice_core::pipeline::Speech;
use demod_voice_core::piper::SynthesisOptions;
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::context::Context;

/// The benchmark paragraph (also in `tests/bench/paragraph.txt`, which the Python side reads).
pub const PARAGRAPH: &str = include_str!("../../../tests/bench/paragraph.txt");

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

pub fn bench(ctx: &mut Context, args: BenchArgs) -> Result<()> {
    if args.realtime {
        return bench_realtime(ctx, &args);
    }
    if args.app_frame {
        return bench_app_frame(&args);
    }
    if args.speak_first_audio {
        return bench_speak_first_audio(ctx, &args);
    }
    if args.soak {
        return bench_soak(&args);
    }
    let runtime = ctx.settings.runtime()?;
    // espeak and the model path are resolved before timing so only the model load is measured.
    ctx.set_voice_args(&args.voice)?;
    let model = ctx.settings.voice_path(None)?;
    let _ = ctx.settings.espeak()?;
    let options = ctx.settings.session_options();
    let started = Instant::now();
    let voice = ctx.settings.load_voice(Some(&model.display().to_string()))?;
    let load_seconds = started.elapsed().as_secs_f64();

    // The voice's own defaults (no preset, converter or resampling), as piper-tts is measured, through the same
    // pipeline every command uses.
    let speech = Speech {
        voice: &voice,
        options: SynthesisOptions::default(),
        converter: None,
        output_rate_hz: voice.sample_rate(),
    };
    // One warm-up pass so every run sees a warmed session (as the Python side does).
    speech.run(PARAGRAPH, |_| Ok::<(), anyhow::Error>(()))?;
    let mut best: Option<(f64, f64, f64)> = None;
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let mut first_audio = None;
        let spoken = speech.run(PARAGRAPH, |_| {
            first_audio.get_or_insert_with(|| started.elapsed().as_secs_f64());
            Ok::<(), anyhow::Error>(())
        })?;
        let total = started.elapsed().as_secs_f64();
        let run = (total, spoken.seconds(), first_audio.unwrap_or(total));
        if best.is_none_or(|b| run.0 < b.0) {
            best = Some(run);
        }
    }
    let (synth_seconds, audio_seconds, first_audio_seconds) = best.unwrap_or_default();
    let report = BenchReport {
        voice: voice.name.clone(),
        provider: voice.provider(),
        threads: options.intra_threads.unwrap_or_else(demod_voice_core::onnx::physical_cores),
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

#[derive(Serialize)]
struct RealtimeReport {
    sample_rate_hz: u32,
    block_frames: usize,
    /// Mean and 99th-percentile cost of one `process` call (audio thread), microseconds.
    audio_side_mean_us: f64,
    audio_side_p99_us: f64,
    /// dsp worker time as a share of real time on one core.
    dsp_worker_real_time_share: f64,
    dsp_worker_mean_hop_us: f64,
    dsp_worker_max_hop_us: f64,
    /// Total latency with dsp (samples and milliseconds) and its parts.
    dsp_latency_samples: usize,
    dsp_latency_ms: f64,
    passthrough_latency_ms: f64,
    hop_ms: f64,
    /// The installed model measured with `--model`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<ModelReport>,
}

/// One neural engine's cost on the real-time worker.
#[derive(Debug, serde::Serialize)]
struct ModelReport {
    name: String,
    engine: String,
    /// The rate the engine runs at (blocks are resampled to it), Hz.
    engine_rate_hz: u32,
    /// Inference per hop (mean, worst), microseconds.
    mean_hop_us: f64,
    max_hop_us: f64,
    /// Worker time as a share of real time on one core (1.0 = just keeps up).
    real_time_share: f64,
    /// Total latency at the host rate.
    latency_samples: usize,
    latency_ms: f64,
}

/// Drive the installed model `name`'s engine over `voice` (at `rate`, in `block`s) on this thread and time its hops.
fn bench_model(
    ctx: &Context,
    name: &str,
    config: &demod_voice_core::realtime::RtConfig,
    voice: &[f32],
    block: usize,
) -> Result<ModelReport> {
    use demod_voice_core::convert::Converter;
    use demod_voice_core::realtime::RtEngine;
    let settings = &ctx.settings;
    let manifest = demod_voice_core::neural::find(&settings.models_dir(), name)?;
    let runtime = settings.runtime()?;
    let options = settings.session_options();
    let converter: Box<dyn Converter> = match manifest.engine.as_str() {
        "tone-color" => {
            let (converter, _) = demod_voice_core::convert::tone::tone_files(&settings.models_dir(), &manifest)?;
            // The tones change the numbers the model computes, not its cost.
            Box::new(demod_voice_core::convert::tone::ToneColorConverter::load(
                runtime,
                &converter,
                vec![0.0; 256],
                vec![0.0; 256],
                0.3,
                &options,
            )?)
        }
        "rvc" => Box::new(demod_voice_core::convert::rvc::RvcConverter::load(
            runtime,
            &settings.models_dir(),
            &manifest,
            0.0,
            &options,
        )?),
        other => anyhow::bail!("`{name}` is a {other} model; bench --model takes a tone-color or rvc model"),
    };
    let engine_rate_hz = converter.sample_rate().unwrap_or(config.sample_rate_hz);
    let (mut audio, mut worker) = RtEngine::build(config, converter)?;
    let mut output = vec![0.0f32; block];
    for chunk in voice.chunks_exact(block) {
        audio.process(&[chunk], &mut [&mut output[..]]);
        while worker.step() {}
    }
    let stats = audio.stats().snapshot();
    let hop_seconds = worker.latency().hop as f64 / f64::from(config.sample_rate_hz);
    Ok(ModelReport {
        name: name.to_string(),
        engine: manifest.engine.clone(),
        engine_rate_hz,
        mean_hop_us: stats.worker_mean.as_secs_f64() * 1e6,
        max_hop_us: stats.worker_max.as_secs_f64() * 1e6,
        real_time_share: stats.worker_mean.as_secs_f64() / hop_seconds,
        latency_samples: audio.latency(),
        latency_ms: audio.latency() as f64 * 1000.0 / f64::from(config.sample_rate_hz),
    })
}

/// A synthetic voice gliding between 110 and 160 Hz, so runs are repeatable.
fn synthetic_voice(rate: u32, seconds: f32) -> Vec<f32> {
    demod_voice_core::analysis::synthetic::voice_with(
        |t| 135.0 + 25.0 * (t * 1.3).sin(),
        &[700.0, 1200.0, 2500.0, 3500.0],
        rate,
        seconds,
    )
}

fn bench_realtime(ctx: &Context, args: &BenchArgs) -> Result<()> {
    use demod_voice_core::convert::dsp::{DspConverter, DspParams};
    use demod_voice_core::convert::Passthrough;
    use demod_voice_core::realtime::{RtConfig, RtEngine};
    const RATE: u32 = 48_000;
    const BLOCK: usize = 128;
    let section = &ctx.settings.config.realtime;
    let config = RtConfig::from_section(section, RATE, BLOCK, 1);
    let voice = synthetic_voice(RATE, 10.0);

    // Audio side: time each process call while the worker runs on its own thread.
    let params = std::sync::Arc::new(DspParams::default());
    params.set_pitch_semitones(4.0);
    let (mut audio, worker) = RtEngine::build(&config, Box::new(DspConverter::new(params.clone())))?;
    let dsp_latency = audio.latency();
    let thread = worker.spawn()?;
    let mut output = vec![0.0f32; BLOCK];
    let mut costs = Vec::with_capacity(voice.len() / BLOCK);
    for chunk in voice.chunks_exact(BLOCK) {
        let started = Instant::now();
        audio.process(&[chunk], &mut [&mut output[..]]);
        costs.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(&output);
    }
    drop(thread);
    costs.sort_by(f64::total_cmp);
    let mean = costs.iter().sum::<f64>() / costs.len() as f64;
    let p99 = costs[costs.len() * 99 / 100];

    // Worker: drive it on this thread and sum its own timing.
    let (mut audio, mut worker) = RtEngine::build(&config, Box::new(DspConverter::new(params)))?;
    for chunk in voice.chunks_exact(BLOCK) {
        audio.process(&[chunk], &mut [&mut output[..]]);
        while worker.step() {}
    }
    let stats = audio.stats().snapshot();
    let hop = worker.latency().hop;
    let hop_seconds = hop as f64 / f64::from(RATE);
    let share = stats.worker_mean.as_secs_f64() / hop_seconds;

    let (pass_audio, _pass_worker) = RtEngine::build(&config, Box::new(Passthrough::default()))?;
    let model = match &args.model {
        Some(name) => Some(bench_model(ctx, name, &config, &voice, BLOCK)?),
        None => None,
    };
    let report = RealtimeReport {
        model,
        sample_rate_hz: RATE,
        block_frames: BLOCK,
        audio_side_mean_us: mean,
        audio_side_p99_us: p99,
        dsp_worker_real_time_share: share,
        dsp_worker_mean_hop_us: stats.worker_mean.as_secs_f64() * 1e6,
        dsp_worker_max_hop_us: stats.worker_max.as_secs_f64() * 1e6,
        dsp_latency_samples: dsp_latency,
        dsp_latency_ms: dsp_latency as f64 * 1000.0 / f64::from(RATE),
        passthrough_latency_ms: pass_audio.latency() as f64 * 1000.0 / f64::from(RATE),
        hop_ms: hop_seconds * 1000.0,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "real-time engine at {} Hz, {}-frame blocks, hop {:.1} ms", RATE, BLOCK, report.hop_ms)?;
        writeln!(
            out,
            "audio side per block   {:.2} us mean, {:.2} us p99",
            report.audio_side_mean_us, report.audio_side_p99_us
        )?;
        writeln!(
            out,
            "dsp worker             {:.1}% of real time on one core ({:.0} us per hop, max {:.0} us)",
            share * 100.0,
            report.dsp_worker_mean_hop_us,
            report.dsp_worker_max_hop_us
        )?;
        writeln!(
            out,
            "latency                dsp {:.1} ms ({} samples), passthrough {:.1} ms",
            report.dsp_latency_ms, dsp_latency, report.passthrough_latency_ms
        )?;
        if let Some(model) = &report.model {
            writeln!(
                out,
                "{} ({}, {} Hz)   {:.1}% of real time on one core ({:.0} us per hop, max {:.0} us), latency {:.1} ms \
                 ({} samples)",
                model.name,
                model.engine,
                model.engine_rate_hz,
                model.real_time_share * 100.0,
                model.mean_hop_us,
                model.max_hop_us,
                model.latency_ms,
                model.latency_samples
            )?;
        }
    }
    Ok(())
}

/// Median and worst of `seconds`, in milliseconds (0 for none).
fn median_and_worst_ms(seconds: &[f64]) -> (f64, f64) {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |i: usize| sorted.get(i).copied().unwrap_or(0.0) * 1000.0;
    (at(sorted.len() / 2), at(sorted.len().saturating_sub(1)))
}

/// One frame of the Batch screen with 10 000 jobs (half done, some failed) on a 200x60 off-screen terminal.
fn bench_app_frame(args: &BenchArgs) -> Result<()> {
    let frames = crate::app::batch_frame_times(10_000, 200, 60, 50)?;
    let (median_ms, worst_ms) = median_and_worst_ms(&frames);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"jobs": 10_000, "frames": frames.len(), "median_ms": median_ms, "worst_ms": worst_ms})
        );
    } else {
        println!(
            "batch screen, 10000 jobs, 200x60: median {median_ms:.2} ms per frame, worst {worst_ms:.2} ms ({} frames)",
            frames.len()
        );
    }
    Ok(())
}

/// The sentences `bench --speak-first-audio` speaks: one with no clause boundary (synthesised whole before it is
/// heard) and an assistant's answer whose first clause is heard while the rest is synthesised.
const FIRST_AUDIO_SENTENCES: [&str; 2] = [
    "The quick brown fox jumps over the lazy dog.",
    "Good evening, the kitchen lights are off and the front door is locked for the night.",
];

fn bench_speak_first_audio(ctx: &Context, args: &BenchArgs) -> Result<()> {
    let mut rows = Vec::new();
    for sentence in FIRST_AUDIO_SENTENCES {
        let (device, times) = crate::app::speak_first_audio_times(ctx, sentence, args.runs.max(1))?;
        let (median_ms, worst_ms) = median_and_worst_ms(&times);
        if !args.json {
            println!(
                "Speak to first audio on {device}: median {median_ms:.0} ms, worst {worst_ms:.0} ms ({} runs, \"{sentence}\")",
                times.len()
            );
        }
        rows.push(serde_json::json!({"device": device, "sentence": sentence, "runs": times.len(),
            "median_ms": median_ms, "worst_ms": worst_ms}));
    }
    if args.json {
        println!("{}", serde_json::Value::Array(rows));
    }
    Ok(())
}

/// `bench --soak`: the engine's soak (see `demod_voice_core::realtime::soak`) at full length.
fn bench_soak(args: &BenchArgs) -> Result<()> {
    use demod_voice_core::realtime::soak::{soak, SoakOptions};
    let options = SoakOptions { blocks: args.blocks, ..Default::default() };
    eprintln!("soaking the real-time engine: {} blocks of 1-{} samples ...", options.blocks, options.max_block);
    let report = soak(&options, &mut |audio| audio())?;
    let hours = report.samples as f64 / f64::from(options.sample_rate_hz) / 3600.0;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "blocks": report.blocks, "samples": report.samples, "audio_hours": hours,
                "switches": report.switches, "automation": report.automation, "stalls": report.stalls,
                "underruns": report.underruns, "overruns": report.overruns, "non_finite": report.non_finite,
                "max_alignment_error": report.max_alignment_error, "peak": report.peak,
                "latency_samples": report.latency, "wall_seconds": report.seconds,
            })
        );
    } else {
        println!(
            "soak: {} blocks, {:.2} h of audio per engine in {:.0} s; {} switches, {} parameter moves, {} worker stalls",
            report.blocks, hours, report.seconds, report.switches, report.automation, report.stalls
        );
        println!(
            "      underruns {} (fallback, counted), overruns {}, non-finite samples {}, peak {:.2}, \
             drift from the {}-sample latency {:.1e}",
            report.underruns,
            report.overruns,
            report.non_finite,
            report.peak,
            report.latency,
            report.max_alignment_error
        );
    }
    if report.non_finite > 0 || report.max_alignment_error > 1e-5 {
        anyhow::bail!("the soak failed: non-finite output or drift (see above)");
    }
    Ok(())
}
