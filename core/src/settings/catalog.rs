//! The voice the settings choose (`tts.voice`, or the voice of `tts.language`) and installing a catalogue voice on
//! first use, as the default voice is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Settings;
use crate::catalog::{self, CatalogOptions, DownloadOptions, HttpOptions, LoadedCatalog, Refresh};
use crate::error::{Error, Result};
use crate::library::{speaks, voice_for_language};
use crate::piper::VoiceConfig;

/// How specific a value's source is: default, config file, preset, then anything a user said for this run (a
/// flag, a batch row, an app control).
fn specificity(source: &str) -> u8 {
    match source {
        "default" => 0,
        s if s.starts_with("file ") || s.starts_with("DEMOD_VOICE_") => 1,
        s if s.starts_with("preset ") => 2,
        _ => 3,
    }
}

/// The language a voice name or installed voice speaks: its config's, else its key's prefix (`de_DE-…`).
fn voice_language(spec: &str, voices_dir: &Path) -> Option<String> {
    if let Ok(model) = crate::assets::resolve_voice(spec, voices_dir) {
        if let Ok(config) = VoiceConfig::load(&VoiceConfig::path_for_model(&model)) {
            return Some(config.language_code());
        }
    }
    let name = crate::piper::synth::voice_name(Path::new(spec));
    name.split_once('-').map(|(code, _)| code.to_string())
}

impl Settings {
    /// Where the catalogue is and how to fetch it (`voices.*`).
    pub fn catalog_options(&self) -> CatalogOptions {
        let voices = &self.config.voices;
        CatalogOptions {
            catalog_url: voices.catalog_url.clone(),
            base_url: voices.base_url.clone(),
            max_age: Duration::from_secs_f32(voices.catalog_max_age_hours * 3600.0),
            http: self.http_options(),
        }
    }

    fn http_options(&self) -> HttpOptions {
        let voices = &self.config.voices;
        HttpOptions {
            timeout: Duration::from_secs_f32(voices.timeout_s),
            retries: voices.retries,
            backoff: Duration::from_secs_f32((voices.timeout_s / 30.0).clamp(0.05, 1.0)),
        }
    }

    /// How `voices download` and first use fetch a voice.
    pub fn download_options(&self, force: bool) -> DownloadOptions {
        DownloadOptions { base_url: self.config.voices.base_url.clone(), force, http: self.http_options() }
    }

    /// The catalogue: cached, or fetched when stale, `refresh`ed, and never fetched when offline.
    pub fn catalog(&self, refresh: bool) -> Result<LoadedCatalog> {
        let refresh = match (self.offline, refresh) {
            (true, _) => Refresh::Never,
            (false, true) => Refresh::Always,
            (false, false) => Refresh::IfStale,
        };
        catalog::load(&self.catalog_options(), &self.dirs.cache, refresh)
    }

    /// The voice these settings speak with: `tts.voice`, unless `tts.language` was given more specifically than
    /// the voice (a `--language` flag over a configured voice, `tts.language` in the file over the default voice)
    /// and the voice does not speak it; then the installed voice of that language (best quality first), else the
    /// catalogue's best voice for it (installed on first use by [`Settings::voice_path`]).
    pub fn chosen_voice(&self) -> Result<String> {
        let voice = self.config.tts.voice.clone();
        let Some(language) = self.config.tts.language.as_deref().map(str::trim).filter(|l| !l.is_empty()) else {
            return Ok(voice);
        };
        let voices_dir = self.dirs.voices_dir();
        if specificity(self.source_of("tts.language")) <= specificity(self.source_of("tts.voice"))
            || voice_language(&voice, &voices_dir).is_some_and(|spoken| speaks(&spoken, language))
        {
            return Ok(voice);
        }
        if let Some(name) = voice_for_language(&voices_dir, language) {
            return Ok(name);
        }
        let loaded = self.catalog(false).map_err(|e| Error::Setting {
            key: "tts.language".into(),
            problem: format!("no installed voice speaks `{language}`, and the catalogue cannot be read: {e}"),
        })?;
        match loaded.catalog.best_for_language(language) {
            Some(found) => Ok(found.key.clone()),
            None => Err(Error::Setting {
                key: "tts.language".into(),
                problem: format!(
                    "no voice speaks `{language}`: none is installed and the catalogue has none; \
                     `demod-voice voices catalog` lists the languages there are (set by {})",
                    self.source_of("tts.language")
                ),
            }),
        }
    }

    /// Install `spec` from the catalogue (its key or an alias) on first use, with the same notice as the default
    /// voice; an error when offline, when it is not in the catalogue, or when the download fails.
    pub(super) fn install_from_catalog(&self, spec: &str, voices_dir: &Path) -> Result<PathBuf> {
        let not_here = |problem: String| Error::VoiceUnavailable { name: spec.to_string(), problem };
        let installed = || {
            let names: Vec<String> =
                crate::assets::installed_voices(voices_dir).into_iter().map(|voice| voice.name).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        if self.offline {
            // A key the cached catalogue knows can be installed later; anything else is simply not here.
            let known = catalog::load(&self.catalog_options(), &self.dirs.cache, Refresh::Never)
                .ok()
                .and_then(|loaded| loaded.catalog.find(spec).map(|voice| voice.key.clone()));
            return Err(match known {
                Some(key) => not_here(format!(
                    "--offline forbids installing it; run `demod-voice voices download {key}` once online \
                     (installed: {})",
                    installed()
                )),
                None => Error::VoiceNotFound { name: spec.to_string(), installed: installed() },
            });
        }
        let loaded = self.catalog(false).map_err(|e| {
            not_here(format!(
                "installed are {}; the voice catalogue, which could install it, cannot be read: {e}",
                installed()
            ))
        })?;
        if let Some(warning) = &loaded.warning {
            tracing::warn!("{warning}");
        }
        let Some(voice) = loaded.catalog.find(spec) else {
            let suggestions = loaded.catalog.suggestions(spec);
            let hint = if suggestions.is_empty() {
                String::new()
            } else {
                format!(" (did you mean {}?)", suggestions.join(", "))
            };
            return Err(not_here(format!(
                "it is neither installed (installed: {}) nor in the voice catalogue{hint}; `demod-voice voices \
                 catalog` lists the voices there are",
                installed()
            )));
        };
        if let Ok(model) = crate::assets::resolve_voice(&voice.key, voices_dir) {
            return Ok(model);
        }
        eprintln!(
            "demod-voice: first use: installing voice {} ({}) from the voice catalogue into {} (run `demod-voice \
             voices download {}` to do this ahead of time)",
            voice.key,
            catalog::human_size(voice.download_bytes()),
            voices_dir.display(),
            voice.key
        );
        let quiet = self.quiet;
        let mut next_quarter = 1u64;
        let installed = catalog::download(voice, voices_dir, &self.download_options(false), &mut |p| {
            if !quiet && p.total > 0 && p.done * 4 >= next_quarter * p.total {
                eprintln!("demod-voice: {}: {}%", p.key, p.done * 100 / p.total);
                next_quarter = p.done * 4 / p.total + 1;
            }
        })?;
        Ok(installed.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_is_more_specific_than_a_file_than_the_default() {
        assert!(specificity("--language") > specificity("preset fast"));
        assert!(specificity("preset fast") > specificity("file /x/config.yaml"));
        assert!(specificity("file /x/config.yaml") > specificity("default"));
        assert_eq!(specificity("row 3"), specificity("--voice"));
    }

    #[test]
    fn a_voice_keys_prefix_is_its_language_when_it_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(voice_language("de_DE-thorsten-medium", dir.path()).as_deref(), Some("de_DE"));
    }
}
