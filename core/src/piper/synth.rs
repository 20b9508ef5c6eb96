//! Synthesis: one loaded VITS session per voice, reused for every sentence.
//!
//! Load -> [`phonemize`](super::phonemes::phonemize) (pure but for espeak) -> [`PiperVoice::infer`] ->
//! [`postprocess`] (pure). Audio leaves sentence by sentence through a callback, so a long text never sits in
//! memory as audio.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::value::Tensor;

use super::config::VoiceConfig;
use super::phonemes::{phonemes_to_ids, phonemize, text_chunks, Sentence};

/// Long texts are phonemised in pieces of about this size (see [`text_chunks`]).
const CHUNK_BYTES: usize = 4096;
use crate::config::TtsSection;
use crate::error::{Error, Result};
use crate::espeak::Espeak;
use crate::onnx::{LoadedSession, Runtime, SessionOptions};

/// Per-utterance settings: the `tts` settings of the config (the one place the speech knobs are declared; `None`
/// scales fall back to the voice config's `inference` values) with the speaker resolved to this voice's id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SynthesisOptions {
    /// `sid` for multi-speaker voices; `None` uses the voice's default speaker.
    pub speaker_id: Option<i64>,
    /// Scales, sentence silence, volume and normalisation (`voice` and `speaker` are resolved by the caller).
    pub tts: TtsSection,
    /// Speak the first sentence's first clause on its own ([`split_first_clause`]), so playback can start after
    /// that clause's inference instead of the whole sentence's. Changes the audio at that clause boundary (the
    /// model sees two utterances), so only live playback asks for it; files stay Piper's.
    pub early_first_clause: bool,
}

impl SynthesisOptions {
    /// Reject values that would make the model or the output meaningless.
    pub fn validate(&self) -> Result<()> {
        let check = |key: &str, value: Option<f32>, limit: crate::limits::Limit| -> Result<()> {
            match value {
                Some(v) if !limit.contains(v) => Err(Error::Setting {
                    key: key.into(),
                    problem: format!("{v} is outside {}..{}", limit.min, limit.max),
                }),
                _ => Ok(()),
            }
        };
        use crate::limits::*;
        let tts = &self.tts;
        check("length-scale", tts.length_scale, LENGTH_SCALE)?;
        check("noise-scale", tts.noise_scale, NOISE_SCALE)?;
        check("noise-w", tts.noise_w, NOISE_W)?;
        check("sentence-silence", Some(tts.sentence_silence), SENTENCE_SILENCE)?;
        check("volume", Some(tts.volume), VOLUME)?;
        Ok(())
    }
}

/// The audio of one sentence.
#[derive(Debug, Clone)]
pub struct SentenceAudio {
    /// Index of the sentence in the text.
    pub index: usize,
    /// The sentence.
    pub sentence: Sentence,
    /// Its phoneme ids as the model saw them.
    pub phoneme_ids: Vec<i64>,
    /// Mono samples in -1..1 at the voice's rate, followed by the sentence silence.
    pub samples: Vec<f32>,
    /// Seconds spent in the model for this sentence.
    pub infer_seconds: f64,
    /// More of the same sentence follows in the next piece (its first clause, spoken early; no silence after it).
    pub continues: bool,
}

/// A loaded Piper voice.
#[derive(Debug)]
pub struct PiperVoice {
    /// The voice's name (its file name without `.onnx`).
    pub name: String,
    /// The `.onnx` file.
    pub model_path: PathBuf,
    /// Its `.onnx.json`.
    pub config: VoiceConfig,
    session: Mutex<LoadedSession>,
    espeak: Option<&'static Espeak>,
    /// Whether the model takes a `sid` input.
    has_sid_input: bool,
}

