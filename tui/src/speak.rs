//! `speak`, `piper-infer`, `phonemize`, `voices` and `setup`.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use demod_voice_core::assets::{self, SetupOptions};
use demod_voice_core::audio::{resample, streaming_wav_header, write_s16le, write_samples, AtomicWav, WavEncoding};
use demod_voice_core::piper::{PiperVoice, Sentence, SynthesisOptions};
use serde::Serialize;

use crate::cli::{PhonemizeArgs, PiperInferArgs, ScaleArgs, SetupArgs, SpeakArgs, VoicesCommand, ZeroShotArgs};
use crate::context::Context;

/// A problem with what the user asked for (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::error::Error for UsageError {}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Where synthesised audio goes.
enum Sink {
    File(AtomicWav),
    StdoutWav(std::io::BufWriter<std::io::Stdout>, WavEncoding),
    Raw(std::io::Stdout),
}

impl Sink {
    fn write(&mut self, samples: &[f32]) -> Result<()> {
        match self {
            Sink::File(wav) => wav.write(samples)?,
            Sink::StdoutWav(out, encoding) => {
                write_samples(out, samples, *encoding).context("writing WAV to standard output")?
            }
            Sink::Raw(out) => {
                let mut lock = out.lock();
                write_s16le(&mut lock, samples).context("writing PCM to standard output")?;
                // Each sentence leaves as soon as it is ready.
                lock.flush().context("writing PCM to standard output")?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Option<PathBuf>> {
        match self {
            Sink::File(wav) => Ok(Some(wav.finish()?)),
            Sink::StdoutWav(mut out, _) => {
                out.flush().context("writing WAV to standard output")?;
                Ok(None)
            }
            Sink::Raw(out) => {
                out.lock().flush().context("writing PCM to standard output")?;
                Ok(None)
            }
        }
    }
}

/// Read the text to speak from the argument, a file, or standard input.
fn read_text(text: Option<String>, input: Option<&Path>) -> Result<String> {
    let text = match (text, input) {
        (Some(text), _) => text,
        (None, Some(path)) if path == Path::new("-") => read_stdin()?,
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read text file {}", path.display()))?;
            decode_utf8(bytes, &path.display().to_string())?
        }
        (None, None) => {
            if std::io::stdin().is_terminal() {
                return Err(usage("no text given: pass TEXT, -i FILE, or pipe text into standard input"));
            }
            read_stdin()?
        }
    };
    if text.trim().is_empty() {
        return Err(usage("the text is empty: nothing to speak"));
    }
    Ok(text)
}

fn read_stdin() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).context("cannot read standard input")?;
    decode_utf8(bytes, "standard input")
}

fn decode_utf8(bytes: Vec<u8>, source: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        usage(format!("{source} is not valid UTF-8 (first bad byte at offset {at}); convert it to UTF-8 first"))
    })
}

/// Lay the command-line flags over the settings (config, then preset), recording each flag as the source.
fn apply_flags(ctx: &mut Context, scales: &ScaleArgs) {
    let settings = &mut ctx.settings;
    let tts = &mut settings.config.tts;
    let mut set = Vec::new();
    if let Some(v) = &scales.speaker {
        tts.speaker = Some(v.clone());
        set.push(("tts.speaker", "--speaker"));
    }
    if let Some(v) = scales.length_scale {
        tts.length_scale = Some(v);
        set.push(("tts.length_scale", "--length-scale"));
    }
    if let Some(v) = scales.noise_scale {
        tts.noise_scale = Some(v);
        set.push(("tts.noise_scale", "--noise-scale"));
    }
    if let Some(v) = scales.noise_w {
        tts.noise_w = Some(v);
        set.push(("tts.noise_w", "--noise-w"));
    }
    if let Some(v) = scales.sentence_silence {
        tts.sentence_silence = v;
        set.push(("tts.sentence_silence", "--sentence-silence"));
    }
    if let Some(v) = scales.volume {
        tts.volume = v;
        set.push(("tts.volume", "--volume"));
    }
    if scales.no_normalize {
        tts.normalize = false;
        set.push(("tts.normalize", "--no-normalize"));
    }
    if let Some(rate) = scales.sample_rate {
        settings.config.output.sample_rate = Some(rate);
        set.push(("output.sample_rate", "--sample-rate"));
    }
    for (key, flag) in set {
        settings.set_source(key, flag);
    }
}

