//! Batch synthesis: manifests (the old tool's CSV, JSON lines, YAML, plain text), validation of every row up
//! front, a parallel runner sharing one loaded voice per voice, atomic outputs, a journal for resuming after a
//! crash, and deterministic sharding for cluster job arrays.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One job: a row of the manifest, validated, paths resolved against the manifest's folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// 1-based row number (CSV: data rows after the header; JSONL/text: lines; YAML: entries).
    pub row: usize,
    pub text: String,
    pub output: PathBuf,
    /// As written in the manifest (the job's identity for sharding and the journal).
    pub output_as_written: String,
    /// A reference recording: this is a clone job (speech, then conversion toward its profile).
    pub reference: Option<PathBuf>,
    pub voice: Option<String>,
    pub speaker: Option<String>,
    pub language: Option<String>,
    pub preset: Option<String>,
    /// A voice profile (by name) to convert toward.
    pub profile: Option<String>,
    /// Converter engine for the conversion (`dsp`, `passthrough`).
    pub engine: Option<String>,
    pub length_scale: Option<f32>,
    pub noise_scale: Option<f32>,
    pub noise_w: Option<f32>,
}

/// A problem with one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub row: usize,
    /// The column (or key) at fault, when there is one.
    pub column: Option<String>,
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

/// Raw fields of a row before checking (all formats end up here).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "output_file")]
    output: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    speaker: Option<serde_json::Value>,
    #[serde(default)]
    speaker_id: Option<serde_json::Value>,
    #[serde(default)]
    voice: Option<String>,
    #[serde(default)]
    preset: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    length_scale: Option<f32>,
    #[serde(default)]
    noise_scale: Option<f32>,
    #[serde(default)]
    noise_w: Option<f32>,
}

/// Columns a CSV manifest may have.
const CSV_COLUMNS: &[&str] = &[
    "reference",
    "text",
    "output",
    "language",
    "speaker",
    "voice",
    "preset",
    "profile",
    "engine",
    "length_scale",
    "noise_scale",
    "noise_w",
];

/// A loaded manifest: valid jobs and the rows that are not.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub path: PathBuf,
    pub jobs: Vec<Job>,
    pub errors: Vec<RowError>,
}

fn manifest_error(path: &Path, problem: impl Into<String>) -> Error {
    Error::Dataset { path: path.to_path_buf(), line: None, problem: problem.into() }
}

impl Manifest {
    /// Read and validate every row. File-level problems (unreadable, wrong header) are errors; row problems are
    /// collected in `errors`.
    pub fn load(path: &Path) -> Result<Manifest> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let raw: Vec<(usize, std::result::Result<RawRow, RowError>)> = match ext.as_str() {
            "csv" => parse_csv(path, &bytes)?,
            "jsonl" | "ndjson" => parse_jsonl(&bytes),
            "yaml" | "yml" => parse_yaml(path, &bytes)?,
            "txt" | "text" => parse_text(path, &bytes),
            other => {
                return Err(manifest_error(
                    path,
                    format!("unknown manifest type `.{other}`: use .csv, .jsonl, .yaml or .txt"),
                ))
            }
        };
        let mut manifest = Manifest { path: path.to_path_buf(), ..Default::default() };
        for (row, parsed) in raw {
            match parsed.and_then(|r| validate_row(row, r, &base)) {
                Ok(job) => manifest.jobs.push(job),
                Err(e) => manifest.errors.push(e),
            }
        }
        // Two jobs writing one file would race and overwrite: both are invalid.
        let mut by_output: HashMap<PathBuf, Vec<usize>> = HashMap::new();
        for job in &manifest.jobs {
            by_output.entry(job.output.clone()).or_default().push(job.row);
        }
        let duplicated: HashSet<usize> = by_output.values().filter(|rows| rows.len() > 1).flatten().copied().collect();
        if !duplicated.is_empty() {
            for job in manifest.jobs.iter().filter(|j| duplicated.contains(&j.row)) {
                let others: Vec<String> =
                    by_output[&job.output].iter().filter(|r| **r != job.row).map(|r| r.to_string()).collect();
                manifest.errors.push(RowError {
                    row: job.row,
                    column: Some("output".into()),
                    problem: format!("{} is also written by row {}", job.output.display(), others.join(", ")),
                });
            }
            manifest.jobs.retain(|j| !duplicated.contains(&j.row));
        }
        manifest.errors.sort_by_key(|e| e.row);
        Ok(manifest)
    }
}

fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, std::result::Result<RawRow, RowError>)>> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader.byte_headers().map_err(|e| manifest_error(path, format!("unreadable header: {e}")))?.clone();
    let columns: Vec<String> = header.iter().map(|h| String::from_utf8_lossy(h).trim().to_lowercase()).collect();
    for required in ["text", "output"] {
        if !columns.iter().any(|c| c == required) {
            return Err(manifest_error(
                path,
                format!("the header has no `{required}` column (the old tool's header is reference,text,output,language,speaker)"),
            ));
        }
    }
    if let Some(unknown) = columns.iter().find(|c| !CSV_COLUMNS.contains(&c.as_str())) {
        return Err(manifest_error(path, format!("unknown column `{unknown}` (known: {})", CSV_COLUMNS.join(", "))));
    }
    let mut rows = Vec::new();
    for (idx, record) in reader.byte_records().enumerate() {
        let row = idx + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rows.push((row, Err(RowError { row, column: None, problem: format!("unreadable: {e}") })));
                continue;
            }
        };
        let mut raw = RawRow::default();
        let mut problem = None;
        for (column, value) in columns.iter().zip(record.iter()) {
            let Ok(value) = std::str::from_utf8(value) else {
                problem = Some(RowError { row, column: Some(column.clone()), problem: "is not UTF-8".into() });
                break;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let number = |v: &str| v.parse::<f32>().ok();
            match column.as_str() {
                "reference" => raw.reference = Some(value.into()),
                "text" => raw.text = Some(value.into()),
                "output" => raw.output = Some(value.into()),
                "language" => raw.language = Some(value.into()),
                "speaker" => raw.speaker = Some(serde_json::Value::String(value.into())),
                "voice" => raw.voice = Some(value.into()),
                "preset" => raw.preset = Some(value.into()),
                "profile" => raw.profile = Some(value.into()),
                "engine" => raw.engine = Some(value.into()),
                scale => {
                    let Some(v) = number(value) else {
                        problem = Some(RowError {
                            row,
                            column: Some(scale.into()),
                            problem: format!("`{value}` is not a number"),
                        });
                        break;
                    };
                    match scale {
                        "length_scale" => raw.length_scale = Some(v),
                        "noise_scale" => raw.noise_scale = Some(v),
                        _ => raw.noise_w = Some(v),
                    }
                }
            }
        }
        if record.len() > columns.len() {
            problem.get_or_insert(RowError {
                row,
                column: None,
                problem: format!("has {} fields, the header {}", record.len(), columns.len()),
            });
        }
        rows.push((row, problem.map_or(Ok(raw), Err)));
    }
    Ok(rows)
}

/// The non-blank lines of a line-based manifest with their 1-based numbers (BOM and CR line ends removed).
fn nonblank_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(idx, line)| (idx + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
}

fn parse_jsonl(bytes: &[u8]) -> Vec<(usize, std::result::Result<RawRow, RowError>)> {
    let mut rows = Vec::new();
    for (row, line) in nonblank_lines(bytes) {
        let parsed = std::str::from_utf8(line)
            .map_err(|_| RowError { row, column: None, problem: "is not UTF-8".into() })
            .and_then(|text| {
                serde_json::from_str::<RawRow>(text).map_err(|e| RowError {
                    row,
                    column: None,
                    problem: format!("invalid JSON: {e}"),
                })
            });
        rows.push((row, parsed));
    }
    rows
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlManifest {
    #[serde(default)]
    defaults: serde_json::Map<String, serde_json::Value>,
    jobs: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn parse_yaml(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, std::result::Result<RawRow, RowError>)>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| manifest_error(path, format!("is not UTF-8 (offset {})", e.valid_up_to())))?;
    let manifest: YamlManifest = serde_saphyr::from_str(text)
        .map_err(|e| manifest_error(path, e.to_string().lines().next().unwrap_or("invalid YAML").to_string()))?;
    Ok(manifest
        .jobs
        .into_iter()
        .enumerate()
        .map(|(idx, job)| {
            let row = idx + 1;
            let mut merged = manifest.defaults.clone();
            merged.extend(job);
            let parsed = serde_json::from_value::<RawRow>(serde_json::Value::Object(merged)).map_err(|e| RowError {
                row,
                column: None,
                problem: e.to_string(),
            });
            (row, parsed)
        })
        .collect())
}

