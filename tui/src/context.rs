//! Settings of one invocation (config file, then preset, then flags) and finding, or on first use installing,
//! what a command needs: runtime, espeak-ng, voices.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use demod_voice_core::assets::{self, Dirs, SetupOptions};
use demod_voice_core::config::{self, LoadedConfig};
use demod_voice_core::espeak::Espeak;
use demod_voice_core::piper::{PhonemeType, PiperVoice, VoiceConfig};
use demod_voice_core::presets;
use demod_voice_core::runtime::{Provider, Runtime, RuntimeSearch, SessionOptions};

use crate::cli::{GlobalArgs, ProviderArg};

/// Shared state of one invocation.
pub struct Context {
    pub global: GlobalArgs,
    pub dirs: Dirs,
    /// Effective settings with the source of each value.
    pub settings: LoadedConfig,
    /// The default config location (for `config init/show`).
    pub default_config_path: PathBuf,
}

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

impl Context {
    /// Load the config file and lay the global flags over it. Config problems are errors (exit code 2).
    pub fn new(global: GlobalArgs) -> Result<Context> {
        let xdg = Dirs::from_env();
        let default_config_path = config::default_path(&xdg.config);
        let settings = config::load(global.config.as_deref(), &default_config_path)?;
        Self::with_settings(global, settings)
    }

    /// Built-in defaults and flags only (`health` uses this to report a broken config file).
    pub fn with_defaults(global: GlobalArgs) -> Result<Context> {
        Self::with_settings(global, LoadedConfig::default())
    }

    fn with_settings(global: GlobalArgs, mut settings: LoadedConfig) -> Result<Context> {
        let xdg = Dirs::from_env();
        let default_config_path = config::default_path(&xdg.config);
        // Flags beat the file.
        let provider = if global.gpu {
            Some((config::ProviderName::Cuda, "--gpu"))
        } else if global.cpu {
            Some((config::ProviderName::Cpu, "--cpu"))
        } else {
            global.provider.map(|p| {
                let name = match p {
                    ProviderArg::Auto => config::ProviderName::Auto,
                    ProviderArg::Cpu => config::ProviderName::Cpu,
                    ProviderArg::Cuda => config::ProviderName::Cuda,
                    ProviderArg::Tensorrt => config::ProviderName::Tensorrt,
                };
                (name, "--provider")
            })
        };
        if let Some((name, flag)) = provider {
            settings.config.runtime.provider = name;
            settings.set_source("runtime.provider", flag);
        }
        if let Some(id) = global.device_id {
            settings.config.runtime.device_id = id;
            settings.set_source("runtime.device_id", "--device-id");
        }
        if let Some(threads) = global.threads {
            settings.config.runtime.intra_threads = threads;
            settings.set_source("runtime.intra_threads", "--threads");
        }
        if let Some(lib) = &global.ort_lib {
            settings.config.runtime.library = Some(lib.clone());
            settings.set_source("runtime.library", "--ort-lib");
        } else if settings.config.runtime.library.is_none() {
            if let Some(lib) = env_path("ORT_DYLIB_PATH") {
                settings.config.runtime.library = Some(lib);
                settings.set_source("runtime.library", "ORT_DYLIB_PATH");
            }
        }
        if let Some(data) = env_path(assets::ENV_DATA_DIR) {
            if settings.config.paths.data.is_none() {
                settings.config.paths.data = Some(data);
                settings.set_source("paths.data", assets::ENV_DATA_DIR);
            }
        }
        config::validate(&settings.config).map_err(|invalid| demod_voice_core::Error::Config {
            path: settings.path.clone().unwrap_or_else(|| PathBuf::from("(flags)")),
            line: None,
            problem: format!("`{}` {}", invalid.key, invalid.message),
        })?;
        let paths = &settings.config.paths;
        let mut dirs = xdg;
        if let Some(data) = &paths.data {
            dirs.data = data.clone();
        }
        if let Some(cache) = &paths.cache {
            dirs.cache = cache.clone();
        }
        dirs.voices = paths.voices.clone();
        Ok(Context { global, dirs, settings, default_config_path })
    }

    /// Lay a preset over the settings (flags applied afterwards still win).
    pub fn apply_preset(&mut self, name: &str) -> Result<presets::FoundPreset> {
        let found = presets::find(name, &self.dirs.config.join("presets"))?;
        let source = format!("preset {}", found.preset.name);
        let mut touched = Vec::new();
        found.preset.apply(&mut self.settings.config, &mut |key, _| touched.push(key.to_string()));
        for key in touched {
            self.settings.set_source(&key, source.clone());
        }
        Ok(found)
    }

