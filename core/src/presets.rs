//! Presets: named, shareable settings for speech, conversion and live use, shared by the terminal app, batch
//! runs and the DAW plugin.
//!
//! Factory presets live in the repository's `presets/` folder and are compiled into the binary; user presets are
//! YAML files in `$XDG_CONFIG_HOME/demod-voice/presets/` and replace a factory preset of the same name.
//!
//! Every preset carries `schema_version`. Version 0 (the first, flat layout without sections) is migrated on
//! load; a version newer than [`SCHEMA_VERSION`] is refused rather than half-understood.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, OutputFormat, UnderrunMode};
use crate::convert::Engine;
use crate::error::{Error, Result};
use crate::limits;

/// The preset layout this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Factory presets, compiled in.
pub const FACTORY: &[(&str, &str)] = &[
    ("natural-narration", include_str!("../../presets/natural-narration.yaml")),
    ("fast-draft", include_str!("../../presets/fast-draft.yaml")),
    ("broadcast-loudness", include_str!("../../presets/broadcast-loudness.yaml")),
    ("deep-voice", include_str!("../../presets/deep-voice.yaml")),
    ("low-latency-live", include_str!("../../presets/low-latency-live.yaml")),
    ("bright-voice", include_str!("../../presets/bright-voice.yaml")),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// A preset: speech, output, converter and real-time settings laid over the config.
pub struct Preset {
    /// The layout version (migrated on load when older).
    pub schema_version: u32,
    /// Its name.
    pub name: String,
    #[serde(default)]
    /// One line on what it is for.
    pub description: String,
    #[serde(default)]
    /// Speech settings it sets.
    pub tts: PresetTts,
    #[serde(default)]
    /// Output settings it sets.
    pub output: PresetOutput,
    #[serde(default)]
    /// Conversion applied after speech (and live).
    pub converter: Option<ConverterSettings>,
    #[serde(default)]
    /// Real-time settings it sets.
    pub realtime: PresetRealtime,
}

/// Speech settings; absent keys leave the config's values alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetTts {
    /// The voice.
    pub voice: Option<String>,
    /// The speaker.
    pub speaker: Option<String>,
    /// Length scale.
    pub length_scale: Option<f32>,
    /// Noise scale.
    pub noise_scale: Option<f32>,
    /// Noise-w scale.
    pub noise_w: Option<f32>,
    /// Silence after each sentence, seconds.
    pub sentence_silence: Option<f32>,
    /// Volume.
    pub volume: Option<f32>,
    /// Peak normalisation.
    pub normalize: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// Output settings a preset sets.
pub struct PresetOutput {
    /// Output sample rate, Hz.
    pub sample_rate: Option<u32>,
    /// WAV encoding.
    pub format: Option<OutputFormat>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// Real-time settings a preset sets.
pub struct PresetRealtime {
    /// Hop, milliseconds.
    pub hop_ms: Option<f32>,
    /// Cross-fade, milliseconds.
    pub crossfade_ms: Option<f32>,
    /// Left context, milliseconds.
    pub context_ms: Option<f32>,
    /// What plays when the worker is late.
    pub underrun: Option<UnderrunMode>,
}

/// Voice conversion applied after speech (or live).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConverterSettings {
    /// Which converter runs.
    #[serde(default)]
    pub engine: Engine,
    /// Pitch shift in semitones ([`limits::PITCH_SEMITONES`]).
    #[serde(default)]
    pub pitch_semitones: f32,
    /// Formant (vocal-tract) scale ([`limits::FORMANT_RATIO`]).
    #[serde(default = "one")]
    pub formant_ratio: f32,
    /// Voice profile to match, by name.
    #[serde(default)]
    pub profile: Option<String>,
    /// How much of the profile match to apply ([`limits::PROFILE_AMOUNT`]).
    #[serde(default = "one")]
    pub profile_amount: f32,
    /// Wet/dry mix ([`limits::MIX`]).
    #[serde(default = "one")]
    pub mix: f32,
    /// The installed model a model engine runs (`demod-voice models list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// How far the tone colour engine moves toward the profile's tone ([`limits::TAU`]).
    #[serde(default = "default_tau")]
    pub tau: f32,
    /// The speaker an RVC model trained on several speakers speaks as (its `sid`/`ds` input); 0 for the others.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub model_speaker: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

fn default_tau() -> f32 {
    0.3
}

fn one() -> f32 {
    1.0
}

impl Default for ConverterSettings {
    /// The dsp engine with nothing changed (a profile target, when given, does the matching).
    fn default() -> Self {
        ConverterSettings {
            engine: Engine::Dsp,
            pitch_semitones: 0.0,
            formant_ratio: 1.0,
            profile: None,
            profile_amount: 1.0,
            mix: 1.0,
            model: None,
            tau: default_tau(),
            model_speaker: 0,
        }
    }
}

/// A converter value outside its range.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidConverter {
    /// The dotted key (`converter.pitch_semitones`).
    pub key: &'static str,
    /// What is wrong (`is 40, expected -24..24`).
    pub message: String,
}

impl ConverterSettings {
    /// Check every value against [`limits`].
    pub fn validate(&self) -> std::result::Result<(), InvalidConverter> {
        let check = |key: &'static str, value: f32, limit: limits::Limit| {
            limit.check(value).map(drop).map_err(|message| InvalidConverter { key, message })
        };
        check("converter.pitch_semitones", self.pitch_semitones, limits::PITCH_SEMITONES)?;
        check("converter.formant_ratio", self.formant_ratio, limits::FORMANT_RATIO)?;
        check("converter.profile_amount", self.profile_amount, limits::PROFILE_AMOUNT)?;
        check("converter.mix", self.mix, limits::MIX)?;
        check("converter.tau", self.tau, limits::TAU)
    }

    /// The converter these settings describe, matching `target` when given.
    pub fn build(&self, target: Option<crate::convert::dsp::Target>) -> Result<Box<dyn crate::convert::Converter>> {
        let params = std::sync::Arc::new(crate::convert::dsp::DspParams::default());
        params.set_pitch_semitones(self.pitch_semitones);
        params.set_formant_ratio(self.formant_ratio);
        params.set_profile_amount(self.profile_amount);
        params.set_target(target);
        self.engine.build(params)
    }

    /// Convert a whole clip through the real-time engine (as `convert` does) and apply the wet/dry mix.
    /// Allocates (offline use).
    pub fn convert_clip(
        &self,
        samples: &[f32],
        sample_rate_hz: u32,
        target: Option<crate::convert::dsp::Target>,
        realtime: &crate::config::RealtimeSection,
    ) -> Result<Vec<f32>> {
        let wet = crate::realtime::convert_offline(samples, sample_rate_hz, self.build(target)?, realtime)?;
        Ok(self.mixed(&wet, samples))
    }

    /// `wet` over `dry` (time-aligned, as long) by the wet/dry mix, kept within full scale.
    pub fn mixed(&self, wet: &[f32], dry: &[f32]) -> Vec<f32> {
        let mix = self.mix;
        wet.iter().zip(dry).map(|(w, d)| (w * mix + d * (1.0 - mix)).clamp(-1.0, 1.0)).collect()
    }
}

