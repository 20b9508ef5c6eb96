//! The one settings resolver: built-in defaults -> config file (and the environment) -> preset -> flags, with
//! the source of every value recorded (`config show` prints it; error messages name it).
//!
//! Every front-end resolves its settings here: the command line (each command lays its flags as [`Setting`]s),
//! the terminal app (its controls are settings too) and the plugin ([`Settings::for_plugin`]). Nothing else reads
//! the config file or a preset.

mod catalog;
mod loading;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::assets::{self, Dirs};
use crate::config::{self, Config, LoadedConfig, ProviderName};
use crate::convert::Engine;
use crate::error::{Error, Result};
use crate::presets::{self, ConverterSettings, FoundPreset};
use crate::profile::VoiceProfile;

/// The effective settings of one invocation (or one plugin activation).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The effective configuration values.
    pub config: Config,
    /// The config file they came from, if any.
    pub path: Option<PathBuf>,
    /// Dotted key -> where its value came from (`file PATH`, `--flag`, `preset NAME`, an environment variable).
    /// Keys not listed have their default.
    pub sources: BTreeMap<String, String>,
    /// One line each: ignored legacy keys and the like, for the front-end to show.
    pub warnings: Vec<String>,
    /// Where data, config and cache live (the config's `paths` applied).
    pub dirs: Dirs,
    /// The default config location (`config init/show`).
    pub default_config_path: PathBuf,
    /// Voice conversion from the preset and the converter flags; `None` when neither asked for any.
    pub converter: Option<ConverterSettings>,
    /// Never download (`--offline`): a missing asset is an error that says what to install.
    pub offline: bool,
    /// Say nothing on stderr about installing assets on first use (`-q`, and the full-screen app).
    pub quiet: bool,
}

/// One value a front-end sets over the config file and preset (a command-line flag, an app control).
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `runtime.provider`.
    Provider(ProviderName),
    /// `runtime.device_id`.
    DeviceId(i32),
    /// `runtime.intra_threads`.
    IntraThreads(usize),
    /// `runtime.library`.
    RuntimeLibrary(PathBuf),
    /// `paths.data`.
    DataDir(PathBuf),
    /// `tts.voice`.
    Voice(String),
    /// `tts.speaker`.
    Speaker(String),
    /// `tts.language`.
    Language(String),
    /// `tts.length_scale`.
    LengthScale(f32),
    /// `tts.noise_scale`.
    NoiseScale(f32),
    /// `tts.noise_w`.
    NoiseW(f32),
    /// `tts.sentence_silence`.
    SentenceSilence(f32),
    /// `tts.volume`.
    Volume(f32),
    /// `tts.normalize`.
    Normalize(bool),
    /// `output.sample_rate`.
    SampleRate(u32),
    /// `preprocessing.sample_rate`.
    PreprocessingSampleRate(u32),
    /// `converter.engine`.
    Engine(Engine),
    /// `converter.pitch_semitones`.
    PitchSemitones(f32),
    /// `converter.formant_ratio`.
    FormantRatio(f32),
    /// `converter.profile`.
    Profile(String),
    /// `converter.profile_amount`.
    ProfileAmount(f32),
    /// `converter.mix`.
    Mix(f32),
    /// `converter.model`.
    Model(String),
    /// `converter.tau`.
    Tau(f32),
    /// `converter.model_speaker`.
    ModelSpeaker(u32),
}