/// Apply `--preset`, then the flags, and check the result. Returns the preset's converter, if it has one.
pub fn apply_preset_and_flags(
    ctx: &mut Context,
    scales: &ScaleArgs,
) -> Result<Option<demod_voice_core::presets::ConverterSettings>> {
    let mut converter = None;
    if let Some(name) = &scales.preset {
        converter = ctx.apply_preset(name)?.preset.converter;
    }
    apply_flags(ctx, scales);
    demod_voice_core::config::validate(&ctx.settings.config).map_err(|invalid| {
        usage(format!("`{}` {} (set by {})", invalid.key, invalid.message, ctx.settings.source_of(&invalid.key)))
    })?;
    Ok(converter)
}

/// A preset's converter, ready to run on each sentence (sentences end in silence, so each is converted on its
/// own through the real-time engine, as `convert` does).
pub struct SentenceConverter {
    settings: demod_voice_core::presets::ConverterSettings,
    target: Option<demod_voice_core::convert::dsp::Target>,
    realtime: demod_voice_core::config::RealtimeSection,
}

impl SentenceConverter {
    pub fn new(ctx: &Context, settings: demod_voice_core::presets::ConverterSettings) -> Result<SentenceConverter> {
        let target = match &settings.profile {
            Some(name) => Some(demod_voice_core::voice::VoiceProfile::find(name, &ctx.profiles_dir())?.target()),
            None => None,
        };
        Ok(SentenceConverter { settings, target, realtime: ctx.settings.config.realtime.clone() })
    }

    fn apply(&self, samples: &[f32], rate: u32) -> Result<Vec<f32>> {
        Ok(self.settings.convert_clip(samples, rate, self.target, &self.realtime)?)
    }
}

/// The synthesis options the settings describe, for `voice`.
pub fn synthesis_options(ctx: &Context, voice: &PiperVoice) -> Result<SynthesisOptions> {
    let tts = &ctx.settings.config.tts;
    let speaker_id = match &tts.speaker {
        Some(speaker) => Some(voice.speaker_id(speaker)?),
        None => None,
    };
    let options = SynthesisOptions {
        speaker_id,
        length_scale: tts.length_scale,
        noise_scale: tts.noise_scale,
        noise_w: tts.noise_w,
        sentence_silence: tts.sentence_silence,
        volume: tts.volume,
        normalize: tts.normalize,
    };
    options.validate()?;
    Ok(options)
}

/// True when a sentence has something to say beyond punctuation and spaces.
fn has_speech(sentence: &Sentence) -> bool {
    sentence.phonemes.iter().any(|p| !p.chars().all(|c| c.is_whitespace() || ".,:;!?'\"()-".contains(c)))
}

/// Synthesize `text` sentence by sentence, as `speak` does: sentences with nothing to say are skipped, a preset's
/// converter is applied, and each sentence's samples (at the voice's rate) go to `each` as soon as they are ready.
/// Returns how many sentences were spoken. An error from `each` stops the synthesis and is returned.
pub fn speak_sentences(
    voice: &PiperVoice,
    text: &str,
    options: &SynthesisOptions,
    converter: Option<&SentenceConverter>,
    mut each: impl FnMut(Vec<f32>) -> Result<()>,
) -> Result<usize> {
    let voice_rate = voice.sample_rate();
    let mut spoken = 0;
    voice.synthesize(text, options, |audio| -> Result<()> {
        if !has_speech(&audio.sentence) {
            tracing::warn!("sentence {:?} has nothing to speak; skipped", audio.sentence.text);
            return Ok(());
        }
        spoken += 1;
        tracing::info!(
            "sentence {}: {} samples in {:.3} s: {}",
            audio.index + 1,
            audio.samples.len(),
            audio.infer_seconds,
            audio.sentence.text
        );
        let samples = match converter {
            Some(converter) => converter.apply(&audio.samples, voice_rate)?,
            None => audio.samples,
        };
        each(samples)
    })?;
    Ok(spoken)
}

