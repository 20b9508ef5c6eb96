//! `convert`, `voices add-profile` and `voices show`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use demod_voice_core::audio::{read_wav_mono, AtomicWav};
use demod_voice_core::voice::VoiceProfile;

use crate::cli::ConvertArgs;
use crate::context::Context;
use crate::speak::usage;

impl Context {
    pub fn profiles_dir(&self) -> PathBuf {
        self.dirs.data.join("profiles")
    }
}

pub fn add_profile(ctx: &Context, name: &str, references: &[PathBuf], force: bool) -> Result<()> {
    let dir = ctx.profiles_dir();
    let path = VoiceProfile::path_in(&dir, name);
    if path.exists() && !force {
        return Err(usage(format!(
            "a profile named `{name}` already exists ({}); pass --force to replace it",
            path.display()
        )));
    }
    for reference in references {
        if !reference.is_file() {
            return Err(usage(format!("reference recording {} does not exist", reference.display())));
        }
    }
    let profile = VoiceProfile::from_recordings(name, references)?;
    let saved = profile.save(&dir)?;
    if !ctx.global.quiet {
        eprintln!(
            "wrote {}: median F0 {:.1} Hz (range {:.1} semitones), formant scale {:.3}, {:.1} s voiced",
            saved.display(),
            profile.median_f0_hz,
            profile.f0_range_semitones,
            profile.formant_scale,
            profile.voiced_seconds
        );
    }
    Ok(())
}

pub fn show(ctx: &Context, name: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match VoiceProfile::find(name, &ctx.profiles_dir()) {
        Ok(profile) => {
            writeln!(out, "profile        {}", profile.name)?;
            writeln!(
                out,
                "median F0      {:.1} Hz ({:.1}..{:.1} Hz, {:.1} semitones)",
                profile.median_f0_hz, profile.f0_p10_hz, profile.f0_p90_hz, profile.f0_range_semitones
            )?;
            writeln!(out, "formant scale  {:.3}", profile.formant_scale)?;
            writeln!(
                out,
                "voiced         {:.1} s ({:.0}% of audible frames)",
                profile.voiced_seconds,
                profile.voiced_ratio * 100.0
            )?;
            for source in &profile.sources {
                writeln!(
                    out,
                    "source         {} ({} Hz, {} ch, {:.1} s, sha256 {})",
                    source.path.display(),
                    source.sample_rate,
                    source.channels,
                    source.seconds,
                    &source.sha256[..16]
                )?;
            }
            Ok(())
        }
        Err(profile_error) => {
            // Maybe it is an installed voice.
            let Ok(model) = demod_voice_core::assets::resolve_voice(name, &ctx.dirs.voices_dir()) else {
                return Err(profile_error.into());
            };
            let config = demod_voice_core::piper::VoiceConfig::load(
                &demod_voice_core::piper::VoiceConfig::path_for_model(&model),
            )?;
            writeln!(out, "voice          {name}")?;
            writeln!(out, "model          {}", model.display())?;
            writeln!(out, "language       {}", config.language_code())?;
            writeln!(out, "quality        {}", config.audio.quality.as_deref().unwrap_or("-"))?;
            writeln!(out, "sample rate    {} Hz", config.audio.sample_rate)?;
            writeln!(out, "speakers       {}", config.num_speakers)?;
            for (speaker, id) in &config.speaker_id_map {
                writeln!(out, "  {id:>4}  {speaker}")?;
            }
            Ok(())
        }
    }
}

pub fn convert(ctx: &mut Context, args: ConvertArgs) -> Result<()> {
    let mut pitch = 0.0f32;
    let mut formant = 1.0f32;
    let mut amount = 1.0f32;
    let mut mix = 1.0f32;
    let mut engine = "dsp".to_string();
    let mut profile_name = None;
    if let Some(name) = &args.preset {
        let found = ctx.apply_preset(name)?;
        if let Some(conv) = &found.preset.converter {
            pitch = conv.pitch_semitones;
            formant = conv.formant_ratio;
            amount = conv.profile_amount;
            mix = conv.mix;
            engine = conv.engine.clone();
            profile_name = conv.profile.clone();
        }
    }
    if let Some(v) = args.pitch {
        pitch = v;
    }
    if let Some(v) = args.formant {
        formant = v;
    }
    if let Some(v) = args.amount {
        amount = v;
    }
    if let Some(v) = args.mix {
        mix = v;
    }
    if let Some(v) = &args.engine {
        engine = v.clone();
    }
    if args.to.is_some() {
        profile_name = args.to.clone();
    }
    if args.to.is_none()
        && args.pitch.is_none()
        && args.formant.is_none()
        && args.preset.is_none()
        && engine != "passthrough"
    {
        return Err(usage(
            "say what to convert to: --to PROFILE, --pitch SEMITONES [--formant RATIO], or --preset NAME",
        ));
    }
    let check = |name: &str, value: f32, lo: f32, hi: f32| {
        if value.is_finite() && (lo..=hi).contains(&value) {
            Ok(())
        } else {
            Err(usage(format!("--{name} {value} is outside {lo}..{hi}")))
        }
    };
    check("pitch", pitch, -24.0, 24.0)?;
    check("formant", formant, 0.5, 2.0)?;
    check("amount", amount, 0.0, 1.0)?;
    check("mix", mix, 0.0, 1.0)?;
    let target = match &profile_name {
        Some(name) => Some(VoiceProfile::find(name, &ctx.profiles_dir())?),
        None => None,
    };
    // Read the input fully before creating the output, so a bad input leaves nothing behind.
    let (samples, rate) = read_wav_mono(&args.input)?;
    if samples.is_empty() {
        return Err(usage(format!("{} has no audio", args.input.display())));
    }
    let mut wav = AtomicWav::create(&args.output, rate)?;
    let settings = demod_voice_core::presets::ConverterSettings {
        engine: engine.clone(),
        pitch_semitones: pitch,
        formant_ratio: formant,
        profile: None,
        profile_amount: amount,
        mix,
    };
    let started = std::time::Instant::now();
    let mixed = settings
        .convert_clip(&samples, rate, target.as_ref().map(VoiceProfile::target), &ctx.settings.config.realtime)
        .with_context(|| format!("converting {}", args.input.display()))?;
    wav.write(&mixed)?;
    let path = wav.finish()?;
    if !ctx.global.quiet {
        let seconds = samples.len() as f64 / f64::from(rate);
        eprintln!(
            "wrote {} ({seconds:.2} s at {rate} Hz, engine {engine}{}, {:.1}x real time)",
            path.display(),
            target.as_ref().map(|p| format!(", toward profile {}", p.name)).unwrap_or_default(),
            seconds / started.elapsed().as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
