//! Batch synthesis: manifests (the old tool's CSV, JSON lines, YAML, plain text), validation of every row up
//! front, a parallel runner sharing one loaded voice per voice, atomic outputs, a journal for resuming after a
//! crash, and deterministic sharding for cluster job arrays.
//!
//! - [`manifest`]: reading and validating manifests.
//! - [`journal`]: sharding, the journal, the progress log.
//! - [`worker`]: the speech work of one job (voice and profile caches, the pipeline, the output file).
//! - here: the job type and the runner.

mod journal;
mod manifest;
mod worker;

pub use journal::*;
pub use manifest::*;
pub use worker::{run_speech, SpeechWorker};

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};

/// One job: a row of the manifest, validated, paths resolved against the manifest's folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// 1-based row number (CSV: data rows after the header; JSONL/text: lines; YAML: entries).
    pub row: usize,
    /// What to say.
    pub text: String,
    /// Where the WAV goes (resolved against the manifest's folder).
    pub output: PathBuf,
    /// As written in the manifest (the job's identity for sharding and the journal).
    pub output_as_written: String,
    /// A reference recording: this is a clone job (speech, then conversion toward its profile).
    pub reference: Option<PathBuf>,
    /// A voice (name or path) instead of the configured one.
    pub voice: Option<String>,
    /// A speaker (id or name) of a multi-speaker voice.
    pub speaker: Option<String>,
    /// The text's language: picks an installed voice of it when the row names none.
    pub language: Option<String>,
    /// A preset laid over the run's settings for this row.
    pub preset: Option<String>,
    /// A voice profile (by name) to convert toward.
    pub profile: Option<String>,
    /// Converter engine for the conversion.
    pub engine: Option<crate::convert::Engine>,
    /// The installed model a model engine runs (`demod-voice models list`).
    pub model: Option<String>,
    /// Length scale for this row.
    pub length_scale: Option<f32>,
    /// Noise scale for this row.
    pub noise_scale: Option<f32>,
    /// Noise-w scale for this row.
    pub noise_w: Option<f32>,
}

/// A problem with one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    /// The 1-based row.
    pub row: usize,
    /// The column (or key) at fault, when there is one.
    pub column: Option<String>,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(column) => write!(f, "row {}, column `{column}`: {}", self.row, self.problem),
            None => write!(f, "row {}: {}", self.row, self.problem),
        }
    }
}

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Parallel workers.
    pub jobs: usize,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// Give up on a job after this long.
    pub timeout: Option<Duration>,
    /// Redo every job, ignoring the journal.
    pub force: bool,
    /// Replace outputs the journal does not know.
    pub overwrite: bool,
    /// The journal of finished outputs.
    pub journal: PathBuf,
    /// Set to stop: jobs not yet started are left alone (running ones finish).
    pub cancel: Option<std::sync::Arc<AtomicBool>>,
}

impl RunOptions {
    /// One worker, no timeout, nothing forced or overwritten, no fail-fast, no cancel flag.
    pub fn sequential(journal: PathBuf) -> RunOptions {
        RunOptions { jobs: 1, fail_fast: false, timeout: None, force: false, overwrite: false, journal, cancel: None }
    }
}

/// End-of-run numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Jobs in the run.
    pub total: usize,
    /// Jobs done now.
    pub done: usize,
    /// Jobs already done (journal) or left alone.
    pub skipped: usize,
    /// Jobs that failed.
    pub failed: usize,
    /// Invalid rows.
    pub invalid: usize,
    /// Every failed job and invalid row.
    pub failures: Vec<RowError>,
    /// Seconds of audio written.
    pub audio_seconds: f64,
    /// Seconds the run took.
    pub wall_seconds: f64,
    /// Wall seconds per second of audio.
    pub real_time_factor: f64,
    /// Clone rows done now: their speaker-encoder similarity to their reference, by row.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub similarity: BTreeMap<usize, f32>,
}

/// Does one job: writes `job.output` (atomically) and returns the audio seconds. `deadline` is when the job's
/// timeout expires; the worker checks it between sentences.
pub type JobFn<'a> = dyn Fn(&Job, Option<Instant>) -> Result<f64> + Sync + 'a;

