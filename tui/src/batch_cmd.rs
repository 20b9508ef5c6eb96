//! `batch MANIFEST` (headless) and `batch report JOURNAL...`.
//!
//! Exit codes: 0 every job done (or already done), 1 some job failed or a row was invalid, 2 the manifest is
//! unusable (unreadable, every row invalid, or an invalid row with `--strict`).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use demod_voice_core::audio::{resample, AtomicWav, WavEncoding};
use demod_voice_core::batch::{self, Event, Job, Manifest, RunOptions};
use demod_voice_core::piper::{PiperVoice, SynthesisOptions};
use demod_voice_core::voice::VoiceProfile;

use crate::cli::{BatchArgs, BatchCommand};
use crate::context::Context;
use crate::speak::{apply_preset_and_flags, usage};

/// The exit code the summary calls for.
#[derive(Debug)]
pub struct SomeFailed(pub String);

impl std::fmt::Display for SomeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SomeFailed {}

pub fn batch(ctx: &mut Context, args: BatchArgs) -> Result<()> {
    if let Some(BatchCommand::Report { journals, json }) = args.command {
        return report(&journals, json);
    }
    let Some(manifest_path) = args.manifest.clone() else {
        return Err(usage("give a manifest: demod-voice batch MANIFEST.csv|.jsonl|.yaml|.txt"));
    };
    let manifest = Manifest::load(&manifest_path).map_err(|e| usage(e.to_string()))?;
    for error in &manifest.errors {
        eprintln!("invalid {}: {error}", manifest_path.display());
    }
    if manifest.jobs.is_empty() {
        return Err(usage(format!(
            "{} has no valid rows ({} invalid)",
            manifest_path.display(),
            manifest.errors.len()
        )));
    }
    if args.strict && !manifest.errors.is_empty() {
        return Err(usage(format!("{} invalid row(s) and --strict: nothing was run", manifest.errors.len())));
    }
    if args.check {
        println!(
            "{}: {} valid row(s), {} invalid",
            manifest_path.display(),
            manifest.jobs.len(),
            manifest.errors.len()
        );
        return if manifest.errors.is_empty() { Ok(()) } else { Err(SomeFailed("invalid rows".into()).into()) };
    }
    let converter_defaults = apply_preset_and_flags(ctx, &args.scales)?;
    let jobs: Vec<Job> = match args.shard {
        Some(shard) => manifest.jobs.iter().filter(|j| shard.contains(j)).cloned().collect(),
        None => manifest.jobs.clone(),
    };
    let options = RunOptions {
        jobs: args.jobs.max(1),
        fail_fast: args.fail_fast,
        timeout: args.timeout.map(Duration::from_secs_f64),
        force: args.force,
        overwrite: args.overwrite,
        journal: batch::journal_path(&manifest_path, args.state.as_deref(), args.shard),
        cancel: None,
    };
    let total = jobs.len();
    let progress = Progress::new(total, args.json_events, ctx_quiet(ctx));
    let summary = run_jobs(ctx, &jobs, &options, converter_defaults, &|event| progress.event(event))?;
    progress.finish();
    let mut summary = summary;
    summary.invalid = manifest.errors.len();
    summary.failures.extend(manifest.errors.iter().cloned());
    summary.failures.sort_by_key(|f| f.row);
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&summary)? + "\n";
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write report {}: {e}", path.display()))?;
    }
    eprintln!(
        "batch: {} done, {} already done or skipped, {} failed, {} invalid; {:.1} s of audio in {:.1} s (real-time factor {:.3})",
        summary.done, summary.skipped, summary.failed, summary.invalid, summary.audio_seconds, summary.wall_seconds, summary.real_time_factor
    );
    for failure in &summary.failures {
        eprintln!("  {failure}");
    }
    if summary.failed > 0 || summary.invalid > 0 {
        return Err(SomeFailed(format!("{} job(s) failed, {} row(s) invalid", summary.failed, summary.invalid)).into());
    }
    Ok(())
}