impl Setting {
    /// The dotted key this setting changes.
    pub fn key(&self) -> &'static str {
        match self {
            Setting::Provider(_) => "runtime.provider",
            Setting::DeviceId(_) => "runtime.device_id",
            Setting::IntraThreads(_) => "runtime.intra_threads",
            Setting::RuntimeLibrary(_) => "runtime.library",
            Setting::DataDir(_) => "paths.data",
            Setting::Voice(_) => "tts.voice",
            Setting::Speaker(_) => "tts.speaker",
            Setting::Language(_) => "tts.language",
            Setting::LengthScale(_) => "tts.length_scale",
            Setting::NoiseScale(_) => "tts.noise_scale",
            Setting::NoiseW(_) => "tts.noise_w",
            Setting::SentenceSilence(_) => "tts.sentence_silence",
            Setting::Volume(_) => "tts.volume",
            Setting::Normalize(_) => "tts.normalize",
            Setting::SampleRate(_) => "output.sample_rate",
            Setting::PreprocessingSampleRate(_) => "preprocessing.sample_rate",
            Setting::Engine(_) => "converter.engine",
            Setting::PitchSemitones(_) => "converter.pitch_semitones",
            Setting::FormantRatio(_) => "converter.formant_ratio",
            Setting::Profile(_) => "converter.profile",
            Setting::ProfileAmount(_) => "converter.profile_amount",
            Setting::Mix(_) => "converter.mix",
            Setting::Model(_) => "converter.model",
            Setting::Tau(_) => "converter.tau",
            Setting::ModelSpeaker(_) => "converter.model_speaker",
        }
    }

    fn is_converter(&self) -> bool {
        self.key().starts_with("converter.")
    }
}

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

impl Settings {
    /// Defaults, then the config file (`explicit`, which must exist, or the default location, which may be
    /// absent), then the environment (`ORT_DYLIB_PATH`, `DEMOD_VOICE_DATA_DIR`). Config problems are errors.
    pub fn load(explicit: Option<&Path>) -> Result<Settings> {
        let xdg = Dirs::from_env();
        let default_config_path = config::default_path(&xdg.config);
        let loaded = config::load(explicit, &default_config_path)?;
        Ok(Settings::from_loaded(loaded, xdg, default_config_path))
    }

    /// Built-in defaults and the environment only (`health` uses this to report a broken config file).
    pub fn defaults() -> Settings {
        let xdg = Dirs::from_env();
        let default_config_path = config::default_path(&xdg.config);
        Settings::from_loaded(LoadedConfig::default(), xdg, default_config_path)
    }

    fn from_loaded(loaded: LoadedConfig, dirs: Dirs, default_config_path: PathBuf) -> Settings {
        let LoadedConfig { config, path, sources, warnings } = loaded;
        let mut settings = Settings {
            config,
            path,
            sources,
            warnings,
            dirs,
            default_config_path,
            converter: None,
            offline: false,
            quiet: false,
        };
        if settings.config.runtime.library.is_none() {
            if let Some(lib) = env_path("ORT_DYLIB_PATH") {
                settings.set(Setting::RuntimeLibrary(lib), "ORT_DYLIB_PATH");
            }
        }
        if settings.config.paths.data.is_none() {
            if let Some(data) = env_path(assets::ENV_DATA_DIR) {
                settings.set(Setting::DataDir(data), assets::ENV_DATA_DIR);
            }
        }
        settings.apply_paths();
        settings
    }

    /// The config's `paths` section laid over the standard folders.
    fn apply_paths(&mut self) {
        let paths = &self.config.paths;
        if let Some(data) = &paths.data {
            self.dirs.data = data.clone();
        }
        if let Some(cache) = &paths.cache {
            self.dirs.cache = cache.clone();
        }
        self.dirs.voices = paths.voices.clone();
    }

    /// Where `key` got its value.
    pub fn source_of(&self, key: &str) -> &str {
        self.sources.get(key).map(String::as_str).unwrap_or("default")
    }

    /// Record that `key` was set by `source`.
    pub fn set_source(&mut self, key: &str, source: impl Into<String>) {
        self.sources.insert(key.to_string(), source.into());
    }

    /// Every config key with its effective value (as YAML scalar text) and source, in file order.
    pub fn entries(&self) -> Vec<(String, String, String)> {
        config::entries(&self.config, &self.sources)
    }

    /// User presets live here.
    pub fn presets_dir(&self) -> PathBuf {
        self.dirs.config.join("presets")
    }

