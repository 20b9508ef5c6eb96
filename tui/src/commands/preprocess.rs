//! `preprocess` (and the old `piper-preprocess`).

use std::io::IsTerminal;

use anyhow::Result;
use demod_voice_core::preprocess::{self, Layout, Options};
use demod_voice_core::settings::Setting;

use crate::cli::PreprocessArgs;
use crate::context::Context;

pub fn preprocess(ctx: &mut Context, args: PreprocessArgs) -> Result<()> {
    if let Some(rate) = args.sample_rate {
        ctx.settings.set(Setting::PreprocessingSampleRate(rate), "--sample-rate");
    }
    ctx.check()?;
    let settings = ctx.settings.config.preprocessing.clone();
    // Check the input (and where the output goes) before loading anything or writing anything.
    preprocess::check_folders(&args.input_dir, &args.output_dir)?;
    let layout = args.multi_speaker.then_some(Layout::MultiSpeaker);
    preprocess::read_metadata(&args.input_dir.join("metadata.csv"), layout)?;
    // The phoneme id map of the default voice (Piper's standard espeak map) and espeak-ng itself.
    let model = ctx.settings.voice_path(Some(demod_voice_core::assets::DEFAULT_VOICE))?;
    let voice =
        demod_voice_core::piper::VoiceConfig::load(&demod_voice_core::piper::VoiceConfig::path_for_model(&model))?;
    let espeak = ctx.settings.espeak()?;
    let threads = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let options = Options { language: args.language, settings, threads, layout };
    let quiet = ctx.global.quiet;
    let interactive = std::io::stderr().is_terminal();
    let progress = move |done: usize, total: usize| {
        if quiet {
            return;
        }
        if interactive {
            eprint!("\rpreprocess: {done}/{total} clips");
            if done == total {
                eprintln!();
            }
        } else if done == total || done.is_multiple_of(100) {
            eprintln!("preprocess: {done}/{total} clips");
        }
    };
    let report = preprocess::run(&args.input_dir, &args.output_dir, &options, &voice, espeak, &progress)?;
    if !quiet {
        eprintln!(
            "wrote {} utterances ({:.1} s of audio) to {} in {:.1} s; {} skipped",
            report.utterances,
            report.audio_seconds,
            args.output_dir.display(),
            report.wall_seconds,
            report.skipped.len()
        );
        for skipped in &report.skipped {
            eprintln!("  skipped {} (line {}): {}", skipped.id, skipped.line, skipped.reason);
        }
        for (phoneme, count) in &report.missing_phonemes {
            eprintln!("  phoneme {phoneme:?} is not in the id map ({count} times)");
        }
    }
    Ok(())
}