/// Plain text: one job per non-empty line, outputs numbered beside the manifest (`NAME-0001.wav`).
fn parse_text(path: &Path, bytes: &[u8]) -> Vec<(usize, std::result::Result<RawRow, RowError>)> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "line".into());
    let mut rows = Vec::new();
    for (row, line) in nonblank_lines(bytes) {
        let parsed = std::str::from_utf8(line)
            .map_err(|_| RowError { row, column: None, problem: "is not UTF-8".into() })
            .map(|text| RawRow {
                text: Some(text.trim().to_string()),
                output: Some(format!("{stem}-{row:04}.wav")),
                ..Default::default()
            });
        rows.push((row, parsed));
    }
    rows
}

fn validate_row(row: usize, raw: RawRow, base: &Path) -> std::result::Result<Job, RowError> {
    let err = |column: &str, problem: String| RowError { row, column: Some(column.into()), problem };
    let text = raw.text.filter(|t| !t.trim().is_empty()).ok_or_else(|| err("text", "is empty".into()))?;
    let output_as_written =
        raw.output.filter(|o| !o.trim().is_empty()).ok_or_else(|| err("output", "is empty".into()))?;
    if !output_as_written.to_ascii_lowercase().ends_with(".wav") {
        return Err(err("output", format!("`{output_as_written}` must end in .wav")));
    }
    let resolve = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let reference = raw.reference.map(|r| resolve(&r));
    if let Some(reference) = &reference {
        if !reference.is_file() {
            return Err(err("reference", format!("{} does not exist", reference.display())));
        }
    }
    if let Some(engine) = &raw.engine {
        if !crate::convert::ENGINE_NAMES.contains(&engine.as_str()) {
            return Err(err("engine", format!("`{engine}` is not one of {}", crate::convert::ENGINE_NAMES.join(", "))));
        }
    }
    let speaker = match (raw.speaker, raw.speaker_id) {
        (Some(serde_json::Value::String(s)), _) => Some(s),
        (Some(other), _) | (None, Some(other)) => Some(other.to_string().trim_matches('"').to_string()),
        (None, None) => None,
    };
    for (column, value, lo, hi) in [
        ("length_scale", raw.length_scale, 0.05, 20.0),
        ("noise_scale", raw.noise_scale, 0.0, 5.0),
        ("noise_w", raw.noise_w, 0.0, 5.0),
    ] {
        if let Some(v) = value {
            if !(lo..=hi).contains(&v) {
                return Err(err(column, format!("{v} is outside {lo}..{hi}")));
            }
        }
    }
    Ok(Job {
        row,
        text,
        output: resolve(&output_as_written),
        output_as_written,
        reference,
        voice: raw.voice,
        speaker,
        language: raw.language,
        preset: raw.preset,
        profile: raw.profile,
        engine: raw.engine,
        length_scale: raw.length_scale,
        noise_scale: raw.noise_scale,
        noise_w: raw.noise_w,
    })
}

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
    pub index: u64,
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
    pub fn contains(&self, job: &Job) -> bool {
        stable_hash(&job.output_as_written) % self.count == self.index
    }
}

/// One journal line: a finished job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub output: String,
    pub sha256: String,
    pub audio_seconds: f64,
    pub row: usize,
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