/// The terminal app's batch run: every job of `manifest` with the configured defaults, one worker, progress through
/// `events`, stopping early when `cancel` is set. `loaded` hears the valid jobs and the invalid rows first.
pub fn run_for_app(
    ctx: &mut Context,
    manifest_path: &std::path::Path,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    loaded: impl FnOnce(&[Job], &[batch::RowError]),
    events: &(dyn Fn(Event) + Sync),
) -> Result<batch::Summary> {
    let manifest = Manifest::load(manifest_path).map_err(|e| usage(e.to_string()))?;
    loaded(&manifest.jobs, &manifest.errors);
    let converter_defaults = apply_preset_and_flags(ctx, &crate::cli::ScaleArgs::default())?;
    let options =
        RunOptions { cancel: Some(cancel), ..RunOptions::sequential(batch::journal_path(manifest_path, None, None)) };
    let mut summary = run_jobs(ctx, &manifest.jobs, &options, converter_defaults, events)?;
    summary.invalid = manifest.errors.len();
    Ok(summary)
}

/// The step `batch` and the app's Batch screen share: one worker (each voice and profile loaded once) runs `jobs`.
fn run_jobs(
    ctx: &Context,
    jobs: &[Job],
    options: &RunOptions,
    converter_defaults: Option<demod_voice_core::presets::ConverterSettings>,
    events: &(dyn Fn(Event) + Sync),
) -> Result<batch::Summary> {
    let worker =
        Worker { ctx, voices: Mutex::new(HashMap::new()), profiles: Mutex::new(HashMap::new()), converter_defaults };
    Ok(batch::run(jobs, options, &|job, deadline| worker.run(job, deadline), events)?)
}

fn ctx_quiet(ctx: &Context) -> bool {
    ctx.global.quiet
}

/// Loads each voice once and each reference profile once, and does one job.
struct Worker<'a> {
    ctx: &'a Context,
    voices: Mutex<HashMap<String, Arc<PiperVoice>>>,
    profiles: Mutex<HashMap<PathBuf, Arc<VoiceProfile>>>,
    converter_defaults: Option<demod_voice_core::presets::ConverterSettings>,
}

impl Worker<'_> {
    fn voice(&self, spec: &str) -> Result<Arc<PiperVoice>> {
        // Holding the lock while loading makes concurrent workers wait for the one load instead of loading twice.
        let mut voices = self.voices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(voice) = voices.get(spec) {
            return Ok(Arc::clone(voice));
        }
        let voice = Arc::new(self.ctx.load_voice(Some(spec))?);
        voices.insert(spec.to_string(), Arc::clone(&voice));
        Ok(voice)
    }

    fn profile(&self, reference: &PathBuf) -> Result<Arc<VoiceProfile>> {
        let mut profiles = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(profile) = profiles.get(reference) {
            return Ok(Arc::clone(profile));
        }
        let profile = Arc::new(VoiceProfile::from_recordings("reference", std::slice::from_ref(reference))?);
        profiles.insert(reference.clone(), Arc::clone(&profile));
        Ok(profile)
    }

    fn run(&self, job: &Job, deadline: Option<Instant>) -> demod_voice_core::Result<f64> {
        let wrap =
            |e: anyhow::Error| demod_voice_core::Error::Setting { key: "batch".into(), problem: format!("{e:#}") };
        let settings = &self.ctx.settings.config;
        let mut tts = settings.tts.clone();
        if let Some(name) = &job.preset {
            let found = demod_voice_core::presets::find(name, &self.ctx.dirs.config.join("presets"))?;
            let mut config = settings.clone();
            found.preset.apply(&mut config, &mut |_, _| {});
            tts = config.tts;
        }
        let voice_spec = job.voice.clone().unwrap_or_else(|| tts.voice.clone());
        let voice = self.voice(&voice_spec).map_err(wrap)?;
        let speaker_id = match job.speaker.as_ref().or(tts.speaker.as_ref()) {
            Some(speaker) => Some(voice.speaker_id(speaker)?),
            None => None,
        };
        let options = SynthesisOptions {
            speaker_id,
            length_scale: job.length_scale.or(tts.length_scale),
            noise_scale: job.noise_scale.or(tts.noise_scale),
            noise_w: job.noise_w.or(tts.noise_w),
            sentence_silence: tts.sentence_silence,
            volume: tts.volume,
            normalize: tts.normalize,
        };
        // A clone job converts toward the reference's profile, a `profile` column toward a library profile;
        // otherwise the preset's converter applies, if any. `engine` picks the converter.
        let target = match (&job.reference, &job.profile) {
            (Some(reference), _) => Some(self.profile(reference).map_err(wrap)?.target()),
            (None, Some(name)) => Some(VoiceProfile::find(name, &self.ctx.profiles_dir())?.target()),
            (None, None) => None,
        };
        let base = self.converter_defaults.clone();
        let converter = if target.is_some() || job.engine.is_some() {
            let mut conv = base.unwrap_or_default();
            conv.engine = job.engine.clone().unwrap_or_else(|| "dsp".into());
            Some((conv, target))
        } else {
            base.map(|c| (c, None))
        };
        if let Some(parent) = job.output.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| demod_voice_core::Error::Write { path: parent.to_path_buf(), source })?;
            remove_stale_partials(parent, &job.output);
        }
        let voice_rate = voice.sample_rate();
        let rate = settings.output.sample_rate.unwrap_or(voice_rate);
        let mut wav = AtomicWav::create_with(&job.output, rate, WavEncoding::from(settings.output.format))?;
        let mut samples_written = 0usize;
        voice.synthesize(&job.text, &options, |audio| -> demod_voice_core::Result<()> {
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Err(demod_voice_core::Error::Setting {
                    key: "timeout".into(),
                    problem: "the job ran past its timeout".into(),
                });
            }
            let samples = match &converter {
                Some((conv, target)) => conv.convert_clip(&audio.samples, voice_rate, *target, &settings.realtime)?,
                None => audio.samples,
            };
            let samples = if rate == voice_rate { samples } else { resample(&samples, voice_rate, rate)? };
            samples_written += samples.len();
            wav.write(&samples)
        })?;
        wav.finish()?;
        Ok(samples_written as f64 / f64::from(rate))
    }
}