pub fn speak(ctx: &mut Context, args: SpeakArgs) -> Result<()> {
    let text = read_text(args.text, args.input.as_deref())?;
    let converter = apply_preset_and_flags(ctx, &args.scales)?;
    let to_stdout = args.output_raw || args.output.as_deref() == Some(Path::new("-"));
    if args.output.is_none() && !args.output_raw {
        return Err(usage("say where the audio goes: -o FILE.wav, -o - (WAV on standard output) or --output-raw"));
    }
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(usage("refusing to write audio to a terminal; redirect standard output or use -o FILE.wav"));
    }
    // An unwritable output fails before the model is loaded.
    let pending_file = match &args.output {
        Some(path) if path != Path::new("-") => Some(path.clone()),
        _ => None,
    };
    if let Some(path) = &pending_file {
        check_writable(path)?;
    }
    let converter = converter.map(|c| SentenceConverter::new(ctx, c)).transpose()?;
    let voice = ctx.load_voice(args.voice.voice.as_deref())?;
    let options = synthesis_options(ctx, &voice)?;
    run_synthesis(ctx, &voice, &text, &options, pending_file.as_deref(), args.output_raw, converter.as_ref())
}

fn check_writable(path: &Path) -> Result<()> {
    // Creating (and dropping) the atomic writer proves the folder is writable and leaves nothing behind.
    drop(AtomicWav::create(path, 22050)?);
    Ok(())
}

fn run_synthesis(
    ctx: &Context,
    voice: &PiperVoice,
    text: &str,
    options: &SynthesisOptions,
    file: Option<&Path>,
    raw: bool,
    converter: Option<&SentenceConverter>,
) -> Result<()> {
    let voice_rate = voice.sample_rate();
    let rate = ctx.settings.config.output.sample_rate.unwrap_or(voice_rate);
    let encoding = WavEncoding::from(ctx.settings.config.output.format);
    let mut sink = match file {
        Some(path) => Sink::File(AtomicWav::create_with(path, rate, encoding)?),
        None if raw => Sink::Raw(std::io::stdout()),
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            out.write_all(&streaming_wav_header(rate, encoding)).context("writing WAV to standard output")?;
            Sink::StdoutWav(out, encoding)
        }
    };
    let mut spoken_samples = 0usize;
    let started = std::time::Instant::now();
    let count = speak_sentences(voice, text, options, converter, |samples| {
        // Each sentence ends in silence (the model fades out), so resampling sentence by sentence is seamless.
        let samples = if rate == voice_rate { samples } else { resample(&samples, voice_rate, rate)? };
        spoken_samples += samples.len();
        sink.write(&samples)
    })?;
    if count == 0 {
        // The sink is dropped here: a partial file is removed.
        return Err(usage("the text has nothing to speak (only punctuation, symbols or unknown characters)"));
    }
    let path = sink.finish()?;
    if !ctx.global.quiet {
        let seconds = spoken_samples as f64 / f64::from(rate);
        let elapsed = started.elapsed().as_secs_f64();
        match path {
            Some(path) => eprintln!(
                "wrote {} ({seconds:.2} s of audio at {rate} Hz, {count} sentence(s), {:.2}x real time)",
                path.display(),
                seconds / elapsed.max(1e-9)
            ),
            None => tracing::info!("{seconds:.2} s of audio at {rate} Hz"),
        }
    }
    Ok(())
}

pub fn piper_infer(ctx: &mut Context, args: PiperInferArgs) -> Result<()> {
    if args.text.trim().is_empty() {
        return Err(usage("the text is empty: nothing to speak"));
    }
    let to_stdout = args.output == Path::new("-");
    if !to_stdout {
        check_writable(&args.output)?;
    } else if std::io::stdout().is_terminal() {
        return Err(usage("refusing to write audio to a terminal; redirect standard output"));
    }
    let scales = ScaleArgs { speaker: args.speaker, preset: args.preset, ..Default::default() };
    let converter = apply_preset_and_flags(ctx, &scales)?;
    let converter = converter.map(|c| SentenceConverter::new(ctx, c)).transpose()?;
    let voice = ctx.load_voice(Some(&args.model))?;
    let options = synthesis_options(ctx, &voice)?;
    let file = (!to_stdout).then_some(args.output.as_path());
    run_synthesis(ctx, &voice, &args.text, &options, file, false, converter.as_ref())
}

