//! The speech work of one batch job, shared by `demod-voice batch` and the app's Batch screen: each voice and each
//! reference profile is loaded once per run, the row's settings are laid over the run's, and the job runs through
//! the one speech pipeline into its output file.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Job;
use crate::clone::CloneMatch;
use crate::error::{Error, Result};
use crate::library::{normalise_language, speaks, voice_for_language};
use crate::pipeline::{SentenceConverter, Speech, VoiceCache};
use crate::piper::PiperVoice;
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
        if let Some(model) = &job.model {
            settings.set(Setting::Model(model.clone()), &row);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// The voice for a row: its own, else one of its `language` when the configured voice speaks another (an
    /// installed one, best quality first, else the catalogue's best, installed on first use), else the configured
    /// voice (with one warning per language and run).
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
        // None installed: the catalogue's best for it, installed once (not offline; not again for a language that
        // already failed this run).
        let gave_up =
            self.warned_languages.lock().unwrap_or_else(|p| p.into_inner()).contains(&normalise_language(language));
        if let Some(key) = (!settings.offline && !gave_up)
            .then(|| settings.catalog(false).ok())
            .flatten()
            .and_then(|loaded| loaded.catalog.best_for_language(language).map(|v| v.key.clone()))
        {
            match self.voice(&key) {
                Ok(voice) => return Ok(voice),
                Err(e) => tracing::warn!("language `{language}` (row {}): voice {key} cannot be had: {e}", job.row),
            }
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
        let mut settings = self.job_settings(job)?;
        let voice = self.job_voice(job, &settings)?;
        if let Some(reference) = &job.reference {
            // A row that names no speaker of a multi-speaker voice starts from the one nearest its reference.
            let encoder = self.encoder(&settings)?;
            crate::clone::choose_speaker(reference, &voice, &mut settings, &encoder)?;
        }
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

/// Run `jobs` as speech with `settings` (the step `demod-voice batch` and the app's Batch screen share): one
/// [`SpeechWorker`] for all the runner's threads, so each voice, reference and fit is loaded once; the summary
/// carries the clone rows' similarities.
pub fn run_speech(
    jobs: &[Job],
    options: &super::RunOptions,
    settings: &Settings,
    events: &(dyn Fn(super::Event) + Sync),
) -> Result<super::Summary> {
    let worker = SpeechWorker::new(settings);
    let mut summary = super::run(jobs, options, &|job, deadline| worker.run(job, deadline), events)?;
    summary.similarity = worker.similarities();
    Ok(summary)
}
