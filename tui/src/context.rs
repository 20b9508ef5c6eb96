//! One invocation's global flags and its settings (resolved by core's [`Settings`]: defaults, config file,
//! preset, flags).

use anyhow::Result;
use demod_voice_core::settings::{Setting, Settings};

use crate::cli::{GlobalArgs, ScaleArgs};
use crate::error::usage;

/// Shared state of one invocation.
pub struct Context {
    /// The global flags as given.
    pub global: GlobalArgs,
    /// Effective settings with the source of each value; also finds (or installs) runtime, espeak-ng, voices.
    pub settings: Settings,
}

impl Context {
    /// Load the config file and lay the global flags over it. Config problems are errors (exit code 2).
    pub fn new(global: GlobalArgs) -> Result<Context> {
        let settings = Settings::load(global.config.as_deref())?;
        Self::with_settings(global, settings)
    }

    /// Built-in defaults and flags only (`health` uses this to report a broken config file).
    pub fn with_defaults(global: GlobalArgs) -> Result<Context> {
        Self::with_settings(global, Settings::defaults())
    }

    fn with_settings(global: GlobalArgs, mut settings: Settings) -> Result<Context> {
        for (setting, flag) in global.settings() {
            settings.set(setting, flag);
        }
        settings.offline = global.offline;
        settings.quiet = global.quiet;
        settings.validate()?;
        Ok(Context { global, settings })
    }

    /// Lay `--preset` and then the speech flags over the settings, and check the result (exit code 2 on a bad
    /// value, naming the key and the flag or file that set it).
    pub fn apply_speech_flags(&mut self, scales: &ScaleArgs) -> Result<()> {
        if let Some(name) = &scales.preset {
            self.settings.apply_preset(name)?;
        }
        for (setting, flag) in scales.settings() {
            self.settings.set(setting, flag);
        }
        self.check()
    }

    /// Check the settings as they now stand.
    pub fn check(&self) -> Result<()> {
        self.settings.validate().map_err(|e| usage(e.to_string()))
    }

    /// Set the voice a command names (`--voice`, a model argument).
    pub fn set_voice(&mut self, voice: Option<&str>, flag: &'static str) {
        if let Some(voice) = voice {
            self.settings.set(Setting::Voice(voice.to_string()), flag);
        }
    }

    /// Set `--voice` and `--language` (checked: a bad language code is a usage error).
    pub fn set_voice_args(&mut self, args: &crate::cli::VoiceArgs) -> Result<()> {
        self.set_voice(args.voice.as_deref(), "--voice");
        if let Some(language) = &args.language {
            self.settings.set(Setting::Language(language.clone()), "--language");
        }
        self.check()
    }
}