/// Where a preset came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetSource {
    /// Compiled into the binary.
    Factory,
    /// A user's file.
    User(PathBuf),
}

impl std::fmt::Display for PresetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PresetSource::Factory => f.write_str("factory"),
            PresetSource::User(path) => write!(f, "user ({})", path.display()),
        }
    }
}

/// Parse a preset, migrating old layouts. `origin` names it in messages.
pub fn parse(text: &str, origin: &Path) -> Result<Preset> {
    let err = |line: Option<usize>, problem: String| Error::Preset { path: origin.to_path_buf(), line, problem };
    let tree: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| {
        let (line, problem) = one_line_saphyr(&e.to_string());
        err(line, problem)
    })?;
    let version = match tree.get("schema_version") {
        None => 0,
        Some(v) => v.as_u64().ok_or_else(|| err(None, "`schema_version` must be a whole number".into()))? as u32,
    };
    if version > SCHEMA_VERSION {
        return Err(err(
            None,
            format!(
                "schema_version {version} is newer than this demod-voice understands ({SCHEMA_VERSION}); upgrade demod-voice to use it"
            ),
        ));
    }
    // An unknown engine gets the key and the known names, not the YAML parser's column.
    let engine = tree.get("converter").and_then(|c| c.get("engine")).or_else(|| tree.get("engine"));
    if let Some(engine) = engine.and_then(serde_json::Value::as_str) {
        engine.parse::<Engine>().map_err(|problem| err(None, format!("`converter.engine`: {problem}")))?;
    }
    let preset: Preset = if version == 0 {
        let migrated = migrate_v0(tree).map_err(|problem| err(None, problem))?;
        serde_json::from_value(migrated)
            .map_err(|e| err(None, format!("after migrating from the version-0 layout: {e}")))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            let (line, problem) = one_line_saphyr(&e.to_string());
            err(line, problem)
        })?
    };
    preset.validate().map_err(|problem| err(None, problem))?;
    Ok(preset)
}

