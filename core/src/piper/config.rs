//! A Piper voice's `.onnx.json`, every field Piper's trainer writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Piper's inference defaults, used when a config leaves them out.
pub const DEFAULT_NOISE_SCALE: f32 = 0.667;
/// Piper's default length scale.
pub const DEFAULT_LENGTH_SCALE: f32 = 1.0;
/// Piper's default noise-w scale.
pub const DEFAULT_NOISE_W: f32 = 0.8;
/// Piper's default hop length (samples per model frame).
pub const DEFAULT_HOP_LENGTH: u32 = 256;

/// How text becomes phonemes for this voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhonemeType {
    /// espeak-ng IPA (nearly every Piper voice).
    Espeak,
    /// Unicode codepoints of the (NFD-decomposed) text are the phonemes.
    Text,
    /// Phonemisers Piper has for other scripts; not supported here yet, reported clearly.
    Pinyin,
    /// Hebrew (text phonemes).
    Hebrew,
    /// Japanese (text phonemes).
    Japanese,
    /// Thai (text phonemes).
    Thai,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// `audio`: the voice's sample rate and quality.
pub struct AudioConfig {
    /// Rate of the model's output, Hz.
    pub sample_rate: u32,
    /// `x_low`, `low`, `medium` or `high`.
    #[serde(default)]
    pub quality: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// `espeak`: the espeak-ng voice to phonemise with.
pub struct EspeakConfig {
    /// espeak-ng voice name, e.g. `en-us`.
    pub voice: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// `inference`: the voice's default scales.
pub struct InferenceConfig {
    #[serde(default = "default_noise_scale")]
    /// Noise scale.
    pub noise_scale: f32,
    #[serde(default = "default_length_scale")]
    /// Length scale.
    pub length_scale: f32,
    #[serde(default = "default_noise_w")]
    /// Noise-w scale.
    pub noise_w: f32,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            noise_scale: DEFAULT_NOISE_SCALE,
            length_scale: DEFAULT_LENGTH_SCALE,
            noise_w: DEFAULT_NOISE_W,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
/// `language`: the voice's language.
pub struct LanguageConfig {
    /// e.g. `en_US`.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    /// Language family (`en`).
    pub family: Option<String>,
    #[serde(default)]
    /// Region (`US`).
    pub region: Option<String>,
    #[serde(default)]
    /// The language's own name.
    pub name_native: Option<String>,
    #[serde(default)]
    /// The language's English name.
    pub name_english: Option<String>,
    #[serde(default)]
    /// The country's English name.
    pub country_english: Option<String>,
}

/// The whole `.onnx.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceConfig {
    /// Sample rate and quality.
    pub audio: AudioConfig,
    /// Needed when `phoneme_type` is `espeak`.
    #[serde(default)]
    pub espeak: Option<EspeakConfig>,
    #[serde(default)]
    /// Default scales.
    pub inference: InferenceConfig,
    #[serde(default = "default_phoneme_type")]
    /// How text becomes phonemes.
    pub phoneme_type: PhonemeType,
    /// Phoneme -> phonemes replacing it, applied after phonemisation.
    #[serde(default)]
    pub phoneme_map: BTreeMap<String, Vec<String>>,
    /// Phoneme -> model input ids (usually one).
    pub phoneme_id_map: BTreeMap<String, Vec<i64>>,
    #[serde(default)]
    /// Size of the phoneme vocabulary.
    pub num_symbols: Option<u32>,
    #[serde(default = "one")]
    /// Speakers in the model (1 for a single-speaker voice).
    pub num_speakers: u32,
    /// Speaker name -> `sid`.
    #[serde(default)]
    pub speaker_id_map: BTreeMap<String, i64>,
    #[serde(default)]
    /// The speaker used when none is asked for.
    pub default_speaker_id: Option<i64>,
    #[serde(default)]
    /// The Piper version that trained it.
    pub piper_version: Option<String>,
    #[serde(default)]
    /// The voice's language.
    pub language: Option<LanguageConfig>,
    #[serde(default)]
    /// The data set it was trained on.
    pub dataset: Option<String>,
    #[serde(default)]
    /// Samples per model frame.
    pub hop_length: Option<u32>,
    /// Runs of phonemes merged into one id-map entry (e.g. `["a", "ɪ"]` -> `aɪ`).
    #[serde(default)]
    pub vowel_clusters: Vec<Vec<String>>,
}

fn default_noise_scale() -> f32 {
    DEFAULT_NOISE_SCALE
}
fn default_length_scale() -> f32 {
    DEFAULT_LENGTH_SCALE
}
fn default_noise_w() -> f32 {
    DEFAULT_NOISE_W
}
fn default_phoneme_type() -> PhonemeType {
    PhonemeType::Espeak
}
fn one() -> u32 {
    1
}

impl VoiceConfig {
    /// Read and check a voice config file.
    pub fn load(path: &Path) -> Result<VoiceConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::VoiceConfigMissing { path: path.to_path_buf() }
            } else {
                Error::Read { path: path.to_path_buf(), source }
            }
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<VoiceConfig> {
        let config: VoiceConfig = serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; the location is reported in its own fields.
            let message = match message.rfind(" at line ") {
                Some(idx) => message[..idx].to_string(),
                None => message,
            };
            let message =
                if e.is_data() { message.replace("missing field", "missing required field") } else { message };
            Error::VoiceConfigSyntax { path: path.to_path_buf(), line: e.line(), column: e.column(), message }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let field = |field: &str, problem: String| Error::VoiceConfigField {
            path: path.to_path_buf(),
            field: field.to_string(),
            problem,
        };
        if !(1000..=384_000).contains(&self.audio.sample_rate) {
            return Err(field("audio.sample_rate", format!("is {} Hz, expected 1000..384000", self.audio.sample_rate)));
        }
        for special in ["^", "_", "$"] {
            if !self.phoneme_id_map.contains_key(special) {
                return Err(field(
                    "phoneme_id_map",
                    format!("has no entry for `{special}` (BOS `^`, PAD `_` and EOS `$` are required)"),
                ));
            }
        }
        if let Some((phoneme, _)) = self.phoneme_id_map.iter().find(|(_, ids)| ids.is_empty()) {
            return Err(field("phoneme_id_map", format!("maps `{phoneme}` to no ids")));
        }
        if let Some(num_symbols) = self.num_symbols {
            if let Some(bad) =
                self.phoneme_id_map.values().flatten().find(|&&id| id < 0 || id >= i64::from(num_symbols))
            {
                return Err(field("phoneme_id_map", format!("has id {bad}, outside 0..{num_symbols} (num_symbols)")));
            }
        }
        if self.num_speakers == 0 {
            return Err(field("num_speakers", "is 0, expected at least 1".into()));
        }
        if let Some((name, id)) =
            self.speaker_id_map.iter().find(|(_, &id)| id < 0 || id >= i64::from(self.num_speakers))
        {
            return Err(field(
                "speaker_id_map",
                format!("gives speaker `{name}` id {id}, outside 0..{} (num_speakers)", self.num_speakers),
            ));
        }
        if self.phoneme_type == PhonemeType::Espeak && self.espeak.is_none() {
            return Err(field("espeak.voice", "is missing; it is required when phoneme_type is `espeak`".into()));
        }
        for (name, value) in [
            ("inference.noise_scale", self.inference.noise_scale),
            ("inference.length_scale", self.inference.length_scale),
            ("inference.noise_w", self.inference.noise_w),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(field(name, format!("is {value}, expected a finite number >= 0")));
            }
        }
        Ok(())
    }

