//! What the data folder holds, as the front-ends list it: installed Piper voices with their details and the
//! voice profiles of the library with their measurements (each with why it is unusable, when it is).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::assets;
use crate::error::{Error, Result};
use crate::piper::VoiceConfig;
use crate::profile::VoiceProfile;

/// One installed voice as `voices list` and the app show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiceRow {
    /// The name `--voice` takes.
    pub name: String,
    /// Language code (`en_US`), `?` when the config is unreadable.
    pub language: String,
    /// Piper's quality (`x_low`, `low`, `medium`, `high`), `-` when not given.
    pub quality: String,
    /// The voice's sample rate, Hz.
    pub sample_rate: u32,
    /// How many speakers it has.
    pub speakers: u32,
    /// Speaker names in id order (the ids themselves when the voice names none); empty for one speaker.
    pub speaker_names: Vec<String>,
    /// The `.onnx` file.
    pub model: PathBuf,
    /// Why it cannot be used, if it cannot.
    pub problem: Option<String>,
}

/// A multi-speaker voice's speakers by id: their names where the voice gives them, else the ids.
fn speaker_names(config: &crate::piper::VoiceConfig) -> Vec<String> {
    if config.num_speakers <= 1 {
        return Vec::new();
    }
    (0..i64::from(config.num_speakers))
        .map(|id| {
            config
                .speaker_id_map
                .iter()
                .find(|(_, &mapped)| mapped == id)
                .map_or_else(|| id.to_string(), |(name, _)| name.clone())
        })
        .collect()
}

