//! The one speech pipeline: text -> sentences -> phoneme ids -> audio -> optional converter -> resample -> sink.
//!
//! `speak`, `piper-infer`, `clone` (and its old spelling `xtts-zero-shot`), every batch job, the app's Speak and
//! Save and `bench` all run [`Speech::run`], so the same text and settings give the same samples everywhere.
//! Front-ends only choose the voice, the settings and where the audio goes ([`Sink`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::clone::CloneMatch;
use crate::config::{RealtimeSection, TtsSection};
use crate::convert::dsp::Target;
use crate::convert::rvc::RvcSetup;
use crate::convert::tone::ToneSetup;
use crate::convert::Engine;
use crate::error::{Error, Result};
use crate::matching::{Adjust, Goal, OfflineMatch};
use crate::piper::{PiperVoice, Sentence, SynthesisOptions};
use crate::presets::ConverterSettings;
use crate::profile::VoiceProfile;
use crate::settings::Settings;
use crate::wav::{resample, streaming_wav_header, write_s16le, write_samples, AtomicWav, WavEncoding};

impl SynthesisOptions {
    /// The synthesis options the `tts` settings describe for `voice` (the speaker name resolved to its id). This
    /// is the only place settings become synthesis options.
    pub fn from_tts(tts: &TtsSection, voice: &PiperVoice) -> Result<SynthesisOptions> {
        let speaker_id = match &tts.speaker {
            Some(speaker) => Some(voice.speaker_id(speaker)?),
            None => None,
        };
        let options = SynthesisOptions { speaker_id, tts: tts.clone(), early_first_clause: false };
        options.validate()?;
        Ok(options)
    }
}

/// A converter applied to each sentence (sentences end in silence, so each is converted on its own), exactly as
/// `convert` converts a file. Matching a profile with the `dsp` engine is done offline on the whole clip
/// ([`crate::matching`]); everything else runs through the real-time engine as the live paths do.
#[derive(Debug, Clone)]
pub struct SentenceConverter {
    /// Engine, pitch, formant, profile amount and mix.
    pub settings: ConverterSettings,
    /// The voice profile to match, if any, as the live converter takes it.
    pub target: Option<Target>,
    /// The same profile for offline matching (with a fit once one is attached).
    pub offline: Option<Arc<OfflineMatch>>,
    /// Hop, cross-fade and context of the real-time engine.
    pub realtime: RealtimeSection,
    /// Cloning toward a reference recording, which replaces the settings' conversion when present.
    pub clone: Option<Arc<CloneMatch>>,
    /// The first source recording's SHA-256 of the profile, which names its fits in the cloning cache.
    pub profile_sha256: Option<String>,
    /// The tone colour engine's model and target tone, when that engine is chosen.
    pub tone: Option<Arc<ToneSetup>>,
    /// The RVC engine's installed model, when that engine is chosen.
    pub rvc: Option<Arc<RvcSetup>>,
}

impl SentenceConverter {
    /// The converter `settings` describe (the preset's and the flags'), its profile loaded from the library.
    /// `None` when no conversion was asked for.
    pub fn from_settings(settings: &Settings) -> Result<Option<SentenceConverter>> {
        let Some(converter) = settings.converter.clone() else { return Ok(None) };
        let profile = settings.converter_profile()?;
        let tone = match converter.engine {
            Engine::ToneColor => Some(Arc::new(ToneSetup::from_settings(settings, profile.clone())?)),
            _ => None,
        };
        let rvc = match converter.engine {
            Engine::Rvc => Some(Arc::new(RvcSetup::from_settings(settings)?)),
            _ => None,
        };
        Ok(Some(SentenceConverter {
            tone,
            rvc,
            settings: converter,
            target: profile.as_ref().map(VoiceProfile::target),
            offline: profile.as_ref().map(|p| Arc::new(OfflineMatch { goal: Goal::of_profile(p), fit: None })),
            realtime: settings.config.realtime.clone(),
            clone: None,
            profile_sha256: profile.and_then(|p| p.sources.first().map(|s| s.sha256.clone())),
        }))
    }