/// Run `jobs` with `options.jobs` workers. Jobs already in the journal (with the same output checksum) are
/// skipped unless `force`; existing outputs the journal does not know are left alone unless `overwrite`.
pub fn run(jobs: &[Job], options: &RunOptions, work: &JobFn<'_>, events: &(dyn Fn(Event) + Sync)) -> Result<Summary> {
    let started = Instant::now();
    if let Some(parent) = options.journal.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
    }
    // One run per journal at a time; everything below (the stale-file sweep included) runs under the lock.
    let _lock = BatchLock::acquire(&options.journal)?;
    let journal = Mutex::new(JournalWriter::open(&options.journal)?);
    let journal_entries = if options.force { Vec::new() } else { read_journal(&options.journal) };
    let finished: HashMap<&str, &JournalEntry> = journal_entries.iter().map(|e| (e.output.as_str(), e)).collect();
    let claimed = if options.force { Default::default() } else { journal_claims(&options.journal) };
    remove_stale_partials(jobs);
    let log = EventLog::create(&events_path(&options.journal), jobs.len());
    let events = |event: Event| {
        log.write(&LogLine::Job(event.clone()));
        events(event);
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let summary = Mutex::new(Summary { total: jobs.len(), ..Default::default() });
    let spawn_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for worker in 0..options.jobs.max(1) {
            let spawned = std::thread::Builder::new().name(format!("batch-{worker}")).spawn_scoped(scope, || loop {
                if stop.load(Ordering::Relaxed) || options.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                    break;
                }
                let idx = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(idx) else { break };
                let output = job.output_as_written.clone();
                let known = finished.get(output.as_str()).filter(|entry| {
                    crate::assets::sha256_hex(&job.output).map(|sum| sum == entry.sha256).unwrap_or(false)
                });
                if known.is_some() {
                    summary.lock().unwrap_or_else(|p| p.into_inner()).skipped += 1;
                    events(Event::Skipped { row: job.row, output, reason: "already done (journal)".into() });
                    continue;
                }
                if job.output.exists() && !options.overwrite && !claimed.contains(&output) {
                    summary.lock().unwrap_or_else(|p| p.into_inner()).skipped += 1;
                    events(Event::Skipped {
                        row: job.row,
                        output,
                        reason: "exists and the journal does not know it (use --overwrite)".into(),
                    });
                    continue;
                }
                events(Event::Started { row: job.row, output: output.clone() });
                // Claimed before the output can exist, so a crash before the finished line still leaves it ours.
                let begun = JournalEntry {
                    output: output.clone(),
                    sha256: String::new(),
                    audio_seconds: 0.0,
                    row: job.row,
                    pending: true,
                };
                journal.lock().unwrap_or_else(|p| p.into_inner()).append(&begun);
                let job_started = Instant::now();
                let deadline = options.timeout.map(|t| job_started + t);
                match work(job, deadline) {
                    Ok(audio_seconds) => {
                        let entry = JournalEntry {
                            output: output.clone(),
                            sha256: crate::assets::sha256_hex(&job.output).unwrap_or_default(),
                            audio_seconds,
                            row: job.row,
                            pending: false,
                        };
                        journal.lock().unwrap_or_else(|p| p.into_inner()).append(&entry);
                        let mut s = summary.lock().unwrap_or_else(|p| p.into_inner());
                        s.done += 1;
                        s.audio_seconds += audio_seconds;
                        drop(s);
                        events(Event::Finished {
                            row: job.row,
                            output,
                            audio_seconds,
                            seconds: job_started.elapsed().as_secs_f64(),
                        });
                    }
                    Err(e) => {
                        let mut s = summary.lock().unwrap_or_else(|p| p.into_inner());
                        s.failed += 1;
                        s.failures.push(RowError { row: job.row, column: None, problem: e.to_string() });
                        drop(s);
                        events(Event::Failed { row: job.row, output, error: e.to_string() });
                        if options.fail_fast {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
            if let Err(error) = spawned {
                // The system is out of threads: run with those there are, or fail cleanly with none.
                if worker == 0 {
                    *spawn_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
                } else {
                    tracing::warn!("could start only {worker} of {} workers ({error})", options.jobs);
                }
                break;
            }
        }
    });
    if let Some(source) = spawn_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(Error::Write { path: options.journal.clone(), source });
    }
    let mut summary = summary.into_inner().unwrap_or_else(|p| p.into_inner());
    summary.failures.sort_by_key(|f| f.row);
    summary.wall_seconds = started.elapsed().as_secs_f64();
    summary.real_time_factor =
        if summary.audio_seconds > 0.0 { summary.wall_seconds / summary.audio_seconds } else { 0.0 };
    log.write(&LogLine::End {
        done: summary.done,
        skipped: summary.skipped,
        failed: summary.failed,
        wall_seconds: summary.wall_seconds,
    });
    Ok(summary)
}

/// A run killed mid-write leaves temporary files (`.NAME.RANDOM.partial`) beside its outputs; the next run on the
/// manifest clears those of its own outputs, once per folder (called under the batch lock, so they are no other
/// live run's).
fn remove_stale_partials(jobs: &[Job]) {
    let mut by_folder: HashMap<PathBuf, std::collections::HashSet<String>> = HashMap::new();
    for job in jobs {
        if let Some(name) = job.output.file_name() {
            by_folder
                .entry(crate::durable::folder_of(&job.output))
                .or_default()
                .insert(name.to_string_lossy().into_owned());
        }
    }
    for (folder, names) in by_folder {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(middle) = file.strip_prefix('.').and_then(|f| f.strip_suffix(".partial")) else { continue };
            // `.NAME.RANDOM.partial`: NAME is everything before the last dot.
            if middle.rsplit_once('.').is_some_and(|(name, _)| names.contains(name)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Merge shard journals into one report: every output once, with its checksum and where it came from.
pub fn merge_journals(paths: &[PathBuf]) -> (BTreeMap<String, JournalEntry>, Vec<String>) {
    let mut merged = BTreeMap::new();
    let mut duplicates = Vec::new();
    for path in paths {
        for entry in read_journal(path) {
            if merged.insert(entry.output.clone(), entry.clone()).is_some() {
                duplicates.push(entry.output);
            }
        }
    }
    (merged, duplicates)
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(name: &str, content: &[u8]) -> (tempfile::TempDir, Result<Manifest>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let manifest = Manifest::load(&path);
        (dir, manifest)
    }

    #[test]
    fn the_old_tools_csv_reads_with_its_speaker_column() {
        let (dir, m) = load(
            "jobs.csv",
            b"\xef\xbb\xbfreference,text,output,language,speaker\r\n,\"Hello, world\",out/a.wav,en,3\r\n,\"Two\nlines\",b.wav,,\r\n",
        );
        let m = m.unwrap();
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        assert_eq!(m.jobs[0].text, "Hello, world");
        assert_eq!(m.jobs[0].speaker.as_deref(), Some("3"));
        assert_eq!(m.jobs[0].output, dir.path().join("out/a.wav"));
        assert_eq!(m.jobs[1].text, "Two\nlines");
    }

    #[test]
    fn every_bad_row_is_reported_with_its_number() {
        let (_dir, m) = load(
            "jobs.csv",
            b"text,output,reference\nfine,a.wav,\n,b.wav,\nno output,,\nbad \xff bytes,c.wav,\nref,d.wav,missing.wav\ndup,a.wav,\n",
        );
        let m = m.unwrap();
        let rows: Vec<(usize, Option<&str>)> = m.errors.iter().map(|e| (e.row, e.column.as_deref())).collect();
        assert_eq!(
            rows,
            vec![
                (1, Some("output")),
                (2, Some("text")),
                (3, Some("output")),
                (4, Some("text")),
                (5, Some("reference")),
                (6, Some("output"))
            ]
        );
        assert!(m.jobs.is_empty(), "both rows writing a.wav are invalid");
    }

    #[test]
    fn a_csv_without_required_columns_is_refused() {
        let (_dir, m) = load("jobs.csv", b"words,file\nhello,a.wav\n");
        assert!(m.unwrap_err().to_string().contains("`text` column"));
    }

    #[test]
    fn jsonl_yaml_and_text_manifests() {
        let (_dir, m) = load(
            "jobs.jsonl",
            b"{\"text\": \"Hi.\", \"output_file\": \"a.wav\", \"speaker_id\": 2}\n\n{\"text\": \"\"}\n",
        );
        let m = m.unwrap();
        assert_eq!(m.jobs[0].speaker.as_deref(), Some("2"));
        assert_eq!(m.errors[0].row, 3);
        let (_dir, m) = load("jobs.yaml", b"defaults:\n  length_scale: 1.2\njobs:\n  - text: One.\n    output: one.wav\n  - text: Two.\n    output: two.wav\n    length_scale: 0.9\n");
        let m = m.unwrap();
        assert_eq!((m.jobs[0].length_scale, m.jobs[1].length_scale), (Some(1.2), Some(0.9)));
        let (_dir, m) = load("chapter.txt", b"First line.\n\nSecond line.\n");
        let m = m.unwrap();
        let outputs: Vec<&str> = m.jobs.iter().map(|j| j.output_as_written.as_str()).collect();
        assert_eq!(outputs, ["chapter-0001.wav", "chapter-0003.wav"]);
    }

    #[test]
    fn shards_cover_every_job_exactly_once() {
        let jobs: Vec<Job> = (0..200)
            .map(|i| Job {
                row: i + 1,
                text: "x".into(),
                output: PathBuf::from(format!("{i}.wav")),
                output_as_written: format!("{i}.wav"),
                reference: None,
                voice: None,
                speaker: None,
                language: None,
                preset: None,
                profile: None,
                engine: None,
                model: None,
                length_scale: None,
                noise_scale: None,
                noise_w: None,
            })
            .collect();
        let mut seen = vec![0; 200];
        for k in 0..4 {
            let shard: Shard = format!("{k}/4").parse().unwrap();
            for job in jobs.iter().filter(|j| shard.contains(j)) {
                seen[job.row - 1] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
        assert!("4/4".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
        // The published FNV-1a 64 test vector: shard assignment must never change between versions.
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_run_writes_a_progress_log_that_another_reader_follows() {
        let (dir, m) = load("lines.txt", b"one\ntwo\nthree\n");
        let m = m.unwrap();
        let journal = journal_path(&dir.path().join("lines.txt"), None, None);
        let log = events_path(&journal);
        assert_eq!(log.file_name().unwrap(), ".lines.txt.events.jsonl");
        let options = RunOptions::sequential(journal);
        let work = |job: &Job, _: Option<Instant>| {
            if job.row == 2 {
                return Err(Error::Setting { key: "voice".into(), problem: "not installed".into() });
            }
            std::fs::write(&job.output, b"x").unwrap();
            Ok(1.5)
        };
        let mut reader = EventLogReader::new(log.clone());
        run(&m.jobs, &options, &work, &|_| {}).unwrap();
        let lines = reader.poll().unwrap().unwrap();
        assert!(matches!(lines[0], LogLine::Run { jobs: 3, pid, .. } if pid == std::process::id()), "{lines:?}");
        assert!(matches!(&lines[1], LogLine::Job(Event::Started { row: 1, .. })));
        assert!(
            matches!(&lines[2], LogLine::Job(Event::Finished { row: 1, audio_seconds, .. }) if *audio_seconds == 1.5)
        );
        assert!(
            matches!(&lines[4], LogLine::Job(Event::Failed { row: 2, error, .. }) if error.contains("not installed"))
        );
        assert!(matches!(lines.last(), Some(LogLine::End { done: 2, skipped: 0, failed: 1, .. })), "{lines:?}");
        assert_eq!(reader.poll().unwrap().unwrap(), Vec::new(), "nothing new");
        // A half-written line waits; a rewritten (shorter) log starts over.
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        write!(file, "{{\"event\":\"started\",\"row\":9,").unwrap();
        assert_eq!(reader.poll().unwrap().unwrap(), Vec::new());
        writeln!(file, "\"output\":\"x.wav\"}}").unwrap();
        assert_eq!(
            reader.poll().unwrap().unwrap(),
            vec![LogLine::Job(Event::Started { row: 9, output: "x.wav".into() })]
        );
        std::fs::write(&log, "{\"event\":\"run\",\"pid\":1,\"jobs\":1,\"started_unix\":0}\n").unwrap();
        assert_eq!(reader.poll().unwrap().unwrap(), vec![LogLine::Run { pid: 1, jobs: 1, started_unix: 0.0 }]);
        assert!(EventLogReader::new(dir.path().join("absent")).poll().unwrap().is_none());
    }

    #[test]
    fn cancelling_leaves_the_jobs_not_yet_started() {
        let (dir, m) = load("lines.txt", b"one\ntwo\nthree\nfour\n");
        let m = m.unwrap();
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        let options =
            RunOptions { cancel: Some(cancel.clone()), ..RunOptions::sequential(dir.path().join("journal.jsonl")) };
        let ran = AtomicUsize::new(0);
        let work = |job: &Job, _: Option<Instant>| {
            ran.fetch_add(1, Ordering::Relaxed);
            std::fs::write(&job.output, b"x").unwrap();
            Ok(1.0)
        };
        // The user cancels while the second job runs.
        let events = |event: Event| {
            if let Event::Started { row: 2, .. } = event {
                cancel.store(true, Ordering::Relaxed);
            }
        };
        let summary = run(&m.jobs, &options, &work, &events).unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), 2, "the running job finishes, no new one starts");
        assert_eq!((summary.done, summary.total), (2, 4));
    }

    fn write_x(job: &Job, _: Option<Instant>) -> Result<f64> {
        std::fs::write(&job.output, b"x").unwrap();
        Ok(1.0)
    }

    #[test]
    fn a_second_run_on_the_same_manifest_is_refused_with_the_first_ones_pid() {
        let (dir, m) = load("lines.txt", b"one\ntwo\n");
        let m = m.unwrap();
        let journal = journal_path(&dir.path().join("lines.txt"), None, None);
        let _held = BatchLock::acquire(&journal).unwrap();
        let err = run(&m.jobs, &RunOptions::sequential(journal.clone()), &write_x, &|_| {}).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::BatchLocked { .. }), "{text}");
        assert!(text.contains("already running") && text.contains(&format!("pid {}", std::process::id())), "{text}");
        assert!(!m.jobs[0].output.exists(), "the refused run did nothing");
        drop(_held);
        assert_eq!(run(&m.jobs, &RunOptions::sequential(journal), &write_x, &|_| {}).unwrap().done, 2);
    }

    #[test]
    fn a_torn_journal_line_is_repaired_and_does_not_swallow_the_next_entry() {
        let (dir, m) = load("lines.txt", b"one\ntwo\nthree\n");
        let m = m.unwrap();
        let journal = journal_path(&dir.path().join("lines.txt"), None, None);
        let options = RunOptions::sequential(journal.clone());
        run(&m.jobs[..1], &options, &write_x, &|_| {}).unwrap();
        // A crash in the middle of the second entry's line.
        let mut file = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
        file.write_all(br#"{"output":"two.wav","sha2"#).unwrap();
        drop(file);
        run(&m.jobs, &options, &write_x, &|_| {}).unwrap();
        let text = std::fs::read_to_string(&journal).unwrap();
        assert!(text.lines().all(|l| serde_json::from_str::<JournalEntry>(l).is_ok()), "{text}");
        assert_eq!(read_journal(&journal).len(), 3, "{text}");
    }

    #[test]
    fn journal_and_progress_log_are_never_written_through_a_planted_symlink() {
        let (dir, m) = load("lines.txt", b"one\n");
        let m = m.unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let journal = journal_path(&dir.path().join("lines.txt"), None, None);
        std::os::unix::fs::symlink(&victim, events_path(&journal)).unwrap();
        run(&m.jobs, &RunOptions::sequential(journal.clone()), &write_x, &|_| {}).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        std::fs::remove_file(&journal).unwrap();
        std::os::unix::fs::symlink(&victim, &journal).unwrap();
        assert!(run(&m.jobs, &RunOptions::sequential(journal), &write_x, &|_| {}).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_killed_runs_temporary_files_are_swept_once_and_others_are_kept() {
        let (dir, m) = load("lines.txt", b"one\n");
        let m = m.unwrap();
        let stale =
            dir.path().join(format!(".{}.Ab12Cd34.partial", m.jobs[0].output.file_name().unwrap().to_string_lossy()));
        let unrelated = dir.path().join(".other.wav.Ab12Cd34.partial");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&unrelated, b"half").unwrap();
        let journal = journal_path(&dir.path().join("lines.txt"), None, None);
        run(&m.jobs, &RunOptions::sequential(journal), &write_x, &|_| {}).unwrap();
        assert!(!stale.exists() && unrelated.exists());
    }
}