impl PiperVoice {
    /// Load `model` (config beside it as `model.json`) with `runtime`.
    pub fn load(
        runtime: &Runtime,
        model: &Path,
        espeak: Option<&'static Espeak>,
        options: &SessionOptions,
    ) -> Result<PiperVoice> {
        if !model.is_file() {
            return Err(Error::VoiceModelMissing { path: model.to_path_buf() });
        }
        let config = VoiceConfig::load(&VoiceConfig::path_for_model(model))?;
        Self::load_with_config(runtime, model, config, espeak, options)
    }

    /// Load `model` with a config already read (callers that inspect the config first need not read it twice).
    pub fn load_with_config(
        runtime: &Runtime,
        model: &Path,
        config: VoiceConfig,
        espeak: Option<&'static Espeak>,
        options: &SessionOptions,
    ) -> Result<PiperVoice> {
        if !model.is_file() {
            return Err(Error::VoiceModelMissing { path: model.to_path_buf() });
        }
        let session = runtime.session_from_file(model, options)?;
        Self::from_session(voice_name(model), model, config, session, espeak)
    }

    /// Wrap an existing session (tests inject tiny models this way).
    pub fn from_session(
        name: String,
        model: &Path,
        config: VoiceConfig,
        session: LoadedSession,
        espeak: Option<&'static Espeak>,
    ) -> Result<PiperVoice> {
        let names: Vec<String> = session.session.inputs().iter().map(|i| i.name().to_string()).collect();
        for required in ["input", "input_lengths", "scales"] {
            if !names.iter().any(|n| n == required) {
                return Err(Error::VoiceModel {
                    path: model.to_path_buf(),
                    message: format!(
                        "is not a Piper VITS model: it has no input `{required}` (inputs: {})",
                        names.join(", ")
                    ),
                });
            }
        }
        let has_sid_input = names.iter().any(|n| n == "sid");
        if config.num_speakers > 1 && !has_sid_input {
            return Err(Error::VoiceModel {
                path: model.to_path_buf(),
                message: format!("its config says {} speakers but the model has no `sid` input", config.num_speakers),
            });
        }
        if config.phoneme_type == super::config::PhonemeType::Espeak && espeak.is_none() {
            return Err(Error::InvalidText { reason: "this voice needs espeak-ng, which is not loaded".into() });
        }
        Ok(PiperVoice {
            name,
            model_path: model.to_path_buf(),
            config,
            session: Mutex::new(session),
            espeak,
            has_sid_input,
        })
    }

    /// Output sample rate, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }

    /// The provider the session really uses.
    pub fn provider(&self) -> String {
        self.session.lock().map(|s| s.provider.clone()).unwrap_or_default()
    }

    /// Resolve a speaker given by id or by name.
    pub fn speaker_id(&self, speaker: &str) -> Result<i64> {
        let available = || {
            if self.config.num_speakers <= 1 {
                "this voice has one speaker, 0".to_string()
            } else if self.config.speaker_id_map.is_empty() {
                format!("ids 0..{}", self.config.num_speakers - 1)
            } else {
                let names: Vec<String> =
                    self.config.speaker_id_map.iter().map(|(name, id)| format!("{name}={id}")).collect();
                names.join(", ")
            }
        };
        if let Some(&id) = self.config.speaker_id_map.get(speaker) {
            return Ok(id);
        }
        match speaker.parse::<i64>() {
            Ok(id) if id >= 0 && id < i64::from(self.config.num_speakers) => Ok(id),
            _ => Err(Error::SpeakerUnknown { speaker: speaker.to_string(), available: available() }),
        }
    }

    /// Text to sentences of phonemes for this voice.
    pub fn phonemize(&self, text: &str) -> Result<Vec<Sentence>> {
        phonemize(&self.config, self.espeak, text)
    }

    /// Phonemes to ids, warning once per unknown phoneme.
    pub fn ids(&self, sentence: &Sentence) -> Vec<i64> {
        let (ids, unknown) = phonemes_to_ids(&sentence.phonemes, &self.config.phoneme_id_map);
        for phoneme in unknown.0 {
            tracing::warn!(
                "phoneme {phoneme:?} (U+{:04X}) is not in the voice's id map; skipped",
                phoneme.chars().next().map(u32::from).unwrap_or(0)
            );
        }
        ids
    }