    /// Use the fit made for `voice` (and its speaker) toward the profile, when the cloning cache has one: speech by
    /// that voice then moves as `clone` would move it. Nothing is measured here.
    pub fn attach_fit(&mut self, voice: &PiperVoice, settings: &Settings) {
        let (Some(offline), Some(sha)) = (&self.offline, &self.profile_sha256) else { return };
        if let Some(fit) = crate::clone::cached_fit(&settings.dirs.cache, sha, voice, settings) {
            self.offline = Some(Arc::new(OfflineMatch { goal: offline.goal.clone(), fit: Some(fit) }));
        }
    }

    /// Convert one sentence's samples at `sample_rate_hz`. Allocates (offline use).
    pub fn apply(&self, samples: &[f32], sample_rate_hz: u32) -> Result<Vec<f32>> {
        if let Some(clone) = &self.clone {
            return clone.profile.convert(samples, sample_rate_hz, &clone.fit);
        }
        let offline = |converter| crate::realtime::convert_offline(samples, sample_rate_hz, converter, &self.realtime);
        let wet = if let Some(tone) = &self.tone {
            // The clip's own tone is the source tone; the real-time engine streams it.
            let clip = resample(samples, sample_rate_hz, crate::convert::spectrogram::SAMPLE_RATE)?;
            offline(tone.converter_for(&clip)?)?
        } else if let Some(rvc) = &self.rvc {
            offline(rvc.for_clip(self.settings.pitch_semitones)?)?
        } else if let (Some(matched), Engine::Dsp) = (&self.offline, self.settings.engine) {
            matched.convert(samples, sample_rate_hz, &Adjust::of(&self.settings))?
        } else {
            return self.apply_live(samples, sample_rate_hz);
        };
        Ok(self.settings.mixed(&wet, samples))
    }

    /// Convert as the live paths (the plugin, the Live screen) do: through the real-time engine, the profile's
    /// median estimated as the audio goes. Allocates (offline use).
    pub fn apply_live(&self, samples: &[f32], sample_rate_hz: u32) -> Result<Vec<f32>> {
        self.settings.convert_clip(samples, sample_rate_hz, self.target, &self.realtime)
    }

    /// A neural engine (`tone` or `rvc`) with `settings`' pitch and mix, whatever else the settings say.
    pub fn neural(
        settings: ConverterSettings,
        realtime: &RealtimeSection,
        tone: Option<Arc<ToneSetup>>,
        rvc: Option<Arc<RvcSetup>>,
    ) -> SentenceConverter {
        SentenceConverter {
            settings,
            target: None,
            offline: None,
            realtime: realtime.clone(),
            clone: None,
            profile_sha256: None,
            tone,
            rvc,
        }
    }

    /// Cloning toward `clone` (whatever the settings' converter says).
    pub fn cloning(clone: Arc<CloneMatch>, realtime: &RealtimeSection) -> SentenceConverter {
        SentenceConverter {
            settings: ConverterSettings::default(),
            target: None,
            offline: None,
            realtime: realtime.clone(),
            clone: Some(clone),
            profile_sha256: None,
            tone: None,
            rvc: None,
        }
    }
}

/// True when a sentence has something to say beyond punctuation and spaces.
pub fn has_speech(sentence: &Sentence) -> bool {
    sentence.phonemes.iter().any(|p| !p.chars().all(|c| c.is_whitespace() || ".,:;!?'\"()-".contains(c)))
}

/// One utterance to speak: a loaded voice, its synthesis options, an optional converter and the output rate.
#[derive(Debug)]
pub struct Speech<'v> {
    /// The voice that speaks.
    pub voice: &'v PiperVoice,
    /// Speaker, scales, silence, volume, normalisation.
    pub options: SynthesisOptions,
    /// Conversion applied to each sentence, if any.
    pub converter: Option<SentenceConverter>,
    /// The rate of the audio handed to the sink (the voice's own rate unless `output.sample_rate` says otherwise).
    pub output_rate_hz: u32,
}

