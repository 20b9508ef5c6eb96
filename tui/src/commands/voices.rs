//! `voices list|show|add-profile`: installed Piper voices and the voice-profile library.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use demod_voice_core::library;
use demod_voice_core::profile::VoiceProfile;

use crate::cli::VoicesCommand;
use crate::context::Context;

pub fn voices(ctx: &Context, command: VoicesCommand) -> Result<()> {
    let json = match command {
        VoicesCommand::List { json } => json,
        VoicesCommand::AddProfile { name, references, force } => return add_profile(ctx, &name, &references, force),
        VoicesCommand::Show { name } => return show(ctx, &name),
        VoicesCommand::Catalog { language, quality, refresh, json } => {
            return super::catalog::list(ctx, language.as_deref(), quality.as_deref(), refresh, json)
        }
        VoicesCommand::Download { keys, force } => return super::catalog::download(ctx, &keys, force),
        VoicesCommand::Remove { keys } => return super::catalog::remove(ctx, &keys),
    };
    let profiles = library::profiles(&ctx.settings.profiles_dir());
    let rows = library::voices(&ctx.settings.dirs.voices_dir());
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &serde_json::json!({"voices": rows, "profiles": profiles}))?;
        writeln!(stdout)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(
            stdout,
            "no voices installed in {}; run `demod-voice setup`",
            ctx.settings.dirs.voices_dir().display()
        )?;
    }
    writeln!(stdout, "{:<28} {:<8} {:<8} {:>6} {:>8}", "NAME", "LANGUAGE", "QUALITY", "RATE", "SPEAKERS")?;
    for row in rows {
        match row.problem {
            None => writeln!(
                stdout,
                "{:<28} {:<8} {:<8} {:>6} {:>8}",
                row.name, row.language, row.quality, row.sample_rate, row.speakers
            )?,
            Some(problem) => writeln!(stdout, "{:<28} unusable: {problem}", row.name)?,
        }
    }
    if !profiles.is_empty() {
        // Similarity: the configured voice before -> after cloning toward the profile's recording, when measured
        // (`voices show NAME` measures it).
        let voice = ctx.settings.voice_path(None).ok().map(|m| demod_voice_core::piper::synth::voice_name(&m));
        writeln!(stdout, "\n{:<28} {:>10} {:>8}  SIMILARITY", "PROFILE", "MEDIAN F0", "FORMANT")?;
        for p in &profiles {
            let similarity = voice
                .as_deref()
                .and_then(|voice| p.similarity(&ctx.settings.dirs.cache, voice))
                .map_or_else(|| "-".to_string(), |(before, after)| format!("{before:.2} -> {after:.2}"));
            match (&p.problem, p.median_f0_hz, p.formant_scale) {
                (None, Some(f0), Some(formant)) => {
                    writeln!(stdout, "{:<28} {f0:>7.1} Hz {formant:>8.3}  {similarity}", p.name)?
                }
                (problem, _, _) => writeln!(stdout, "{:<28} unusable: {}", p.name, problem.as_deref().unwrap_or("?"))?,
            }
        }
    }
    Ok(())
}

pub fn add_profile(ctx: &Context, name: &str, references: &[PathBuf], force: bool) -> Result<()> {
    let dir = ctx.settings.profiles_dir();
    // The embedding is a bonus: a profile is still made where the encoder cannot be had (offline, say).
    let encoder = || {
        ctx.settings
            .speaker_encoder()
            .map_err(|e| tracing::warn!("the profile is made without a speaker embedding: {e}"))
            .ok()
    };
    let (profile, saved) = library::add_profile(&dir, name, references, force, encoder)?;
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
    match VoiceProfile::find(name, &ctx.settings.profiles_dir()) {
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
            match &profile.embedding {
                Some(embedding) => {
                    let head: Vec<String> = embedding.values().iter().take(6).map(|v| format!("{v:+.3}")).collect();
                    writeln!(out, "embedding      {} values: {} ...", embedding.values().len(), head.join(" "))?;
                }
                None => writeln!(out, "embedding      not measured (add the profile again to measure it)")?,
            }
            // How far cloning moves the configured voice toward this profile's recording (fitted once, cached).
            match profile.sources.first().filter(|s| s.path.is_file()) {
                Some(source) => {
                    out.flush()?;
                    let voice = ctx.settings.load_voice(None)?;
                    let encoder = ctx.settings.speaker_encoder()?;
                    let fitted = demod_voice_core::clone::prepare(&source.path, &voice, &ctx.settings, &encoder)?;
                    writeln!(
                        out,
                        "similarity     {:.2} -> {:.2} ({} before -> after cloning toward it)",
                        fitted.fit.similarity_before, fitted.fit.similarity_after, voice.name
                    )?;
                }
                None => writeln!(out, "similarity     unknown: the source recording is no longer where it was")?,
            }
            Ok(())
        }
        Err(profile_error) => {
            // Maybe it is an installed voice.
            let Ok(model) = demod_voice_core::assets::resolve_voice(name, &ctx.settings.dirs.voices_dir()) else {
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