    /// Run the model on one sentence's ids; returns raw model audio.
    pub fn infer(&self, ids: &[i64], options: &SynthesisOptions) -> Result<Vec<f32>> {
        let inference = &self.config.inference;
        let scales = vec![
            options.tts.noise_scale.unwrap_or(inference.noise_scale),
            options.tts.length_scale.unwrap_or(inference.length_scale),
            options.tts.noise_w.unwrap_or(inference.noise_w),
        ];
        let context = |what: &str| format!("{what} ({})", self.model_path.display());
        let input = Tensor::from_array(([1usize, ids.len()], ids.to_vec()))
            .map_err(|e| Error::onnx(context("building input"), e))?;
        let lengths = Tensor::from_array(([1usize], vec![ids.len() as i64]))
            .map_err(|e| Error::onnx(context("building input_lengths"), e))?;
        let scales = Tensor::from_array(([3usize], scales)).map_err(|e| Error::onnx(context("building scales"), e))?;
        let mut inputs = ort::inputs![
            "input" => input,
            "input_lengths" => lengths,
            "scales" => scales,
        ];
        if self.has_sid_input {
            let sid = if self.config.num_speakers > 1 {
                options.speaker_id.or(self.config.default_speaker_id).unwrap_or(0)
            } else {
                0
            };
            let sid = Tensor::from_array(([1usize], vec![sid])).map_err(|e| Error::onnx(context("building sid"), e))?;
            inputs.push(("sid".into(), sid.into()));
        }
        let mut session = self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session.session.run(inputs).map_err(|e| Error::onnx(context("running the voice"), e))?;
        if outputs.len() == 0 {
            return Err(Error::VoiceModel {
                path: self.model_path.clone(),
                message: "the model produced no output".into(),
            });
        }
        let (_, audio) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::onnx(context("reading audio output"), e))?;
        Ok(audio.to_vec())
    }

    /// Synthesise `text`, handing each sentence's audio to `sink` as soon as it is ready. Returns the number of
    /// sentences spoken. An error from `sink` stops synthesis and is returned.
    pub fn synthesize<E>(
        &self,
        text: &str,
        options: &SynthesisOptions,
        mut sink: impl FnMut(SentenceAudio) -> std::result::Result<(), E>,
    ) -> std::result::Result<usize, E>
    where
        E: From<Error>,
    {
        options.validate()?;
        let silence = (options.tts.sentence_silence * self.sample_rate() as f32).round() as usize;
        let mut count = 0;
        let mut index = 0;
        let sentences = text_chunks(text, CHUNK_BYTES).into_iter().map(|chunk| self.phonemize(chunk));
        for chunk in sentences {
            for sentence in chunk? {
                index += 1;
                let pieces = match (options.early_first_clause && count == 0).then(|| split_first_clause(&sentence)) {
                    Some(Some((clause, rest))) => vec![(clause, true), (rest, false)],
                    _ => vec![(sentence, false)],
                };
                let mut spoke = false;
                for (sentence, continues) in pieces {
                    let ids = self.ids(&sentence);
                    if ids.len() <= 3 {
                        // Nothing but BOS/PAD/EOS: every phoneme was unknown.
                        continue;
                    }
                    let started = std::time::Instant::now();
                    let raw = self.infer(&ids, options)?;
                    let infer_seconds = started.elapsed().as_secs_f64();
                    let mut samples = postprocess(raw, options);
                    if !continues {
                        samples.resize(samples.len() + silence, 0.0);
                    }
                    let audio = SentenceAudio {
                        index: index - 1,
                        sentence,
                        phoneme_ids: ids,
                        samples,
                        infer_seconds,
                        continues,
                    };
                    sink(audio)?;
                    spoke = true;
                }
                count += usize::from(spoke);
            }
        }
        Ok(count)
    }
}