/// The old tool's `xtts-zero-shot REF TEXT --output --language`: speech from the default (or given) voice,
/// converted toward a profile measured from the reference recording.
pub fn zero_shot(ctx: &mut Context, args: ZeroShotArgs) -> Result<()> {
    if args.text.trim().is_empty() {
        return Err(usage("the text is empty: nothing to speak"));
    }
    if !args.reference.is_file() {
        return Err(usage(format!("reference recording {} does not exist", args.reference.display())));
    }
    check_writable(&args.output)?;
    let profile =
        demod_voice_core::voice::VoiceProfile::from_recordings("reference", std::slice::from_ref(&args.reference))?;
    let converter = SentenceConverter {
        settings: demod_voice_core::presets::ConverterSettings::default(),
        target: Some(profile.target()),
        realtime: ctx.settings.config.realtime.clone(),
    };
    apply_preset_and_flags(ctx, &ScaleArgs::default())?;
    let voice = ctx.load_voice(args.voice.voice.as_deref())?;
    let language = voice.config.language_code().to_lowercase();
    if !language.starts_with(&args.language.to_lowercase()) {
        tracing::warn!(
            "--language {} differs from the voice's language {language}; the voice's is used",
            args.language
        );
    }
    let options = synthesis_options(ctx, &voice)?;
    run_synthesis(ctx, &voice, &args.text, &options, Some(&args.output), false, Some(&converter))
}

#[derive(Serialize)]
struct PhonemizedSentence {
    text: String,
    phonemes: String,
    phoneme_ids: Vec<i64>,
}

#[derive(Serialize)]
struct Phonemized {
    sentences: Vec<PhonemizedSentence>,
}