    /// The `.onnx.json` that belongs to a model file.
    pub fn path_for_model(model: &Path) -> PathBuf {
        let mut name = model.as_os_str().to_owned();
        name.push(".json");
        PathBuf::from(name)
    }

    /// The espeak voice, `en-us` style.
    pub fn espeak_voice(&self) -> Option<&str> {
        self.espeak.as_ref().map(|e| e.voice.as_str())
    }

    /// The language code shown to users (`en_US`), falling back to the espeak voice.
    pub fn language_code(&self) -> String {
        self.language
            .as_ref()
            .and_then(|l| l.code.clone())
            .or_else(|| self.espeak_voice().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{
        "audio": {"sample_rate": 16000},
        "espeak": {"voice": "en-us"},
        "num_speakers": 2,
        "speaker_id_map": {"alice": 0, "bob": 1},
        "phoneme_id_map": {"^": [1], "_": [0], "$": [2], "a": [3]}
    }"#;

    #[test]
    fn minimal_config_gets_piper_defaults() {
        let config = VoiceConfig::parse(MINIMAL, Path::new("v.onnx.json")).unwrap();
        assert_eq!(config.inference, InferenceConfig::default());
        assert_eq!(config.phoneme_type, PhonemeType::Espeak);
        assert_eq!(config.speaker_id_map["bob"], 1);
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = VoiceConfig::parse("{\n  \"audio\": {,}\n}", Path::new("x.onnx.json")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("x.onnx.json") && text.contains("line 2"), "{text}");
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = VoiceConfig::parse(r#"{"audio": {"sample_rate": 22050}}"#, Path::new("x.json")).unwrap_err();
        assert!(err.to_string().contains("phoneme_id_map"), "{err}");
    }

    #[test]
    fn speaker_ids_must_fit_num_speakers() {
        let bad = MINIMAL.replace("\"bob\": 1", "\"bob\": 7");
        let err = VoiceConfig::parse(&bad, Path::new("x.json")).unwrap_err();
        assert!(err.to_string().contains("speaker_id_map"), "{err}");
    }

    #[test]
    fn special_symbols_are_required() {
        let bad = MINIMAL.replace("\"$\": [2], ", "");
        let err = VoiceConfig::parse(&bad, Path::new("x.json")).unwrap_err();
        assert!(err.to_string().contains("`$`"), "{err}");
    }
}