/// A run killed mid-write leaves its temporary file (`.NAME.PID.partial`); the next attempt clears it.
fn remove_stale_partials(dir: &std::path::Path, output: &std::path::Path) {
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

/// Progress on stderr (a bar on a terminal, periodic lines otherwise) and, with --json-events, events on stdout.
struct Progress {
    total: usize,
    json: bool,
    quiet: bool,
    terminal: bool,
    state: Mutex<(usize, Instant, f64)>,
}

impl Progress {
    fn new(total: usize, json: bool, quiet: bool) -> Progress {
        Progress {
            total,
            json,
            quiet,
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new((0, Instant::now(), 0.0)),
        }
    }

    fn event(&self, event: Event) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut out, &event).map(|()| writeln!(out));
            let _ = out.flush();
        }
        let ended = matches!(event, Event::Finished { .. } | Event::Failed { .. } | Event::Skipped { .. });
        if let Event::Failed { row, error, .. } = &event {
            if !self.quiet {
                eprintln!("row {row} failed: {error}");
            }
        }
        if !ended || self.quiet {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += 1;
        if let Event::Finished { audio_seconds, .. } = event {
            state.2 += audio_seconds;
        }
        let (done, started, audio) = *state;
        let elapsed = started.elapsed().as_secs_f64();
        let eta = if done > 0 { elapsed / done as f64 * (self.total - done) as f64 } else { 0.0 };
        if self.terminal {
            let width = 30;
            let filled = done * width / self.total.max(1);
            eprint!(
                "\r[{}{}] {done}/{} jobs, {audio:.1} s audio, ETA {eta:.0} s ",
                "#".repeat(filled),
                "-".repeat(width - filled),
                self.total
            );
        } else if done == self.total || done % 10 == 0 {
            eprintln!(
                "batch: {done}/{} jobs, {audio:.1} s of audio, {elapsed:.1} s elapsed, ETA {eta:.0} s",
                self.total
            );
        }
    }

    fn finish(&self) {
        if self.terminal && !self.quiet {
            eprintln!();
        }
    }
}

fn report(journals: &[PathBuf], json: bool) -> Result<()> {
    for path in journals {
        if !path.is_file() {
            return Err(usage(format!("journal {} does not exist", path.display())));
        }
    }
    let (merged, duplicates) = batch::merge_journals(journals);
    let audio: f64 = merged.values().map(|e| e.audio_seconds).sum();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "outputs": merged.len(), "audio_seconds": audio, "duplicates": duplicates, "entries": merged }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(out, "{} outputs, {audio:.1} s of audio, from {} journal(s)", merged.len(), journals.len())?;
        for output in &duplicates {
            writeln!(out, "warning: {output} appears in more than one journal")?;
        }
    }
    Ok(())
}