/// Version 0 presets were flat: `length_scale`, `pitch`, `engine`... at the top level.
fn migrate_v0(tree: serde_json::Value) -> std::result::Result<serde_json::Value, String> {
    let serde_json::Value::Object(flat) = tree else {
        return Err("a preset must be a mapping".into());
    };
    let mut tts = serde_json::Map::new();
    let mut converter = serde_json::Map::new();
    let mut out = serde_json::Map::new();
    out.insert("schema_version".into(), SCHEMA_VERSION.into());
    for (key, value) in flat {
        match key.as_str() {
            "name" | "description" => {
                out.insert(key, value);
            }
            "voice" | "speaker" | "length_scale" | "noise_scale" | "noise_w" | "sentence_silence" | "volume"
            | "normalize" => {
                tts.insert(key, value);
            }
            "engine" => {
                converter.insert("engine".into(), value);
            }
            "pitch" | "pitch_semitones" => {
                converter.insert("pitch_semitones".into(), value);
            }
            "formant" | "formant_ratio" => {
                converter.insert("formant_ratio".into(), value);
            }
            "profile" | "mix" => {
                converter.insert(key, value);
            }
            other => return Err(format!("unknown key `{other}` in a version-0 preset")),
        }
    }
    if !tts.is_empty() {
        out.insert("tts".into(), tts.into());
    }
    if !converter.is_empty() {
        converter.entry("engine").or_insert_with(|| "dsp".into());
        out.insert("converter".into(), converter.into());
    }
    Ok(out.into())
}

fn one_line_saphyr(message: &str) -> (Option<usize>, String) {
    let first = message.lines().next().unwrap_or(message).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.strip_prefix("line ") {
        Some(after) => {
            let number: String = after.chars().take_while(char::is_ascii_digit).collect();
            (number.parse().ok(), after[number.len()..].trim_start().to_string())
        }
        None => (None, first.to_string()),
    }
}

impl Preset {
    /// Check ranges, so a bad preset fails when loaded, not half-way through a job.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        // The same limits as the config file.
        let mut config = Config::default();
        self.apply(&mut config, &mut |_, _| {});
        crate::config::validate(&config).map_err(|invalid| format!("`{}` {}", invalid.key, invalid.message))?;
        if let Some(conv) = &self.converter {
            conv.validate().map_err(|invalid| format!("`{}` {}", invalid.key, invalid.message))?;
        }
        Ok(())
    }

    /// Lay this preset over `config`; `record(key, value)` is told of each key it sets.
    pub fn apply(&self, config: &mut Config, record: &mut dyn FnMut(&str, String)) {
        macro_rules! set {
            ($src:expr, $dst:expr, $key:literal) => {
                if let Some(value) = $src.clone() {
                    record($key, format!("{value:?}"));
                    $dst = value.into();
                }
            };
        }
        let t = &self.tts;
        set!(t.voice, config.tts.voice, "tts.voice");
        if let Some(speaker) = &t.speaker {
            record("tts.speaker", speaker.clone());
            config.tts.speaker = Some(speaker.clone());
        }
        if let Some(v) = t.length_scale {
            record("tts.length_scale", v.to_string());
            config.tts.length_scale = Some(v);
        }
        if let Some(v) = t.noise_scale {
            record("tts.noise_scale", v.to_string());
            config.tts.noise_scale = Some(v);
        }
        if let Some(v) = t.noise_w {
            record("tts.noise_w", v.to_string());
            config.tts.noise_w = Some(v);
        }
        set!(t.sentence_silence, config.tts.sentence_silence, "tts.sentence_silence");
        set!(t.volume, config.tts.volume, "tts.volume");
        set!(t.normalize, config.tts.normalize, "tts.normalize");
        if let Some(rate) = self.output.sample_rate {
            record("output.sample_rate", rate.to_string());
            config.output.sample_rate = Some(rate);
        }
        set!(self.output.format, config.output.format, "output.format");
        let r = &self.realtime;
        set!(r.hop_ms, config.realtime.hop_ms, "realtime.hop_ms");
        set!(r.crossfade_ms, config.realtime.crossfade_ms, "realtime.crossfade_ms");
        set!(r.context_ms, config.realtime.context_ms, "realtime.context_ms");
        set!(r.underrun, config.realtime.underrun, "realtime.underrun");
    }
}

/// A preset and where it was found.
#[derive(Debug, Clone)]
pub struct FoundPreset {
    /// The preset.
    pub preset: Preset,
    /// Where it came from.
    pub source: PresetSource,
}