/// Finished jobs from a journal (a torn last line from a crash is ignored).
pub fn read_journal(path: &Path) -> Vec<JournalEntry> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_default()
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// What a runner reports as it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started { row: usize, output: String },
    Finished { row: usize, output: String, audio_seconds: f64, seconds: f64 },
    Skipped { row: usize, output: String, reason: String },
    Failed { row: usize, output: String, error: String },
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
        pid: u32,
        jobs: usize,
        started_unix: f64,
    },
    Job(Event),
    /// The run ended.
    End {
        done: usize,
        skipped: usize,
        failed: usize,
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
struct EventLog(Option<Mutex<std::fs::File>>);

impl EventLog {
    fn create(path: &Path, jobs: usize) -> EventLog {
        let file = std::fs::File::create(path).ok().map(Mutex::new);
        if file.is_none() {
            tracing::warn!("cannot write the progress log {}; the run goes on without it", path.display());
        }
        let log = EventLog(file);
        let started_unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        log.write(&LogLine::Run { pid: std::process::id(), jobs, started_unix });
        log
    }

    fn write(&self, line: &LogLine) {
        if let Some(file) = &self.0 {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(file, "{}", line.to_json());
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
    pub fn new(path: PathBuf) -> EventLogReader {
        EventLogReader { path, offset: 0, partial: String::new() }
    }

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

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub jobs: usize,
    pub fail_fast: bool,
    pub timeout: Option<Duration>,
    pub force: bool,
    pub overwrite: bool,
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
    pub total: usize,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub invalid: usize,
    pub failures: Vec<RowError>,
    pub audio_seconds: f64,
    pub wall_seconds: f64,
    pub real_time_factor: f64,
}

/// Does one job: writes `job.output` (atomically) and returns the audio seconds. `deadline` is when the job's
/// timeout expires; the worker checks it between sentences.
pub type JobFn<'a> = dyn Fn(&Job, Option<Instant>) -> Result<f64> + Sync + 'a;

/// Run `jobs` with `options.jobs` workers. Jobs already in the journal (with the same output checksum) are
/// skipped unless `force`; existing outputs the journal does not know are left alone unless `overwrite`.
pub fn run(jobs: &[Job], options: &RunOptions, work: &JobFn<'_>, events: &(dyn Fn(Event) + Sync)) -> Result<Summary> {
    let started = Instant::now();
    let journal_entries = if options.force { Vec::new() } else { read_journal(&options.journal) };
    let finished: HashMap<&str, &JournalEntry> = journal_entries.iter().map(|e| (e.output.as_str(), e)).collect();
    if let Some(parent) = options.journal.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
    }
    let journal = Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.journal)
            .map_err(|source| Error::Write { path: options.journal.clone(), source })?,
    );
    let log = EventLog::create(&events_path(&options.journal), jobs.len());
    let events = |event: Event| {
        log.write(&LogLine::Job(event.clone()));
        events(event);
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let summary = Mutex::new(Summary { total: jobs.len(), ..Default::default() });
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) || options.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                    break;
                }
                let idx = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(idx) else { break };
                let output = job.output_as_written.clone();
                let known = finished
                    .get(output.as_str())
                    .filter(|entry| sha256_file(&job.output).map(|sum| sum == entry.sha256).unwrap_or(false));
                if known.is_some() {
                    summary.lock().unwrap_or_else(|p| p.into_inner()).skipped += 1;
                    events(Event::Skipped { row: job.row, output, reason: "already done (journal)".into() });
                    continue;
                }
                if job.output.exists() && !options.overwrite && !finished.contains_key(output.as_str()) {
                    summary.lock().unwrap_or_else(|p| p.into_inner()).skipped += 1;
                    events(Event::Skipped {
                        row: job.row,
                        output,
                        reason: "exists and the journal does not know it (use --overwrite)".into(),
                    });
                    continue;
                }
                events(Event::Started { row: job.row, output: output.clone() });
                let job_started = Instant::now();
                let deadline = options.timeout.map(|t| job_started + t);
                match work(job, deadline) {
                    Ok(audio_seconds) => {
                        let entry = JournalEntry {
                            output: output.clone(),
                            sha256: sha256_file(&job.output).unwrap_or_default(),
                            audio_seconds,
                            row: job.row,
                        };
                        {
                            let mut file = journal.lock().unwrap_or_else(|p| p.into_inner());
                            let line = serde_json::to_string(&entry).unwrap_or_default();
                            let _ = writeln!(file, "{line}").and_then(|()| file.sync_data());
                        }
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
        }
    });
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

/// Used by the runner's callers to give one loaded voice per voice to every worker.
pub type Shared<T> = Arc<T>;

#[cfg(test)]
mod tests {
    use super::*;

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
}