/// What [`Speech::run`] produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spoken {
    /// Sentences that had something to say.
    pub sentences: usize,
    /// Samples handed to the sink, at the output rate.
    pub samples: usize,
    /// The output rate, Hz.
    pub sample_rate_hz: u32,
}

impl Spoken {
    /// Seconds of audio handed to the sink.
    pub fn seconds(&self) -> f64 {
        self.samples as f64 / f64::from(self.sample_rate_hz.max(1))
    }
}

impl<'v> Speech<'v> {
    /// Speech with `voice` as `settings` describe it: the `tts` options, the converter (preset and flags, with its
    /// profile) and `output.sample_rate`.
    pub fn new(voice: &'v PiperVoice, settings: &Settings) -> Result<Speech<'v>> {
        let mut converter = SentenceConverter::from_settings(settings)?;
        if let Some(converter) = converter.as_mut() {
            converter.attach_fit(voice, settings);
        }
        Ok(Speech {
            voice,
            options: SynthesisOptions::from_tts(&settings.config.tts, voice)?,
            converter,
            output_rate_hz: settings.config.output.sample_rate.unwrap_or(voice.sample_rate()),
        })
    }

    /// Synthesise `text` sentence by sentence: sentences with nothing to say are skipped, the converter applies,
    /// the audio is resampled to the output rate, and each sentence goes to `each` as soon as it is ready. An error
    /// from `each` stops the synthesis and is returned. Speaking nothing at all is [`Error::InvalidText`].
    pub fn run<E>(
        &self,
        text: &str,
        each: impl FnMut(&[f32]) -> std::result::Result<(), E>,
    ) -> std::result::Result<Spoken, E>
    where
        E: From<Error>,
    {
        self.run_tapped(text, each, |_| {})
    }

    /// [`Speech::run`], also handing each sentence's unconverted audio (at the voice's rate) to `source` first
    /// (`clone` measures how far the conversion moved the voice).
    pub fn run_tapped<E>(
        &self,
        text: &str,
        mut each: impl FnMut(&[f32]) -> std::result::Result<(), E>,
        mut source: impl FnMut(&[f32]),
    ) -> std::result::Result<Spoken, E>
    where
        E: From<Error>,
    {
        let voice_rate = self.voice.sample_rate();
        let mut spoken = Spoken { sentences: 0, samples: 0, sample_rate_hz: self.output_rate_hz };
        self.voice.synthesize(text, &self.options, |audio| -> std::result::Result<(), E> {
            if !has_speech(&audio.sentence) {
                tracing::warn!("sentence {:?} has nothing to speak; skipped", audio.sentence.text);
                return Ok(());
            }
            tracing::info!(
                "sentence {}: {} samples in {:.3} s: {}",
                audio.index + 1,
                audio.samples.len(),
                audio.infer_seconds,
                audio.sentence.text
            );
            let audio_continues = audio.continues;
            source(&audio.samples);
            let samples = match &self.converter {
                Some(converter) => converter.apply(&audio.samples, voice_rate)?,
                None => audio.samples,
            };
            // Each sentence ends in silence (the model fades out), so resampling sentence by sentence is seamless.
            let samples = if self.output_rate_hz == voice_rate {
                samples
            } else {
                resample(&samples, voice_rate, self.output_rate_hz)?
            };
            spoken.sentences += usize::from(!audio_continues);
            spoken.samples += samples.len();
            each(&samples)
        })?;
        if spoken.sentences == 0 {
            return Err(Error::InvalidText {
                reason: "the text has nothing to speak (only punctuation, symbols or unknown characters)".into(),
            }
            .into());
        }
        Ok(spoken)
    }

    /// Speak `text` into `sink` and finish it (a file is renamed into place only when everything was written;
    /// on any error it is removed). Returns what was spoken and the file written, if any.
    pub fn to_sink(&self, text: &str, mut sink: Sink) -> Result<(Spoken, Option<PathBuf>)> {
        let spoken = self.run(text, |samples| sink.write(samples))?;
        Ok((spoken, sink.finish()?))
    }

    /// Speak `text` into a WAV file at `path` (written atomically, in `encoding`).
    pub fn to_file(&self, text: &str, path: &Path, encoding: WavEncoding) -> Result<Spoken> {
        let sink = Sink::File(AtomicWav::create_with(path, self.output_rate_hz, encoding)?);
        Ok(self.to_sink(text, sink)?.0)
    }
}

/// Where synthesised audio goes.
pub enum Sink {
    /// A WAV file, written atomically (complete or absent).
    File(AtomicWav),
    /// A WAV stream (its header declares an open-ended length), for standard output.
    WavStream(Box<dyn Write + Send>, WavEncoding),
    /// Raw 16-bit little-endian PCM, flushed sentence by sentence so each leaves as soon as it is ready.
    Raw(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::File(wav) => write!(f, "Sink::File({wav:?})"),
            Sink::WavStream(_, encoding) => write!(f, "Sink::WavStream({encoding:?})"),
            Sink::Raw(_) => f.write_str("Sink::Raw"),
        }
    }
}