/// All presets: factory ones, then user ones from `user_dir` (replacing factory presets of the same name).
/// A user file that cannot be read or parsed is returned as an error entry so listing can report it.
pub fn all(user_dir: &Path) -> Vec<std::result::Result<FoundPreset, Error>> {
    let mut out: Vec<std::result::Result<FoundPreset, Error>> = FACTORY
        .iter()
        .map(|(name, text)| {
            parse(text, &PathBuf::from(format!("presets/{name}.yaml")))
                .map(|preset| FoundPreset { preset, source: PresetSource::Factory })
        })
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(user_dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for path in files {
        let loaded = std::fs::read_to_string(&path)
            .map_err(|source| Error::Preset {
                path: path.clone(),
                line: None,
                problem: format!("cannot be read: {source}"),
            })
            .and_then(|text| parse(&text, &path))
            .map(|preset| FoundPreset { preset, source: PresetSource::User(path.clone()) });
        if let Ok(found) = &loaded {
            out.retain(|existing| !matches!(existing, Ok(e) if e.preset.name == found.preset.name));
        }
        out.push(loaded);
    }
    out
}

/// Find a preset by name (user presets win), or load it from a path.
pub fn find(name_or_path: &str, user_dir: &Path) -> Result<FoundPreset> {
    let as_path = Path::new(name_or_path);
    if name_or_path.ends_with(".yaml") || name_or_path.ends_with(".yml") || name_or_path.contains('/') {
        let text =
            std::fs::read_to_string(as_path).map_err(|source| Error::Read { path: as_path.to_path_buf(), source })?;
        let preset = parse(&text, as_path)?;
        return Ok(FoundPreset { preset, source: PresetSource::User(as_path.to_path_buf()) });
    }
    let mut names = Vec::new();
    let mut broken = None;
    for entry in all(user_dir) {
        match entry {
            Ok(found) if found.preset.name == name_or_path => return Ok(found),
            Ok(found) => names.push(found.preset.name),
            Err(e) => {
                // A broken user file whose name matches is the answer: report why it cannot be used.
                if let Error::Preset { path, .. } = &e {
                    if path.file_stem().is_some_and(|s| s == name_or_path) {
                        broken = Some(e);
                    }
                }
            }
        }
    }
    if let Some(e) = broken {
        return Err(e);
    }
    Err(Error::PresetNotFound { name: name_or_path.to_string(), available: names.join(", ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_factory_preset_parses_and_validates() {
        assert!(FACTORY.len() >= 5);
        for (name, text) in FACTORY {
            let preset = parse(text, Path::new(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&preset.name, name);
            assert!(!preset.description.is_empty(), "{name} needs a description");
        }
    }

    #[test]
    fn version_zero_presets_are_migrated() {
        let preset = parse("name: old\nlength_scale: 1.2\npitch: -3\nformant: 0.9\n", Path::new("old.yaml")).unwrap();
        assert_eq!(preset.schema_version, SCHEMA_VERSION);
        assert_eq!(preset.tts.length_scale, Some(1.2));
        let conv = preset.converter.unwrap();
        assert_eq!((conv.engine, conv.pitch_semitones, conv.formant_ratio), (Engine::Dsp, -3.0, 0.9));
    }

    #[test]
    fn newer_schema_versions_are_refused() {
        let err = parse("schema_version: 9\nname: future\n", Path::new("f.yaml")).unwrap_err().to_string();
        assert!(err.contains("f.yaml") && err.contains("newer"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let err =
            parse("schema_version: 1\nname: x\ntts:\n  volume: 99\n", Path::new("x.yaml")).unwrap_err().to_string();
        assert!(err.contains("tts.volume"), "{err}");
        let err = parse("schema_version: 1\nname: x\nconverter:\n  engine: magic\n", Path::new("x.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("converter.engine"), "{err}");
    }

    #[test]
    fn applying_a_preset_overrides_only_what_it_sets() {
        let preset = parse("schema_version: 1\nname: x\ntts:\n  length_scale: 1.5\n", Path::new("x.yaml")).unwrap();
        let mut config = Config::default();
        config.tts.volume = 0.7;
        let mut keys = Vec::new();
        preset.apply(&mut config, &mut |k, _| keys.push(k.to_string()));
        assert_eq!(config.tts.length_scale, Some(1.5));
        assert_eq!(config.tts.volume, 0.7);
        assert_eq!(keys, ["tts.length_scale"]);
    }

    #[test]
    fn user_presets_replace_factory_ones_and_broken_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.yaml"), "schema_version: 1\nname: fast-draft\ndescription: mine\n")
            .unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "schema_version: 1\nname: [\n").unwrap();
        let found = find("fast-draft", dir.path()).unwrap();
        assert_eq!(found.preset.description, "mine");
        assert!(matches!(found.source, PresetSource::User(_)));
        let err = find("broken", dir.path()).unwrap_err().to_string();
        assert!(err.contains("broken.yaml"), "{err}");
        let err = find("nope", dir.path()).unwrap_err().to_string();
        assert!(err.contains("natural-narration"), "{err}");
    }
}
