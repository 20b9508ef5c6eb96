//! The speech work of one batch job, shared by `demod-voice batch` and the app's Batch screen: each voice and each
//! reference profile is loaded once per run, the row's settings are laid over the run's, and the job runs through
//! the one speech pipeline into its output file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Job;
use crate::assets;
use crate::clone::CloneMatch;
use crate::error::{Error, Result};
use crate::pipeline::{SentenceConverter, Speech, VoiceCache};
use crate::piper::{PiperVoice, VoiceConfig};
use crate::settings::{Setting, Settings};
use crate::speaker::SpeakerEncoder;
use crate::wav::{AtomicWav, WavEncoding};

/// Does one job at a time (shareable between runner threads).
#[derive(Debug)]
pub struct SpeechWorker<'a> {
    settings: &'a Settings,
    voices: VoiceCache,
    /// Clone matches by reference recording and voice (each fitted once per run, or read from the cache).
    clones: Mutex<HashMap<(PathBuf, String), Arc<CloneMatch>>>,
    /// The speaker encoder, loaded by the first clone row.
    encoder: Mutex<Option<Arc<SpeakerEncoder>>>,
    /// Each finished clone row's similarity to its reference, by row.
    similarities: Mutex<std::collections::BTreeMap<usize, f32>>,
    /// Languages already warned about (a warning once per run, not once per row).
    warned_languages: Mutex<HashSet<String>>,
}

/// `en-US`, `en_us` and `EN` all become comparable: lower case, `_` as the separator.
fn normalise_language(code: &str) -> String {
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

impl<'a> SpeechWorker<'a> {
    /// A worker for a run with `settings` (config, preset and flags already laid).
    pub fn new(settings: &'a Settings) -> SpeechWorker<'a> {
        SpeechWorker {
            settings,
            voices: VoiceCache::default(),
            clones: Mutex::new(HashMap::new()),
            encoder: Mutex::new(None),
            similarities: Mutex::new(std::collections::BTreeMap::new()),
            warned_languages: Mutex::new(HashSet::new()),
        }
    }

    fn voice(&self, spec: &str) -> Result<Arc<PiperVoice>> {
        self.voices.get(spec, |spec| self.settings.load_voice(Some(spec)))
    }

    fn encoder(&self, settings: &Settings) -> Result<Arc<SpeakerEncoder>> {
        let mut slot = self.encoder.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(encoder) => Ok(Arc::clone(encoder)),
            None => Ok(Arc::clone(slot.insert(Arc::new(settings.speaker_encoder()?)))),
        }
    }

    /// Each finished clone row's speaker-encoder similarity to its reference, by row (for the run's report).
    pub fn similarities(&self) -> std::collections::BTreeMap<usize, f32> {
        self.similarities.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The clone match of `reference` for `voice`, as `clone` makes it (held while fitting, so concurrent rows with
    /// the same reference wait for the one fit).
    fn clone_match(&self, reference: &Path, voice: &PiperVoice, settings: &Settings) -> Result<Arc<CloneMatch>> {
        let mut clones = self.clones.lock().unwrap_or_else(|p| p.into_inner());
        let key = (reference.to_path_buf(), voice.name.clone());
        if let Some(found) = clones.get(&key) {
            return Ok(Arc::clone(found));
        }
        let encoder = self.encoder(settings)?;
        let found = Arc::new(crate::clone::prepare(reference, voice, settings, &encoder)?);
        clones.insert(key, Arc::clone(&found));
        Ok(found)
    }

    /// The settings of one row: the run's, then the row's preset, then the row's own columns.
    pub fn job_settings(&self, job: &Job) -> Result<Settings> {
        let mut settings = self.settings.clone();
        if let Some(preset) = &job.preset {
            settings.apply_preset(preset)?;
        }
        let row = format!("row {}", job.row);
        if let Some(voice) = &job.voice {
            settings.set(Setting::Voice(voice.clone()), &row);
        }
        if let Some(speaker) = &job.speaker {
            settings.set(Setting::Speaker(speaker.clone()), &row);
        }
        for (value, setting) in [
            (job.length_scale, Setting::LengthScale as fn(f32) -> Setting),
            (job.noise_scale, Setting::NoiseScale),
            (job.noise_w, Setting::NoiseW),
        ] {
            if let Some(value) = value {
                settings.set(setting(value), &row);
            }
        }
        // A clone job, a profile or an engine column means conversion; the engine is the row's, else dsp.
        if job.reference.is_some() || job.profile.is_some() || job.engine.is_some() {
            settings.set(Setting::Engine(job.engine.unwrap_or_default()), &row);
        }
        if let Some(profile) = &job.profile {
            settings.set(Setting::Profile(profile.clone()), &row);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// The voice for a row: its own, else one of its `language` when the configured voice speaks another and one
    /// is installed, else the configured voice (with one warning per language and run).
    fn job_voice(&self, job: &Job, settings: &Settings) -> Result<Arc<PiperVoice>> {
        let configured = self.voice(&settings.config.tts.voice)?;
        let Some(language) = job.language.as_deref().filter(|l| !l.trim().is_empty()) else {
            return Ok(configured);
        };
        if job.voice.is_some() || speaks(&configured.config.language_code(), language) {
            return Ok(configured);
        }
        if let Some(name) = voice_for_language(&settings.dirs.voices_dir(), language) {
            return self.voice(&name);
        }
        let mut warned = self.warned_languages.lock().unwrap_or_else(|p| p.into_inner());
        if warned.insert(normalise_language(language)) {
            tracing::warn!(
                "language `{language}` (row {} and others): no installed voice speaks it; using {} ({})",
                job.row,
                settings.config.tts.voice,
                configured.config.language_code()
            );
        }
        Ok(configured)
    }

    /// Do `job`: write its output (atomically) through the speech pipeline and return the seconds of audio.
    /// `deadline` is when its timeout expires; it is checked after every sentence.
    pub fn run(&self, job: &Job, deadline: Option<Instant>) -> Result<f64> {
        let settings = self.job_settings(job)?;
        let voice = self.job_voice(job, &settings)?;
        let mut speech = Speech::new(&voice, &settings)?;
        let mut clone_target = None;
        if let Some(reference) = &job.reference {
            // A clone row runs exactly what `clone` runs.
            let clone = self.clone_match(reference, &voice, &settings)?;
            clone_target = Some(clone.profile.embedding.clone());
            speech.converter = Some(SentenceConverter::cloning(clone, &settings.config.realtime));
        }
        let mut written = Vec::new();
        if let Some(parent) = job.output.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
            remove_stale_partials(parent, &job.output);
        }
        let encoding = WavEncoding::from(settings.config.output.format);
        let mut wav = AtomicWav::create_with(&job.output, speech.output_rate_hz, encoding)?;
        let spoken = speech.run(&job.text, |samples| {
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(Error::Setting { key: "timeout".into(), problem: "the job ran past its timeout".into() });
            }
            if clone_target.is_some() {
                written.extend_from_slice(samples);
            }
            wav.write(samples)
        })?;
        wav.finish()?;
        if let Some(target) = clone_target {
            let similarity = self.encoder(&settings)?.embed(&written, spoken.sample_rate_hz)?.cosine(&target);
            self.similarities.lock().unwrap_or_else(|p| p.into_inner()).insert(job.row, similarity);
        }
        Ok(spoken.seconds())
    }
}

/// A run killed mid-write leaves its temporary file (`.NAME.PID.partial`); the next attempt clears it.
fn remove_stale_partials(dir: &Path, output: &Path) {
    let Some(name) = output.file_name().map(|n| n.to_string_lossy().into_owned()) else { return };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".partial") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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