    pub fn session_options(&self) -> SessionOptions {
        let runtime = &self.settings.config.runtime;
        SessionOptions {
            provider: Provider::from(runtime.provider),
            device_id: runtime.device_id,
            intra_threads: (runtime.intra_threads > 0).then_some(runtime.intra_threads),
        }
    }

    pub fn runtime_search(&self) -> RuntimeSearch {
        let library = self.settings.config.runtime.library.clone();
        let source = self.settings.source_of("runtime.library");
        RuntimeSearch {
            flag: library.clone().filter(|_| source == "--ort-lib"),
            env: library.clone().filter(|_| source == "ORT_DYLIB_PATH"),
            config: library.filter(|_| source != "--ort-lib" && source != "ORT_DYLIB_PATH"),
            data_dir: Some(self.dirs.runtime_dir()),
        }
    }

    /// Run `setup` for the named parts, telling the user why.
    fn auto_setup(&self, runtime: bool, espeak: bool, voice: bool) -> Result<()> {
        let what: Vec<&str> = [(runtime, "ONNX Runtime"), (espeak, "espeak-ng"), (voice, "the default voice")]
            .iter()
            .filter(|(needed, _)| *needed)
            .map(|(_, name)| *name)
            .collect();
        eprintln!(
            "demod-voice: first use: installing {} into {} (run `demod-voice setup` to do this ahead of time)",
            what.join(", "),
            self.dirs.data.display()
        );
        let options = SetupOptions { offline: self.global.offline, runtime, espeak, voice, ..Default::default() };
        let quiet = self.global.quiet;
        let report = assets::setup(&self.dirs, &options, &mut |line| {
            if !quiet {
                eprintln!("demod-voice: {line}");
            }
        })?;
        for item in report {
            if !quiet {
                eprintln!("demod-voice: {} {} ({})", item.action, item.path.display(), item.package);
            }
        }
        Ok(())
    }

    /// The ONNX Runtime, installing it first if nothing is found anywhere.
    pub fn runtime(&self) -> Result<&'static Runtime> {
        let search = self.runtime_search();
        let explicit = search.flag.is_some() || search.env.is_some() || search.config.is_some();
        if !explicit && search.resolve().is_err() {
            self.auto_setup(true, false, false)?;
        }
        Ok(Runtime::get_or_init(&search)?)
    }

    /// espeak-ng, installing it first if nothing is found anywhere.
    pub fn espeak(&self) -> Result<&'static Espeak> {
        let found = match assets::find_espeak(&self.dirs, env_path)? {
            Some(found) => found,
            None => {
                self.auto_setup(false, true, false)?;
                assets::find_espeak(&self.dirs, env_path)?.context("espeak-ng is still missing after setup")?
            }
        };
        tracing::debug!("espeak-ng from {} ({})", found.paths.library.display(), found.source);
        Ok(Espeak::get_or_load(&found.paths)?)
    }

    /// The model path for `spec`, or the configured voice when absent; installs the default voice on first use.
    pub fn voice_path(&self, spec: Option<&str>) -> Result<PathBuf> {
        let spec = spec.unwrap_or(&self.settings.config.tts.voice);
        let voices_dir = self.dirs.voices_dir();
        if spec == assets::DEFAULT_VOICE && assets::resolve_voice(spec, &voices_dir).is_err() {
            self.auto_setup(false, false, true)?;
        }
        Ok(assets::resolve_voice(spec, &voices_dir)?)
    }

    /// Load a voice with everything it needs.
    pub fn load_voice(&self, spec: Option<&str>) -> Result<PiperVoice> {
        let model = self.voice_path(spec)?;
        self.load_model(&model)
    }

    /// Load a voice that must already be installed (health checks install nothing).
    pub fn load_voice_no_install(&self, spec: Option<&str>) -> Result<PiperVoice> {
        let spec = spec.unwrap_or(&self.settings.config.tts.voice);
        let model = assets::resolve_voice(spec, &self.dirs.voices_dir())?;
        self.load_model(&model)
    }

    fn load_model(&self, model: &std::path::Path) -> Result<PiperVoice> {
        let model = model.to_path_buf();
        let config = VoiceConfig::load(&VoiceConfig::path_for_model(&model))?;
        let espeak = if config.phoneme_type == PhonemeType::Espeak { Some(self.espeak()?) } else { None };
        let runtime = self.runtime()?;
        Ok(PiperVoice::load_with_config(runtime, &model, config, espeak, &self.session_options())?)
    }
}