/// The installed Piper voices in `voices_dir`, each with its details or why it cannot be used.
pub fn voices(voices_dir: &Path) -> Vec<VoiceRow> {
    assets::installed_voices(voices_dir)
        .into_iter()
        .map(|voice| {
            let config_path = crate::piper::VoiceConfig::path_for_model(&voice.model);
            match crate::piper::VoiceConfig::load(&config_path) {
                Ok(config) => VoiceRow {
                    name: voice.name,
                    language: config.language_code(),
                    quality: config.audio.quality.clone().unwrap_or_else(|| "-".into()),
                    sample_rate: config.audio.sample_rate,
                    speakers: config.num_speakers,
                    speaker_names: speaker_names(&config),
                    model: voice.model,
                    problem: None,
                },
                Err(e) => VoiceRow {
                    name: voice.name,
                    language: "?".into(),
                    quality: "?".into(),
                    sample_rate: 0,
                    speakers: 0,
                    speaker_names: Vec::new(),
                    model: voice.model,
                    problem: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// One conversion profile of the library, with its measurements or why it cannot be used (`voices list` and the
/// app's Voices screen both show these).
#[derive(Debug, Clone, Serialize)]
pub struct ProfileRow {
    /// The name `--to` and presets take.
    pub name: String,
    /// The reference's median F0, Hz.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_f0_hz: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The reference's vocal-tract length relative to an average voice.
    pub formant_scale: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Seconds of voiced speech it was measured on.
    pub voiced_seconds: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Why it cannot be used, if it cannot.
    pub problem: Option<String>,
    /// The profile file.
    pub path: PathBuf,
    /// SHA-256 of its (first) reference recording: the key of its cloning fits in the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// The recording's speaker embedding, when measured (not listed: 256 numbers say nothing in a list).
    #[serde(skip)]
    pub embedding: Option<crate::speaker::Embedding>,
    /// What the live converter matches toward (not listed: the figures above say it).
    #[serde(skip)]
    pub target: Option<crate::convert::dsp::Target>,
}

impl ProfileRow {
    /// How far cloning moves `voice` toward this profile's recording (before, after), when it has been measured
    /// (`voices show`, `clone`, a batch reference row); never measures.
    pub fn similarity(&self, cache_dir: &Path, voice: &str) -> Option<(f32, f32)> {
        crate::clone::CloneProfile::cached_similarity(cache_dir, self.source_sha256.as_deref()?, voice)
    }
}

/// The profiles in the library at `profiles_dir`, each measured or with its problem.
pub fn profiles(profiles_dir: &Path) -> Vec<ProfileRow> {
    crate::profile::list(profiles_dir)
        .into_iter()
        .map(|(name, path)| match VoiceProfile::load(&path) {
            Ok(p) => ProfileRow {
                name,
                median_f0_hz: Some(p.median_f0_hz),
                formant_scale: Some(p.formant_scale),
                voiced_seconds: Some(p.voiced_seconds),
                problem: None,
                source_sha256: p.sources.first().map(|s| s.sha256.clone()),
                target: Some(p.target()),
                embedding: p.embedding,
                path,
            },
            Err(e) => ProfileRow {
                name,
                median_f0_hz: None,
                formant_scale: None,
                voiced_seconds: None,
                problem: Some(e.to_string()),
                source_sha256: None,
                embedding: None,
                target: None,
                path,
            },
        })
        .collect()
}

/// `en-US`, `en_us` and `EN` all become comparable (the form languages are compared in): lower case, `_` as the separator.
pub fn normalise_language(code: &str) -> String {
    code.trim().to_lowercase().replace('-', "_")
}

/// True when a voice of language `voice` (e.g. `en_US`) speaks `wanted` (e.g. `en`, `en-us`).
pub fn speaks(voice: &str, wanted: &str) -> bool {
    let (voice, wanted) = (normalise_language(voice), normalise_language(wanted));
    !wanted.is_empty() && (voice == wanted || voice.starts_with(&format!("{wanted}_")))
}

/// Piper's qualities, best first.
fn quality_rank(quality: Option<&str>) -> usize {
    match quality {
        Some("high") => 0,
        Some("medium") => 1,
        Some("low") => 2,
        Some("x_low") => 3,
        _ => 4,
    }
}

/// The installed voice in `voices_dir` that speaks `language`, best quality first (then by name).
pub fn voice_for_language(voices_dir: &Path, language: &str) -> Option<String> {
    let mut candidates: Vec<(usize, String)> = assets::installed_voices(voices_dir)
        .into_iter()
        .filter_map(|voice| {
            let config = VoiceConfig::load(&VoiceConfig::path_for_model(&voice.model)).ok()?;
            speaks(&config.language_code(), language)
                .then(|| (quality_rank(config.audio.quality.as_deref()), voice.name))
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next().map(|(_, name)| name)
}

/// Measure `references` into a profile named `name` and save it in `profiles_dir` (`voices add-profile`, the app's
/// Voices screen). When `encoder` gives one (it is asked only once the recordings measured well), the profile also
/// stores the recordings' speaker embedding (the mean of each recording's). An existing profile of that name is kept
/// unless `replace`.
pub fn add_profile(
    profiles_dir: &Path,
    name: &str,
    references: &[PathBuf],
    replace: bool,
    encoder: impl FnOnce() -> Option<crate::speaker::SpeakerEncoder>,
) -> Result<(VoiceProfile, PathBuf)> {
    let path = VoiceProfile::path_in(profiles_dir, name);
    if path.exists() && !replace {
        return Err(Error::Profile {
            path,
            problem: format!("a profile named `{name}` already exists; pass --force to replace it"),
        });
    }
    for reference in references {
        if !reference.is_file() {
            return Err(Error::Profile {
                path: reference.clone(),
                problem: "the reference recording does not exist".into(),
            });
        }
    }
    let mut profile = VoiceProfile::from_recordings(name, references)?;
    if let Some(encoder) = encoder() {
        let mut sum = vec![0.0f32; crate::speaker::EMBEDDING_DIM];
        for reference in references {
            for (s, v) in sum.iter_mut().zip(encoder.embed_file(reference)?.values()) {
                *s += v;
            }
        }
        profile.embedding = Some(crate::speaker::Embedding::new(sum));
    }
    let saved = profile.save(profiles_dir)?;
    Ok((profile, saved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_match_by_prefix_whatever_the_spelling() {
        assert!(speaks("en_US", "en"));
        assert!(speaks("en_US", "en-us"));
        assert!(speaks("en_US", "EN_us"));
        assert!(!speaks("en_US", "en-gb"));
        assert!(!speaks("de_DE", "en"));
        assert!(!speaks("en_US", ""));
    }

    #[test]
    fn the_best_quality_voice_of_a_language_is_picked() {
        let dir = tempfile::tempdir().unwrap();
        let config = |language: &str, quality: &str| {
            format!(
                r#"{{"audio":{{"sample_rate":22050,"quality":"{quality}"}},"espeak":{{"voice":"{language}"}},"language":{{"code":"{language}"}},"num_speakers":1,"phoneme_id_map":{{"_":[0],"^":[1],"$":[2]}}}}"#
            )
        };
        for (name, language, quality) in
            [("de_DE-a-low", "de_DE", "low"), ("de_DE-b-high", "de_DE", "high"), ("fr_FR-c-medium", "fr_FR", "medium")]
        {
            std::fs::write(dir.path().join(format!("{name}.onnx")), b"not a model").unwrap();
            std::fs::write(dir.path().join(format!("{name}.onnx.json")), config(language, quality)).unwrap();
        }
        assert_eq!(voice_for_language(dir.path(), "de").as_deref(), Some("de_DE-b-high"));
        assert_eq!(voice_for_language(dir.path(), "fr-fr").as_deref(), Some("fr_FR-c-medium"));
        assert_eq!(voice_for_language(dir.path(), "es"), None);
    }
}