fn stream_error(source: std::io::Error) -> Error {
    Error::Write { path: PathBuf::from("(standard output)"), source }
}

impl Sink {
    /// A WAV stream on `out`: the header is written now.
    pub fn wav_stream(mut out: Box<dyn Write + Send>, sample_rate_hz: u32, encoding: WavEncoding) -> Result<Sink> {
        out.write_all(&streaming_wav_header(sample_rate_hz, encoding)).map_err(stream_error)?;
        Ok(Sink::WavStream(out, encoding))
    }

    /// Append samples.
    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        match self {
            Sink::File(wav) => wav.write(samples),
            Sink::WavStream(out, encoding) => write_samples(out, samples, *encoding).map_err(stream_error),
            Sink::Raw(out) => {
                write_s16le(out, samples).map_err(stream_error)?;
                out.flush().map_err(stream_error)
            }
        }
    }

    /// Finish: a file is renamed into place (its path returned), a stream flushed.
    pub fn finish(self) -> Result<Option<PathBuf>> {
        match self {
            Sink::File(wav) => Ok(Some(wav.finish()?)),
            Sink::WavStream(mut out, _) | Sink::Raw(mut out) => {
                out.flush().map_err(stream_error)?;
                Ok(None)
            }
        }
    }
}

/// Loaded voices by the name or path they were asked for, each loaded once and shared (batch workers, the app's
/// kept voice, `bench`). Loading is the front-end's (it may install the default voice on first use).
#[derive(Debug, Default)]
pub struct VoiceCache {
    voices: Mutex<HashMap<String, Arc<PiperVoice>>>,
}

impl VoiceCache {
    /// The voice `spec`, loading it with `load` the first time. Concurrent callers wait for the one load instead
    /// of loading twice.
    pub fn get<E>(
        &self,
        spec: &str,
        load: impl FnOnce(&str) -> std::result::Result<PiperVoice, E>,
    ) -> std::result::Result<Arc<PiperVoice>, E> {
        let mut voices = self.voices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(voice) = voices.get(spec) {
            return Ok(Arc::clone(voice));
        }
        let voice = Arc::new(load(spec)?);
        voices.insert(spec.to_string(), Arc::clone(&voice));
        Ok(voice)
    }

    /// Forget every voice except `spec` (the app keeps one voice loaded at a time).
    pub fn keep_only(&self, spec: &str) {
        self.voices.lock().unwrap_or_else(|p| p.into_inner()).retain(|name, _| name == spec);
    }
}