/// Phonemes that end a clause inside a sentence (espeak keeps the clause punctuation, as Piper does).
const CLAUSE_MARKS: [&str; 3] = [",", ";", ":"];
/// A clause spoken early and the rest must each have at least this many phonemes (a lone "Oh," stays attached).
const MIN_CLAUSE_PHONEMES: usize = 3;

/// `sentence` cut after its first clause mark (`,` `;` `:`), when both sides keep [`MIN_CLAUSE_PHONEMES`]
/// phonemes: the clause with its mark (so the model gives it a continuing, not a final, cadence) and the rest.
pub fn split_first_clause(sentence: &Sentence) -> Option<(Sentence, Sentence)> {
    let at = sentence.phonemes.iter().position(|p| CLAUSE_MARKS.contains(&p.as_str()))?;
    let rest: Vec<String> = sentence.phonemes[at + 1..].iter().skip_while(|p| p.trim().is_empty()).cloned().collect();
    let spoken = |ps: &[String]| ps.iter().filter(|p| !p.trim().is_empty()).count();
    if spoken(&sentence.phonemes[..at]) < MIN_CLAUSE_PHONEMES || spoken(&rest) < MIN_CLAUSE_PHONEMES {
        return None;
    }
    let (head, tail) = match sentence.text.find([',', ';', ':']) {
        Some(cut) => (sentence.text[..=cut].to_string(), sentence.text[cut + 1..].trim().to_string()),
        None => (sentence.text.clone(), String::new()),
    };
    Some((
        Sentence { text: head, phonemes: sentence.phonemes[..=at].to_vec() },
        Sentence { text: tail, phonemes: rest },
    ))
}

/// Peak-normalise (when asked), apply volume, clip to -1..1; non-finite samples become 0.
pub fn postprocess(mut samples: Vec<f32>, options: &SynthesisOptions) -> Vec<f32> {
    for s in samples.iter_mut() {
        if !s.is_finite() {
            *s = 0.0;
        }
    }
    let mut gain = options.tts.volume;
    if options.tts.normalize {
        let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        gain = if peak < 1e-8 { 0.0 } else { gain / peak };
    }
    for s in samples.iter_mut() {
        *s = (*s * gain).clamp(-1.0, 1.0);
    }
    samples
}

/// A voice's name from its model file: `en_US-joe-medium.onnx` -> `en_US-joe-medium`.
pub fn voice_name(model: &Path) -> String {
    model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| model.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options_with(change: impl FnOnce(&mut TtsSection)) -> SynthesisOptions {
        let mut options = SynthesisOptions::default();
        change(&mut options.tts);
        options
    }

    #[test]
    fn normalisation_brings_peak_to_volume() {
        let options = options_with(|t| t.volume = 0.5);
        let out = postprocess(vec![0.1, -0.2, f32::NAN], &options);
        assert_eq!(out, vec![0.25, -0.5, 0.0]);
    }

    #[test]
    fn without_normalisation_volume_scales_and_clips() {
        let options = options_with(|t| {
            t.volume = 4.0;
            t.normalize = false;
        });
        assert_eq!(postprocess(vec![0.1, -0.5], &options), vec![0.4, -1.0]);
    }

    #[test]
    fn silence_normalises_to_silence() {
        let out = postprocess(vec![0.0; 4], &SynthesisOptions::default());
        assert_eq!(out, vec![0.0; 4]);
    }

    #[test]
    fn out_of_range_options_are_rejected_by_name() {
        let options = options_with(|t| t.length_scale = Some(0.0));
        assert!(options.validate().unwrap_err().to_string().contains("length-scale"));
        let options = options_with(|t| t.volume = f32::INFINITY);
        assert!(options.validate().unwrap_err().to_string().contains("volume"));
    }
}
