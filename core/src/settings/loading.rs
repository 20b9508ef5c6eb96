//! Finding, or on first use installing, what the settings name: ONNX Runtime, espeak-ng, voices.
//!
//! A missing runtime, espeak-ng or default voice is installed (`setup`) the first time something needs it, with a
//! one-line notice on stderr (unless [`Settings::quiet`]); with [`Settings::offline`] it is an error instead.

use std::path::{Path, PathBuf};

use super::Settings;
use crate::assets::{self, SetupOptions};
use crate::error::{Error, Result};
use crate::espeak::Espeak;
use crate::onnx::{Provider, Runtime, RuntimeSearch, SessionOptions};
use crate::piper::{PhonemeType, PiperVoice, VoiceConfig};
use crate::speaker::SpeakerEncoder;

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from)
}

impl Settings {
    /// ONNX Runtime session settings: provider, device, threads.
    pub fn session_options(&self) -> SessionOptions {
        let runtime = &self.config.runtime;
        SessionOptions {
            provider: Provider::from(runtime.provider),
            device_id: runtime.device_id,
            intra_threads: (runtime.intra_threads > 0).then_some(runtime.intra_threads),
            optimized_cache: Some(self.dirs.cache.join("optimized")),
        }
    }

    /// Where to look for ONNX Runtime, each candidate with where it was named.
    pub fn runtime_search(&self) -> RuntimeSearch {
        let library = self.config.runtime.library.clone();
        let source = self.source_of("runtime.library");
        RuntimeSearch {
            flag: library.clone().filter(|_| source == "--ort-lib"),
            env: library.clone().filter(|_| source == "ORT_DYLIB_PATH"),
            config: library.filter(|_| source != "--ort-lib" && source != "ORT_DYLIB_PATH"),
            data_dir: Some(self.dirs.runtime_dir()),
        }
    }

    /// Run `setup` for the named parts, telling the user why.
    fn auto_setup(&self, runtime: bool, espeak: bool, voice: bool) -> Result<()> {
        self.auto_setup_parts(runtime, espeak, voice, false)
    }

    fn auto_setup_parts(&self, runtime: bool, espeak: bool, voice: bool, encoder: bool) -> Result<()> {
        let parts = [
            (runtime, "ONNX Runtime"),
            (espeak, "espeak-ng"),
            (voice, "the default voice"),
            (encoder, "the speaker encoder"),
        ];
        let what: Vec<&str> = parts.iter().filter(|(needed, _)| *needed).map(|(_, name)| *name).collect();
        eprintln!(
            "demod-voice: first use: installing {} into {} (run `demod-voice setup` to do this ahead of time)",
            what.join(", "),
            self.dirs.data.display()
        );
        let options = SetupOptions { offline: self.offline, runtime, espeak, voice, encoder, ..Default::default() };
        let quiet = self.quiet;
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
        Runtime::get_or_init(&search)
    }

    /// espeak-ng, installing it first if nothing is found anywhere.
    pub fn espeak(&self) -> Result<&'static Espeak> {
        let found = match assets::find_espeak(&self.dirs, env_path)? {
            Some(found) => found,
            None => {
                self.auto_setup(false, true, false)?;
                assets::find_espeak(&self.dirs, env_path)?
                    .ok_or_else(|| Error::EspeakNotFound { searched: "the data directory, after setup".into() })?
            }
        };
        tracing::debug!("espeak-ng from {} ({})", found.paths.library.display(), found.source);
        Espeak::get_or_load(&found.paths)
    }

    /// The speaker encoder when it and ONNX Runtime are already installed (never downloads: the app's displays
    /// and the plugin use this); `None` when either is missing.
    pub fn installed_speaker_encoder(&self) -> Option<Result<SpeakerEncoder>> {
        let search = self.runtime_search();
        let runtime_found = search.flag.is_some() || search.env.is_some() || search.config.is_some();
        if !self.dirs.encoder_path().is_file() || !(runtime_found || search.resolve().is_ok()) {
            return None;
        }
        Some(self.speaker_encoder())
    }

    /// The speaker encoder, installing it (and the runtime) first if missing.
    pub fn speaker_encoder(&self) -> Result<SpeakerEncoder> {
        let path = self.dirs.encoder_path();
        if !path.is_file() {
            self.auto_setup_parts(false, false, false, true)?;
        }
        SpeakerEncoder::load(self.runtime()?, &path, &self.session_options())
    }

    /// The model path for `spec`, or for [`Settings::chosen_voice`] when absent. A voice that is not installed is
    /// installed on first use: the default voice by `setup`, any other from the voice catalogue (by key or alias).
    pub fn voice_path(&self, spec: Option<&str>) -> Result<PathBuf> {
        let spec = match spec {
            Some(spec) => spec.to_string(),
            None => self.chosen_voice()?,
        };
        let voices_dir = self.dirs.voices_dir();
        let found = assets::resolve_voice(&spec, &voices_dir);
        let by_name = !(spec.contains('/') || spec.ends_with(".onnx"));
        match found {
            Ok(path) => Ok(path),
            Err(_) if by_name && spec == assets::DEFAULT_VOICE => {
                self.auto_setup(false, false, true)?;
                assets::resolve_voice(&spec, &voices_dir)
            }
            Err(_) if by_name && crate::catalog::safe_key(&spec) => self.install_from_catalog(&spec, &voices_dir),
            Err(e) => Err(e),
        }
    }

    /// Load a voice (the configured one when `spec` is `None`) with everything it needs.
    pub fn load_voice(&self, spec: Option<&str>) -> Result<PiperVoice> {
        let model = self.voice_path(spec)?;
        self.load_model(&model)
    }

    /// Load a voice that must already be installed (health checks install nothing).
    pub fn load_voice_no_install(&self, spec: Option<&str>) -> Result<PiperVoice> {
        let spec = spec.unwrap_or(&self.config.tts.voice);
        let model = assets::resolve_voice(spec, &self.dirs.voices_dir())?;
        self.load_model(&model)
    }

    fn load_model(&self, model: &Path) -> Result<PiperVoice> {
        let config = VoiceConfig::load(&VoiceConfig::path_for_model(model))?;
        let espeak = if config.phoneme_type == PhonemeType::Espeak { Some(self.espeak()?) } else { None };
        let runtime = self.runtime()?;
        PiperVoice::load_with_config(runtime, model, config, espeak, &self.session_options())
    }
}
