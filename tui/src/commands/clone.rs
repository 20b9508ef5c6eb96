//! `clone REFERENCE TEXT -o OUT.wav` (and the old tool's `xtts-zero-shot REF TEXT --output --language`): speech from
//! the configured (or given) voice through the pipeline, cloned toward the reference recording's voice
//! (`core::clone`), with the speaker encoder's similarity to the reference before and after.

use std::sync::Arc;

use anyhow::Result;
use demod_voice_core::clone::CloneProfile;
use demod_voice_core::convert::rvc::RvcSetup;
use demod_voice_core::convert::tone::ToneSetup;
use demod_voice_core::convert::Engine;
use demod_voice_core::pipeline::{SentenceConverter, Speech};
use demod_voice_core::wav::{AtomicWav, WavEncoding};
use serde::Serialize;

use crate::cli::{CloneArgs, ScaleArgs, ZeroShotArgs};
use crate::commands::speak::check_writable;
use crate::context::Context;
use crate::error::usage;

/// What `clone --json` prints.
#[derive(Debug, Serialize)]
struct CloneReport {
    reference: String,
    voice: String,
    /// The speaker of a multi-speaker voice cloning started from (the nearest to the reference, unless given).
    #[serde(skip_serializing_if = "Option::is_none")]
    speaker: Option<String>,
    /// How many speakers were compared to pick it (0 when it was given or the voice has one).
    speakers_compared: usize,
    output: String,
    /// The engine that moved the voice (`dsp`, `tone-color`, `rvc`).
    engine: String,
    /// The installed model a neural engine ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    similarity_before: f32,
    similarity_after: f32,
    reference_median_f0_hz: f32,
    output_median_f0_hz: Option<f32>,
    /// The fit (dsp only).
    #[serde(skip_serializing_if = "Option::is_none")]
    formant_ratio: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    f0_spread: Option<f32>,
    /// The breathiness change per band (0-1, 1-2, 2-4, 4-8 kHz), dB; all 0 when not measured or not kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    breath_db: Option<[f32; 4]>,
    fit_seconds: f32,
    fit_cached: bool,
    /// Measuring the reference and fitting (or reading both from the cache), seconds.
    profile_seconds: f64,
    synthesis_seconds: f64,
    audio_seconds: f64,
}

impl CloneReport {
    /// The one line `clone` and `xtts-zero-shot` print.
    fn summary(&self) -> String {
        format!(
            "wrote {} ({:.2} s of audio); similarity to reference: {:.2} -> {:.2}",
            self.output, self.audio_seconds, self.similarity_before, self.similarity_after
        )
    }
}