    /// The voice-profile library.
    pub fn profiles_dir(&self) -> PathBuf {
        self.dirs.data.join("profiles")
    }

    /// The neural conversion models (`models add|list|show|remove`).
    pub fn models_dir(&self) -> PathBuf {
        self.dirs.data.join("models")
    }

    /// Lay the preset `name` (or a preset file's path) over the settings; values set afterwards still win.
    /// Its converter, if it has one, becomes the converter.
    pub fn apply_preset(&mut self, name: &str) -> Result<FoundPreset> {
        let found = presets::find(name, &self.presets_dir())?;
        let source = format!("preset {}", found.preset.name);
        let mut touched = Vec::new();
        found.preset.apply(&mut self.config, &mut |key, _| touched.push(key.to_string()));
        if let Some(converter) = &found.preset.converter {
            self.converter = Some(converter.clone());
            touched.extend(
                [
                    "engine",
                    "pitch_semitones",
                    "formant_ratio",
                    "profile",
                    "profile_amount",
                    "mix",
                    "model",
                    "tau",
                    "model_speaker",
                ]
                .iter()
                .map(|key| format!("converter.{key}")),
            );
        }
        for key in touched {
            self.set_source(&key, source.clone());
        }
        self.apply_paths();
        Ok(found)
    }

    /// Set one value, recording `source` (a flag such as `--length-scale`) as where it came from. A converter
    /// setting starts a converter (the dsp engine with nothing changed) when there is none yet.
    pub fn set(&mut self, setting: Setting, source: impl Into<String>) {
        let key = setting.key();
        if setting.is_converter() && self.converter.is_none() {
            self.converter = Some(ConverterSettings::default());
        }
        let config = &mut self.config;
        match setting {
            Setting::Provider(v) => config.runtime.provider = v,
            Setting::DeviceId(v) => config.runtime.device_id = v,
            Setting::IntraThreads(v) => config.runtime.intra_threads = v,
            Setting::RuntimeLibrary(v) => config.runtime.library = Some(v),
            Setting::DataDir(v) => config.paths.data = Some(v),
            Setting::Voice(v) => config.tts.voice = v,
            Setting::Speaker(v) => config.tts.speaker = Some(v),
            Setting::Language(v) => config.tts.language = Some(v),
            Setting::LengthScale(v) => config.tts.length_scale = Some(v),
            Setting::NoiseScale(v) => config.tts.noise_scale = Some(v),
            Setting::NoiseW(v) => config.tts.noise_w = Some(v),
            Setting::SentenceSilence(v) => config.tts.sentence_silence = v,
            Setting::Volume(v) => config.tts.volume = v,
            Setting::Normalize(v) => config.tts.normalize = v,
            Setting::SampleRate(v) => config.output.sample_rate = Some(v),
            Setting::PreprocessingSampleRate(v) => config.preprocessing.sample_rate = v,
            converter_setting => {
                if let Some(converter) = self.converter.as_mut() {
                    match converter_setting {
                        Setting::Engine(v) => converter.engine = v,
                        Setting::PitchSemitones(v) => converter.pitch_semitones = v,
                        Setting::FormantRatio(v) => converter.formant_ratio = v,
                        Setting::Profile(v) => converter.profile = Some(v),
                        Setting::ProfileAmount(v) => converter.profile_amount = v,
                        Setting::Mix(v) => converter.mix = v,
                        Setting::Model(v) => converter.model = Some(v),
                        Setting::Tau(v) => converter.tau = v,
                        Setting::ModelSpeaker(v) => converter.model_speaker = v,
                        _ => {}
                    }
                }
            }
        }
        self.set_source(key, source);
        if key == "paths.data" {
            self.apply_paths();
        }
    }

