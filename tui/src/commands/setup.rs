//! `setup`: install ONNX Runtime, espeak-ng and the default voice, then load them to prove they work.

use anyhow::{bail, Result};
use demod_voice_core::assets::{self, SetupOptions};

use crate::cli::SetupArgs;
use crate::context::Context;

pub fn setup(ctx: &Context, args: SetupArgs) -> Result<()> {
    let options = SetupOptions {
        gpu: args.gpu,
        offline: ctx.global.offline,
        force: args.force,
        python: args.python,
        ..Default::default()
    };
    let quiet = ctx.global.quiet;
    let report = assets::setup(&ctx.settings.dirs, &options, &mut |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    for item in &report {
        println!("{:<10} {:<16} {} ({})", item.what, item.action, item.path.display(), item.package);
    }
    // Verify: load what was installed, exactly as a command would.
    let runtime = ctx.settings.runtime()?;
    let espeak = ctx.settings.espeak()?;
    let model = ctx.settings.voice_path(None)?;
    let config =
        demod_voice_core::piper::VoiceConfig::load(&demod_voice_core::piper::VoiceConfig::path_for_model(&model))?;
    let sentences = demod_voice_core::piper::phonemize(&config, Some(espeak), "ok")?;
    if sentences.is_empty() {
        bail!("espeak-ng loaded but produced no phonemes for a test word");
    }
    println!(
        "verified   ONNX Runtime {} ({}), espeak-ng {}, voice {} ({} Hz)",
        runtime.version,
        runtime.path.display(),
        espeak.version(),
        assets::DEFAULT_VOICE,
        config.audio.sample_rate
    );
    Ok(())
}