pub fn clone(ctx: &mut Context, args: CloneArgs) -> Result<()> {
    let report = run(ctx, &args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !ctx.global.quiet {
        eprintln!("{}", report.summary());
    }
    Ok(())
}

/// The old tool's spelling: `clone` with its `--output` and `--language`, the same one-line summary.
pub fn zero_shot(ctx: &mut Context, args: ZeroShotArgs) -> Result<()> {
    let args = CloneArgs {
        reference: args.reference,
        text: args.text,
        output: args.output,
        voice: args.voice,
        json: false,
        scales: ScaleArgs::default(),
        engine: None,
        neural: Default::default(),
    };
    clone(ctx, args)
}

fn run(ctx: &mut Context, args: &CloneArgs) -> Result<CloneReport> {
    let (reference, text, output) = (args.reference.as_path(), args.text.as_str(), args.output.as_path());
    if text.trim().is_empty() {
        return Err(usage("the text is empty: nothing to speak"));
    }
    if !reference.is_file() {
        return Err(usage(format!("reference recording {} does not exist", reference.display())));
    }
    check_writable(output)?;
    ctx.apply_speech_flags(&args.scales)?;
    ctx.set_voice_args(&args.voice)?;
    let voice = ctx.settings.load_voice(None)?;
    if let Some(language) = args.voice.language.as_deref() {
        let spoken = voice.config.language_code();
        if !demod_voice_core::library::speaks(&spoken, language) {
            tracing::warn!("--language {language} differs from --voice's language {spoken}; the voice's is used");
        }
    }
    let encoder = ctx.settings.speaker_encoder()?;
    let preparing = std::time::Instant::now();
    let engine = args.engine.unwrap_or_default();
    if engine == Engine::Passthrough {
        return Err(usage("clone moves the voice: --engine dsp (the default), tone-color or rvc"));
    }
    let mut nearest = None;
    if engine == Engine::Dsp {
        nearest = demod_voice_core::clone::choose_speaker(reference, &voice, &mut ctx.settings, &encoder)?;
    }
    if let Some(found) = &nearest {
        tracing::info!(
            "nearest of {} speakers to the reference: {} (similarity {:.2})",
            found.compared,
            found.speaker,
            found.similarity
        );
    }
    for (setting, flag) in args.neural.settings() {
        ctx.settings.set(setting, flag);
    }
    let settings = &ctx.settings;
    // The reference measured (and cached by checksum) for every engine: its embedding and pitch are the report's.
    // The dsp engine's preparation measures it with the fit; the model engines only measure it.
    let measured = || CloneProfile::for_reference(reference, &settings.dirs.cache, &encoder).map(|(m, _)| m);
    let (converter, fit, measured) = match engine {
        Engine::ToneColor => {
            let tone = Arc::new(ToneSetup::for_reference(settings, reference)?);
            let converter = settings.converter.clone().unwrap_or_default();
            (SentenceConverter::neural(converter, &settings.config.realtime, Some(tone), None), None, measured()?)
        }
        Engine::Rvc => {
            let rvc = Arc::new(RvcSetup::from_settings(settings)?);
            let converter = settings.converter.clone().unwrap_or_default();
            (SentenceConverter::neural(converter, &settings.config.realtime, None, Some(rvc)), None, measured()?)
        }
        _ => {
            let clone = Arc::new(demod_voice_core::clone::prepare(reference, &voice, settings, &encoder)?);
            let measured = clone.profile.clone();
            (SentenceConverter::cloning(clone.clone(), &settings.config.realtime), Some(clone), measured)
        }
    };
    let profile_seconds = preparing.elapsed().as_secs_f64();
    let mut speech = Speech::new(&voice, settings)?;
    speech.converter = Some(converter);
    let rate = speech.output_rate_hz;
    let mut wav = AtomicWav::create_with(output, rate, WavEncoding::from(settings.config.output.format))?;
    let (mut source, mut converted) = (Vec::new(), Vec::new());
    let started = std::time::Instant::now();
    let spoken = speech.run_tapped(
        text,
        |samples| {
            converted.extend_from_slice(samples);
            wav.write(samples)
        },
        |samples| source.extend_from_slice(samples),
    )?;
    let synthesis_seconds = started.elapsed().as_secs_f64();
    let path = wav.finish()?;
    let target = &measured.embedding;
    Ok(CloneReport {
        reference: reference.display().to_string(),
        voice: voice.name.clone(),
        speaker: settings.config.tts.speaker.clone(),
        speakers_compared: nearest.as_ref().map_or(0, |n| n.compared),
        output: path.display().to_string(),
        engine: engine.name().to_string(),
        model: args.neural.model.clone().filter(|_| engine.needs_model()),
        similarity_before: encoder.embed(&source, voice.sample_rate())?.cosine(target),
        similarity_after: encoder.embed(&converted, rate)?.cosine(target),
        reference_median_f0_hz: measured.pitch.median_hz,
        output_median_f0_hz: demod_voice_core::clone::pitch_stats(&converted, rate).map(|p| p.median_hz),
        formant_ratio: fit.as_ref().map(|c| c.fit.formant_ratio),
        f0_spread: fit.as_ref().map(|c| c.fit.f0_spread),
        breath_db: fit.as_ref().map(|c| c.fit.breath_db),
        fit_seconds: fit.as_ref().map_or(0.0, |c| if c.cached { 0.0 } else { c.fit.fit_seconds }),
        fit_cached: fit.as_ref().is_some_and(|c| c.cached),
        profile_seconds,
        synthesis_seconds,
        audio_seconds: spoken.seconds(),
    })
}
