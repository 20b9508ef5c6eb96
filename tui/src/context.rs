//! Finding (and on first use installing) what a command needs: runtime, espeak-ng, voices.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use demod_voice_core::assets::{self, Dirs, SetupOptions};
use demod_voice_core::espeak::Espeak;
use demod_voice_core::piper::PiperVoice;
use demod_voice_core::runtime::{Runtime, RuntimeSearch, SessionOptions};

use crate::cli::GlobalArgs;

/// Shared state of one invocation.
pub struct Context {
    pub global: GlobalArgs,
    pub dirs: Dirs,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Context {
        Context {
            global,
            dirs: Dirs::from_env(),
        }
    }

    fn runtime_search(&self) -> RuntimeSearch {
        RuntimeSearch {
            flag: self.global.ort_lib.clone(),
            env: std::env::var_os("ORT_DYLIB_PATH")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            config: None,
            data_dir: Some(self.dirs.runtime_dir()),
        }
    }

    /// Run `setup` for the named parts, telling the user why.
    fn auto_setup(&self, runtime: bool, espeak: bool, voice: bool) -> Result<()> {
        let what: Vec<&str> = [
            (runtime, "ONNX Runtime"),
            (espeak, "espeak-ng"),
            (voice, "the default voice"),
        ]
        .iter()
        .filter(|(needed, _)| *needed)
        .map(|(_, name)| *name)
        .collect();
        eprintln!(
            "demod-voice: first use: installing {} into {} (run `demod-voice setup` to do this ahead of time)",
            what.join(", "),
            self.dirs.data.display()
        );
        let options = SetupOptions {
            offline: self.global.offline,
            runtime,
            espeak,
            voice,
            ..Default::default()
        };
        let quiet = self.global.quiet;
        let report = assets::setup(&self.dirs, &options, &mut |line| {
            if !quiet {
                eprintln!("demod-voice: {line}");
            }
        })?;
        for item in report {
            if !quiet {
                eprintln!(
                    "demod-voice: {} {} ({})",
                    item.action,
                    item.path.display(),
                    item.package
                );
            }
        }
        Ok(())
    }

    /// The ONNX Runtime, installing it first if nothing is found anywhere.
    pub fn runtime(&self) -> Result<&'static Runtime> {
        let search = self.runtime_search();
        if search.resolve().is_err() && search.flag.is_none() && search.env.is_none() {
            self.auto_setup(true, false, false)?;
        }
        Ok(Runtime::get_or_init(&search)?)
    }

    /// espeak-ng, installing it first if nothing is found anywhere.
    pub fn espeak(&self) -> Result<&'static Espeak> {
        let lookup = |key: &str| {
            std::env::var_os(key)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let found = match assets::find_espeak(&self.dirs, lookup)? {
            Some(found) => found,
            None => {
                self.auto_setup(false, true, false)?;
                assets::find_espeak(&self.dirs, lookup)?
                    .context("espeak-ng is still missing after setup")?
            }
        };
        tracing::debug!(
            "espeak-ng from {} ({})",
            found.paths.library.display(),
            found.source
        );
        Ok(Espeak::get_or_load(&found.paths)?)
    }

    /// The model path for `--voice` (default voice when absent), installing the default voice on first use.
    pub fn voice_path(&self, spec: Option<&str>) -> Result<PathBuf> {
        let spec = spec.unwrap_or(assets::DEFAULT_VOICE);
        let voices_dir = self.dirs.voices_dir();
        if spec == assets::DEFAULT_VOICE && assets::resolve_voice(spec, &voices_dir).is_err() {
            self.auto_setup(false, false, true)?;
        }
        Ok(assets::resolve_voice(spec, &voices_dir)?)
    }

    /// Load a voice with everything it needs.
    pub fn load_voice(&self, spec: Option<&str>, options: &SessionOptions) -> Result<PiperVoice> {
        let model = self.voice_path(spec)?;
        let config = demod_voice_core::piper::VoiceConfig::load(
            &demod_voice_core::piper::VoiceConfig::path_for_model(&model),
        )?;
        let espeak = if config.phoneme_type == demod_voice_core::piper::PhonemeType::Espeak {
            Some(self.espeak()?)
        } else {
            None
        };
        let runtime = self.runtime()?;
        Ok(PiperVoice::load(runtime, &model, espeak, options)?)
    }
}
