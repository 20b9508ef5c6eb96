//! Sharding, the journal of finished outputs, and the progress log another process can follow.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Job;

/// FNV-1a: stable across runs, machines and Rust versions (the shard of a row must never change).
pub fn stable_hash(text: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// `K/N`: this process runs the jobs whose identity hashes to K (0-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: u64,
    /// How many shards there are.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, n) = s.split_once('/').ok_or_else(|| format!("`{s}` is not K/N"))?;
        let index: u64 = k.trim().parse().map_err(|_| format!("`{k}` is not a number"))?;
        let count: u64 = n.trim().parse().map_err(|_| format!("`{n}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: K must be 0..N-1 and N at least 1"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// True when `job` belongs to this shard.
    pub fn contains(&self, job: &Job) -> bool {
        stable_hash(&job.output_as_written) % self.count == self.index
    }
}

/// One journal line: a finished job, or (`pending`) one a run has begun and whose output it may write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The output as written in the manifest.
    pub output: String,
    /// SHA-256 of the finished file, hex.
    pub sha256: String,
    /// Seconds of audio in it.
    pub audio_seconds: f64,
    /// The manifest row.
    pub row: usize,
    /// Begun, not (yet) finished: a crash between writing the output and journaling it leaves this line, which
    /// tells the next run the output is its own to redo (not a stranger's file to leave alone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// Where the journal for `manifest` lives: beside it, or in `state_dir`.
pub fn journal_path(manifest: &Path, state_dir: Option<&Path>, shard: Option<Shard>) -> PathBuf {
    let name = manifest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "manifest".into());
    let name = match shard {
        Some(s) => format!("{name}.shard-{}-of-{}.journal.jsonl", s.index, s.count),
        None => format!("{name}.journal.jsonl"),
    };
    match state_dir {
        Some(dir) => dir.join(name),
        None => manifest.parent().unwrap_or(Path::new(".")).join(format!(".{name}")),
    }
}

/// Every line of a journal, begun jobs included (a torn last line from a crash is ignored).
fn read_journal_lines(path: &Path) -> Vec<JournalEntry> {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(path) else { return Vec::new() };
    std::io::BufReader::new(file).lines().map_while(|l| l.ok()).filter_map(|l| serde_json::from_str(&l).ok()).collect()
}

/// Finished jobs from a journal.
pub fn read_journal(path: &Path) -> Vec<JournalEntry> {
    read_journal_lines(path).into_iter().filter(|entry| !entry.pending).collect()
}

/// Outputs a run of this journal began or finished: an existing one of these is the runner's to redo.
pub fn journal_claims(path: &Path) -> std::collections::HashSet<String> {
    read_journal_lines(path).into_iter().map(|entry| entry.output).collect()
}

/// What a runner reports as it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A job began.
    Started {
        /// The manifest row.
        row: usize,
        /// The output as written in the manifest.
        output: String,
    },
    /// A job wrote its output.
    Finished {
        /// The manifest row.
        row: usize,
        /// The output as written in the manifest.
        output: String,
        /// Seconds of audio written.
        audio_seconds: f64,
        /// Seconds the job took.
        seconds: f64,
    },
    /// A job was left alone (done already, or an output the journal does not know).
    Skipped {
        /// The manifest row.
        row: usize,
        /// The output as written in the manifest.
        output: String,
        /// Why it was skipped.
        reason: String,
    },
    /// A job failed; its output is absent.
    Failed {
        /// The manifest row.
        row: usize,
        /// The output as written in the manifest.
        output: String,
        /// What went wrong.
        error: String,
    },
}

/// Where a run's progress log lives: beside its journal (`.NAME.events.jsonl` for `.NAME.journal.jsonl`).
///
/// Every run rewrites it: a `run` line (process id, job count, start time), then one line per [`Event`] as it
/// happens, then an `end` line. Another process (the terminal app's Batch screen, `tail -f`) can watch a run
/// through it.
pub fn events_path(journal: &Path) -> PathBuf {
    let name = journal.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let base = name.strip_suffix(".journal.jsonl").unwrap_or(&name);
    journal.with_file_name(format!("{base}.events.jsonl"))
}

/// One line of a progress log.
#[derive(Debug, Clone, PartialEq)]
pub enum LogLine {
    /// A run started: its process, how many jobs it has, when (seconds since the Unix epoch).
    Run {
        /// The running process.
        pid: u32,
        /// Jobs in the run.
        jobs: usize,
        /// When it started, seconds since the Unix epoch.
        started_unix: f64,
    },
    /// Something happened to a job.
    Job(Event),
    /// The run ended.
    End {
        /// Jobs done.
        done: usize,
        /// Jobs already done or left alone.
        skipped: usize,
        /// Jobs that failed.
        failed: usize,
        /// Seconds the run took.
        wall_seconds: f64,
    },
}

impl LogLine {
    fn to_json(&self) -> String {
        let value = match self {
            LogLine::Run { pid, jobs, started_unix } => {
                serde_json::json!({"event": "run", "pid": pid, "jobs": jobs, "started_unix": started_unix})
            }
            LogLine::Job(event) => serde_json::to_value(event).unwrap_or_default(),
            LogLine::End { done, skipped, failed, wall_seconds } => serde_json::json!({
                "event": "end", "done": done, "skipped": skipped, "failed": failed, "wall_seconds": wall_seconds
            }),
        };
        value.to_string()
    }