    /// Check every value's range; a problem names the key and where its value came from.
    pub fn validate(&self) -> Result<()> {
        config::validate(&self.config).map_err(|invalid| Error::Setting {
            key: invalid.key.clone(),
            problem: format!("{} (set by {})", invalid.message, self.source_of(&invalid.key)),
        })?;
        if let Some(converter) = &self.converter {
            converter.validate().map_err(|problem| Error::Setting {
                key: problem.key.to_string(),
                problem: format!("{} (set by {})", problem.message, self.source_of(problem.key)),
            })?;
        }
        Ok(())
    }

    /// The converter's voice profile, loaded from the library; `None` when no profile is named.
    pub fn converter_profile(&self) -> Result<Option<VoiceProfile>> {
        match self.converter.as_ref().and_then(|c| c.profile.as_deref()) {
            Some(name) => Ok(Some(VoiceProfile::find(name, &self.profiles_dir())?)),
            None => Ok(None),
        }
    }

    /// What the plugin runs with: the same config file as the command line, the project's preset over it, and the
    /// project's profile (or else the preset's). A missing file never stops the plugin: each problem is returned
    /// as one line, and the settings fall back to what could be loaded.
    pub fn for_plugin(preset: &str, profile: &str) -> (Settings, Option<VoiceProfile>, Vec<String>) {
        let mut problems = Vec::new();
        let mut settings = match Settings::load(None) {
            Ok(settings) => settings,
            Err(e) => {
                problems.push(format!("config: {e}"));
                Settings::defaults()
            }
        };
        if !preset.is_empty() {
            if let Err(e) = settings.apply_preset(preset) {
                problems.push(format!("preset: {e}"));
            }
        }
        if !profile.is_empty() {
            settings.set(Setting::Profile(profile.to_string()), "plugin state");
        }
        let profile = match settings.converter_profile() {
            Ok(profile) => profile,
            Err(e) => {
                problems.push(format!("profile: {e}"));
                None
            }
        };
        (settings, profile, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let dirs = Dirs::from_lookup(|_| None);
        Settings::from_loaded(LoadedConfig::default(), dirs, PathBuf::from("/nowhere/config.yaml"))
    }

    #[test]
    fn a_flag_wins_over_the_preset_and_is_named_as_the_source() {
        let mut s = settings();
        s.apply_preset("fast-draft").unwrap();
        let preset_value = s.config.tts.length_scale;
        assert!(s.source_of("tts.length_scale").starts_with("preset"), "{}", s.source_of("tts.length_scale"));
        s.set(Setting::LengthScale(1.7), "--length-scale");
        assert_ne!(preset_value, Some(1.7));
        assert_eq!(s.config.tts.length_scale, Some(1.7));
        assert_eq!(s.source_of("tts.length_scale"), "--length-scale");
    }

    #[test]
    fn an_out_of_range_value_names_its_key_and_source() {
        let mut s = settings();
        s.set(Setting::Volume(f32::NAN), "--volume");
        let message = s.validate().unwrap_err().to_string();
        assert!(message.contains("tts.volume") && message.contains("--volume"), "{message}");
        let mut s = settings();
        s.set(Setting::PitchSemitones(40.0), "--pitch");
        let message = s.validate().unwrap_err().to_string();
        assert!(message.contains("converter.pitch_semitones") && message.contains("--pitch"), "{message}");
    }

    #[test]
    fn a_converter_flag_starts_a_dsp_converter_and_a_preset_converter_is_kept() {
        let mut s = settings();
        assert!(s.converter.is_none());
        s.set(Setting::PitchSemitones(3.0), "--pitch");
        assert_eq!(s.converter.as_ref().map(|c| (c.engine, c.pitch_semitones)), Some((Engine::Dsp, 3.0)));
        let mut s = settings();
        s.apply_preset("deep-voice").unwrap();
        let from_preset = s.converter.clone().unwrap();
        s.set(Setting::Mix(0.5), "--mix");
        let c = s.converter.unwrap();
        assert_eq!(
            (c.pitch_semitones, c.formant_ratio, c.mix),
            (from_preset.pitch_semitones, from_preset.formant_ratio, 0.5)
        );
    }
}
