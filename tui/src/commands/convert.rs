//! `convert`: a recording through the real-time engine toward a voice profile or by pitch and formant ratios.

use anyhow::{Context as _, Result};
use demod_voice_core::convert::Engine;
use demod_voice_core::pipeline::SentenceConverter;
use demod_voice_core::wav::{read_wav_mono, AtomicWav};

use crate::cli::ConvertArgs;
use crate::context::Context;
use crate::error::usage;

pub fn convert(ctx: &mut Context, args: ConvertArgs) -> Result<()> {
    if let Some(name) = &args.preset {
        ctx.settings.apply_preset(name)?;
    }
    let flags = args.settings();
    let says_what = args.to.is_some()
        || args.pitch.is_some()
        || args.formant.is_some()
        || args.preset.is_some()
        || args.neural.model.is_some();
    if !says_what && args.engine != Some(Engine::Passthrough) {
        return Err(usage(
            "say what to convert to: --to PROFILE, --pitch SEMITONES [--formant RATIO], --preset NAME, or \
             --engine rvc --model NAME",
        ));
    }
    for (setting, flag) in flags {
        ctx.settings.set(setting, flag);
    }
    if ctx.settings.converter.is_none() {
        // A preset without converter settings: the dsp engine with nothing changed.
        ctx.settings.set(demod_voice_core::settings::Setting::Engine(Engine::Dsp), "default");
    }
    ctx.check()?;
    let Some(converter) = SentenceConverter::from_settings(&ctx.settings)? else {
        return Err(usage("nothing to convert with"));
    };
    // Read the input fully before creating the output, so a bad input leaves nothing behind.
    let (samples, rate) = read_wav_mono(&args.input)?;
    if samples.is_empty() {
        return Err(usage(format!("{} has no audio", args.input.display())));
    }
    let mut wav = AtomicWav::create(&args.output, rate)?;
    let started = std::time::Instant::now();
    let mixed = converter.apply(&samples, rate).with_context(|| format!("converting {}", args.input.display()))?;
    wav.write(&mixed)?;
    let path = wav.finish()?;
    if !ctx.global.quiet {
        let seconds = samples.len() as f64 / f64::from(rate);
        eprintln!(
            "wrote {} ({seconds:.2} s at {rate} Hz, engine {}{}, {:.1}x real time)",
            path.display(),
            converter.settings.engine,
            converter.settings.profile.as_ref().map(|p| format!(", toward profile {p}")).unwrap_or_default(),
            seconds / started.elapsed().as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