pub fn phonemize(ctx: &Context, args: PhonemizeArgs) -> Result<()> {
    let text = read_text(args.text, None)?;
    let model = ctx.voice_path(args.voice.voice.as_deref())?;
    let config =
        demod_voice_core::piper::VoiceConfig::load(&demod_voice_core::piper::VoiceConfig::path_for_model(&model))?;
    let espeak = match config.phoneme_type {
        demod_voice_core::piper::PhonemeType::Espeak => Some(ctx.espeak()?),
        _ => None,
    };
    let sentences = demod_voice_core::piper::phonemize(&config, espeak, &text)?;
    let out = Phonemized {
        sentences: sentences
            .iter()
            .map(|s| {
                let (ids, unknown) = demod_voice_core::piper::phonemes_to_ids(&s.phonemes, &config.phoneme_id_map);
                for phoneme in unknown.0 {
                    tracing::warn!("phoneme {phoneme:?} is not in the voice's id map; skipped");
                }
                PhonemizedSentence { text: s.text.clone(), phonemes: s.phoneme_string(), phoneme_ids: ids }
            })
            .collect(),
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut stdout, &out)?;
        writeln!(stdout)?;
    } else {
        for s in &out.sentences {
            writeln!(stdout, "{}", s.phonemes)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiceRow {
    pub name: String,
    pub language: String,
    pub quality: String,
    pub sample_rate: u32,
    pub speakers: u32,
    /// Speaker names in id order (the ids themselves when the voice names none); empty for one speaker.
    pub speaker_names: Vec<String>,
    pub model: PathBuf,
    pub problem: Option<String>,
}

/// The installed Piper voices, each with its details or why it cannot be used.
/// A multi-speaker voice's speakers by id: their names where the voice gives them, else the ids.
fn speaker_names(config: &demod_voice_core::piper::VoiceConfig) -> Vec<String> {
    if config.num_speakers <= 1 {
        return Vec::new();
    }
    (0..i64::from(config.num_speakers))
        .map(|id| {
            config
                .speaker_id_map
                .iter()
                .find(|(_, &mapped)| mapped == id)
                .map_or_else(|| id.to_string(), |(name, _)| name.clone())
        })
        .collect()
}

pub fn voice_rows(ctx: &Context) -> Vec<VoiceRow> {
    assets::installed_voices(&ctx.dirs.voices_dir())
        .into_iter()
        .map(|voice| {
            let config_path = demod_voice_core::piper::VoiceConfig::path_for_model(&voice.model);
            match demod_voice_core::piper::VoiceConfig::load(&config_path) {
                Ok(config) => VoiceRow {
                    name: voice.name,
                    language: config.language_code(),
                    quality: config.audio.quality.clone().unwrap_or_else(|| "-".into()),
                    sample_rate: config.audio.sample_rate,
                    speakers: config.num_speakers,
                    speaker_names: speaker_names(&config),
                    model: voice.model,
                    problem: None,
                },
                Err(e) => VoiceRow {
                    name: voice.name,
                    language: "?".into(),
                    quality: "?".into(),
                    sample_rate: 0,
                    speakers: 0,
                    speaker_names: Vec::new(),
                    model: voice.model,
                    problem: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// One conversion profile of the library, with its measurements or why it cannot be used (`voices list` and the
/// app's Voices screen both show these).
#[derive(Debug, Clone, Serialize)]
pub struct ProfileRow {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_f0_hz: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formant_scale: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voiced_seconds: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub path: PathBuf,
}

/// The profiles in the library, each measured or with its problem.
pub fn profile_rows(ctx: &Context) -> Vec<ProfileRow> {
    demod_voice_core::voice::list(&ctx.profiles_dir())
        .into_iter()
        .map(|(name, path)| match demod_voice_core::voice::VoiceProfile::load(&path) {
            Ok(p) => ProfileRow {
                name,
                median_f0_hz: Some(p.median_f0_hz),
                formant_scale: Some(p.formant_scale),
                voiced_seconds: Some(p.voiced_seconds),
                problem: None,
                path,
            },
            Err(e) => ProfileRow {
                name,
                median_f0_hz: None,
                formant_scale: None,
                voiced_seconds: None,
                problem: Some(e.to_string()),
                path,
            },
        })
        .collect()
}

pub fn voices(ctx: &Context, command: VoicesCommand) -> Result<()> {
    let json = match command {
        VoicesCommand::List { json } => json,
        VoicesCommand::AddProfile { name, references, force } => {
            return crate::convert_cmd::add_profile(ctx, &name, &references, force)
        }
        VoicesCommand::Show { name } => return crate::convert_cmd::show(ctx, &name),
    };
    let profiles = profile_rows(ctx);
    let rows = voice_rows(ctx);
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &serde_json::json!({"voices": rows, "profiles": profiles}))?;
        writeln!(stdout)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(stdout, "no voices installed in {}; run `demod-voice setup`", ctx.dirs.voices_dir().display())?;
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
        writeln!(stdout, "\n{:<28} {:>10} {:>8}", "PROFILE", "MEDIAN F0", "FORMANT")?;
        for p in &profiles {
            match (&p.problem, p.median_f0_hz, p.formant_scale) {
                (None, Some(f0), Some(formant)) => writeln!(stdout, "{:<28} {f0:>7.1} Hz {formant:>8.3}", p.name)?,
                (problem, _, _) => writeln!(stdout, "{:<28} unusable: {}", p.name, problem.as_deref().unwrap_or("?"))?,
            }
        }
    }
    Ok(())
}

pub fn setup(ctx: &Context, args: SetupArgs) -> Result<()> {
    let options = SetupOptions {
        gpu: args.gpu,
        offline: ctx.global.offline,
        force: args.force,
        python: args.python,
        ..Default::default()
    };
    let quiet = ctx.global.quiet;
    let report = assets::setup(&ctx.dirs, &options, &mut |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })?;
    for item in &report {
        println!("{:<10} {:<16} {} ({})", item.what, item.action, item.path.display(), item.package);
    }
    // Verify: load what was installed, exactly as a command would.
    let runtime = ctx.runtime()?;
    let espeak = ctx.espeak()?;
    let model = ctx.voice_path(None)?;
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