    /// One line back; None for a line that is not one (torn, or from a newer version).
    pub fn parse(line: &str) -> Option<LogLine> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let number = |key: &str| value.get(key).and_then(serde_json::Value::as_f64);
        let count = |key: &str| number(key).map(|n| n as usize);
        match value.get("event")?.as_str()? {
            "run" => Some(LogLine::Run {
                pid: count("pid")? as u32,
                jobs: count("jobs")?,
                started_unix: number("started_unix")?,
            }),
            "end" => Some(LogLine::End {
                done: count("done")?,
                skipped: count("skipped")?,
                failed: count("failed")?,
                wall_seconds: number("wall_seconds")?,
            }),
            _ => serde_json::from_value(value).ok().map(LogLine::Job),
        }
    }
}

/// The writing end of a progress log. Writing is best effort: a run never fails because its log could not be
/// written.
pub(super) struct EventLog(Option<Mutex<std::fs::File>>);

impl EventLog {
    pub(super) fn create(path: &Path, jobs: usize) -> EventLog {
        // Recreated, never written through a symlink planted in its place.
        let file = crate::durable::create_fresh(path).ok().map(Mutex::new);
        if file.is_none() {
            tracing::warn!("cannot write the progress log {}; the run goes on without it", path.display());
        }
        let log = EventLog(file);
        let started_unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        log.write(&LogLine::Run { pid: std::process::id(), jobs, started_unix });
        log
    }

    pub(super) fn write(&self, line: &LogLine) {
        if let Some(file) = &self.0 {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            let _ = file.write_all(format!("{}\n", line.to_json()).as_bytes());
        }
    }
}

/// The reading end of a progress log: each [`EventLogReader::poll`] returns the lines added since the last one.
/// A log that shrank was rewritten by a new run: reading starts over.
#[derive(Debug)]
pub struct EventLogReader {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl EventLogReader {
    /// A reader of the log at `path`, from its start.
    pub fn new(path: PathBuf) -> EventLogReader {
        EventLogReader { path, offset: 0, partial: String::new() }
    }

    /// The log being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// New complete lines (an unfinished last line waits for the next poll). Ok(None) while the log does not exist.
    pub fn poll(&mut self) -> std::io::Result<Option<Vec<LogLine>>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut added = Vec::new();
        file.read_to_end(&mut added)?;
        self.offset += added.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&added));
        let mut lines = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            lines.extend(LogLine::parse(line.trim_end()));
        }
        Ok(Some(lines))
    }
}

/// An exclusive lock on a batch (its journal): a second run on the same manifest (or state dir and shard) is
/// refused while the first holds it. Released when dropped (or when the process dies: it is an `flock`).
#[derive(Debug)]
pub struct BatchLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl BatchLock {
    /// Take the lock beside `journal` (`JOURNAL.lock`), or say who holds it.
    pub fn acquire(journal: &Path) -> crate::error::Result<BatchLock> {
        use std::io::{Read, Seek};
        use std::os::fd::AsRawFd;
        let path = journal.with_extension("lock");
        let write_error = |source| crate::error::Error::Write { path: path.clone(), source };
        let mut file = crate::durable::open_read_write(&path).map_err(write_error)?;
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(write_error(error));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let pid = holder.trim().to_string();
            return Err(crate::error::Error::BatchLocked {
                journal: journal.to_path_buf(),
                lock: path,
                pid: if pid.is_empty() { "unknown".into() } else { pid },
            });
        }
        file.set_len(0).and_then(|()| file.rewind()).map_err(write_error)?;
        writeln!(file, "{}", std::process::id()).map_err(write_error)?;
        Ok(BatchLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The journal's writing end. Each entry is one `write_all` of a whole line (a crash cannot interleave half of
/// one with the next), synced every [`JournalWriter::SYNC_EVERY`] entries and when dropped.
pub(super) struct JournalWriter {
    file: std::fs::File,
    unsynced: usize,
}

impl JournalWriter {
    /// Entries written between syncs.
    pub(super) const SYNC_EVERY: usize = 16;

    /// Open `path` for appending (never through a symlink), first cutting off a torn last line a crash left, so
    /// the next entry starts on a line of its own.
    pub(super) fn open(path: &Path) -> crate::error::Result<JournalWriter> {
        let write_error = |source| crate::error::Error::Write { path: path.to_path_buf(), source };
        repair_torn_tail(path).map_err(write_error)?;
        let file = crate::durable::open_append(path).map_err(write_error)?;
        Ok(JournalWriter { file, unsynced: 0 })
    }

    /// Append one entry (best effort: a journal that cannot be written costs a redo, never the output).
    pub(super) fn append(&mut self, entry: &JournalEntry) {
        let mut line = serde_json::to_string(entry).unwrap_or_default();
        line.push('\n');
        if self.file.write_all(line.as_bytes()).is_err() {
            return;
        }
        self.unsynced += 1;
        if self.unsynced >= Self::SYNC_EVERY {
            let _ = self.file.sync_data();
            self.unsynced = 0;
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        if self.unsynced > 0 {
            let _ = self.file.sync_data();
        }
    }
}

/// Cut a journal back to its last complete line.
fn repair_torn_tail(path: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = match std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    // Look back in pieces for the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 4096];
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let piece = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(piece)?;
        if let Some(pos) = piece.iter().rposition(|&b| b == b'\n') {
            let keep = start + pos as u64 + 1;
            if keep < len {
                tracing::warn!("{}: dropped a torn last line a crash left", path.display());
                file.set_len(keep)?;
            }
            return Ok(());
        }
        if start == 0 {
            tracing::warn!("{}: dropped a torn line a crash left", path.display());
            return file.set_len(0);
        }
        end = start;
    }
}
