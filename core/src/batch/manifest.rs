//! Manifests: the old tool's CSV, JSON lines, YAML and plain text, every row validated up front.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Job, RowError};
use crate::error::{Error, Result};

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
    model: Option<String>,
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
    "model",
    "length_scale",
    "noise_scale",
    "noise_w",
];

/// A loaded manifest: valid jobs and the rows that are not.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// The valid rows, as jobs.
    pub jobs: Vec<Job>,
    /// The invalid rows, each with its problem.
    pub errors: Vec<RowError>,
}

/// Where a manifest's paths may point. By default every path a row gives (output, reference, a voice file)
/// resolves inside the manifest's folder (outputs inside `output_dir` when given): a shared or downloaded manifest
/// cannot write, or delete temporary files, anywhere else. Presets and profiles are named, not given as paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathPolicy {
    /// Outputs resolve against this folder instead of the manifest's.
    pub output_dir: Option<PathBuf>,
    /// Allow absolute paths, `..` and path-like preset/profile names (`--allow-outside-paths`).
    pub allow_outside: bool,
}

/// `path` (as a row wrote it) resolved against `base`, or why it may not be used. Lexical: `..` may go down and
/// back up inside `base`, never above it.
fn resolve_inside(base: &Path, written: &str, allow_outside: bool) -> std::result::Result<PathBuf, String> {
    use std::path::Component;
    let path = Path::new(written);
    if allow_outside {
        return Ok(if path.is_absolute() { path.to_path_buf() } else { base.join(path) });
    }
    let folder = if base.as_os_str().is_empty() { Path::new(".") } else { base };
    let outside = || {
        format!(
            "`{written}` points outside {} (the manifest's folder or --output-dir); use a path inside it, or pass \
             --allow-outside-paths",
            folder.display()
        )
    };
    let mut inside = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => inside.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                inside.pop().ok_or_else(outside)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    if inside.is_empty() {
        return Err(format!("`{written}` names no file"));
    }
    Ok(inside.iter().fold(base.to_path_buf(), |acc, part| acc.join(part)))
}

/// The manifest's format from its extension, or the one-line refusal.
fn manifest_type(path: &Path) -> Result<String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if !matches!(ext.as_str(), "csv" | "jsonl" | "ndjson" | "yaml" | "yml" | "txt" | "text") {
        return Err(manifest_error(path, format!("unknown manifest type `.{ext}`: use .csv, .jsonl, .yaml or .txt")));
    }
    Ok(ext)
}

fn manifest_error(path: &Path, problem: impl Into<String>) -> Error {
    Error::Dataset { path: path.to_path_buf(), line: None, problem: problem.into() }
}

impl Manifest {
    /// Read and validate every row. File-level problems (unreadable, wrong header) are errors; row problems are
    /// collected in `errors`.
    pub fn load(path: &Path) -> Result<Manifest> {
        Self::load_with(path, &PathPolicy::default())
    }

    /// [`Manifest::load`] with where the rows' paths may point.
    pub fn load_with(path: &Path, policy: &PathPolicy) -> Result<Manifest> {
        // The type is checked before the file is opened: a wrong one is refused as such, not as unreadable.
        let ext = manifest_type(path)?;
        let file = std::fs::File::open(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        Self::parse(path, &ext, std::io::BufReader::with_capacity(1 << 16, file), policy)
    }

    /// Read and validate rows from `input` as if it were the file `path` (whose extension gives the format and
    /// whose folder the paths resolve against). Rows are read and validated one at a time: the input is never held
    /// whole (YAML excepted: it is one document).
    pub fn from_reader(path: &Path, input: impl std::io::BufRead, policy: &PathPolicy) -> Result<Manifest> {
        Self::parse(path, &manifest_type(path)?, input, policy)
    }

    fn parse(path: &Path, ext: &str, mut input: impl std::io::BufRead, policy: &PathPolicy) -> Result<Manifest> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        skip_bom(&mut input).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let mut manifest = Manifest { path: path.to_path_buf(), ..Default::default() };
        let mut accept = |row: usize, parsed: std::result::Result<RawRow, RowError>| match parsed
            .and_then(|r| validate_row(row, r, &base, policy))
        {
            Ok(job) => manifest.jobs.push(job),
            Err(e) => manifest.errors.push(e),
        };
        match ext {
            "csv" => parse_csv(path, input, &mut accept)?,
            "jsonl" | "ndjson" => parse_jsonl(path, input, &mut accept)?,
            "yaml" | "yml" => parse_yaml(path, input, &mut accept)?,
            _ => parse_text(path, input, &mut accept)?,
        }
        // Two jobs writing one file would race and overwrite: both are invalid. (Rows are looked up by reference:
        // a manifest of millions of rows is not copied again here.)
        let mut first_row: HashMap<&Path, usize> = HashMap::with_capacity(manifest.jobs.len());
        let mut clashes: HashMap<&Path, Vec<usize>> = HashMap::new();
        for job in &manifest.jobs {
            if let Some(first) = first_row.get(job.output.as_path()) {
                clashes.entry(job.output.as_path()).or_insert_with(|| vec![*first]).push(job.row);
            } else {
                first_row.insert(&job.output, job.row);
            }
        }
        drop(first_row);
        let duplicated: HashSet<usize> = clashes.values().flatten().copied().collect();
        let mut clash_errors = Vec::new();
        for job in manifest.jobs.iter().filter(|j| duplicated.contains(&j.row)) {
            let others: Vec<String> =
                clashes[job.output.as_path()].iter().filter(|r| **r != job.row).map(|r| r.to_string()).collect();
            clash_errors.push(RowError {
                row: job.row,
                column: Some("output".into()),
                problem: format!("{} is also written by row {}", job.output.display(), others.join(", ")),
            });
        }
        drop(clashes);
        if !duplicated.is_empty() {
            manifest.errors.extend(clash_errors);
            manifest.jobs.retain(|j| !duplicated.contains(&j.row));
        }
        manifest.errors.sort_by_key(|e| e.row);
        Ok(manifest)
    }
}

/// What each parser hands on: a row number and the row or what is wrong with it.
type Accept<'a> = dyn FnMut(usize, std::result::Result<RawRow, RowError>) + 'a;

/// A UTF-8 byte-order mark at the start is not part of the first row.
fn skip_bom(input: &mut impl std::io::BufRead) -> std::io::Result<()> {
    if input.fill_buf()?.starts_with(b"\xef\xbb\xbf") {
        input.consume(3);
    }
    Ok(())
}

fn parse_csv(path: &Path, input: impl std::io::Read, accept: &mut Accept<'_>) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
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
    for (idx, record) in reader.byte_records().enumerate() {
        let row = idx + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) if e.is_io_error() => return Err(manifest_error(path, format!("cannot read row {row}: {e}"))),
            Err(e) => {
                accept(row, Err(RowError { row, column: None, problem: format!("unreadable: {e}") }));
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
                "model" => raw.model = Some(value.into()),
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
        accept(row, problem.map_or(Ok(raw), Err));
    }
    Ok(())
}

/// Each non-blank line of a line-based manifest with its 1-based number (CR line ends removed), read one at a time.
fn nonblank_lines(path: &Path, input: impl std::io::BufRead, mut each: impl FnMut(usize, &[u8])) -> Result<()> {
    for (idx, line) in input.split(b'\n').enumerate() {
        let line = line.map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if !line.iter().all(u8::is_ascii_whitespace) {
            each(idx + 1, line);
        }
    }
    Ok(())
}

fn parse_jsonl(path: &Path, input: impl std::io::BufRead, accept: &mut Accept<'_>) -> Result<()> {
    nonblank_lines(path, input, |row, line| {
        let parsed = std::str::from_utf8(line)
            .map_err(|_| RowError { row, column: None, problem: "is not UTF-8".into() })
            .and_then(|text| {
                serde_json::from_str::<RawRow>(text).map_err(|e| RowError {
                    row,
                    column: None,
                    problem: format!("invalid JSON: {e}"),
                })
            });
        accept(row, parsed);
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlManifest {
    #[serde(default)]
    defaults: serde_json::Map<String, serde_json::Value>,
    jobs: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A YAML manifest is one document, read whole: past this size, use CSV or JSON lines (read row by row).
const MAX_YAML_BYTES: u64 = 64 << 20;

fn parse_yaml(path: &Path, input: impl std::io::Read, accept: &mut Accept<'_>) -> Result<()> {
    use std::io::Read;
    let mut bytes = Vec::new();
    input
        .take(MAX_YAML_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    if bytes.len() as u64 > MAX_YAML_BYTES {
        return Err(manifest_error(
            path,
            format!(
                "a YAML manifest is read whole and this one is over {} MiB; use .csv or .jsonl",
                MAX_YAML_BYTES >> 20
            ),
        ));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| manifest_error(path, format!("is not UTF-8 (offset {})", e.valid_up_to())))?;
    let manifest: YamlManifest = serde_saphyr::from_str(text)
        .map_err(|e| manifest_error(path, e.to_string().lines().next().unwrap_or("invalid YAML").to_string()))?;
    for (idx, job) in manifest.jobs.into_iter().enumerate() {
        let row = idx + 1;
        let mut merged = manifest.defaults.clone();
        merged.extend(job);
        let parsed = serde_json::from_value::<RawRow>(serde_json::Value::Object(merged)).map_err(|e| RowError {
            row,
            column: None,
            problem: e.to_string(),
        });
        accept(row, parsed);
    }
    Ok(())
}

/// Plain text: one job per non-empty line, outputs numbered beside the manifest (`NAME-0001.wav`).
fn parse_text(path: &Path, input: impl std::io::BufRead, accept: &mut Accept<'_>) -> Result<()> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "line".into());
    nonblank_lines(path, input, |row, line| {
        let parsed = std::str::from_utf8(line)
            .map_err(|_| RowError { row, column: None, problem: "is not UTF-8".into() })
            .map(|text| RawRow {
                text: Some(text.trim().to_string()),
                output: Some(format!("{stem}-{row:04}.wav")),
                ..Default::default()
            });
        accept(row, parsed);
    })
}

fn validate_row(row: usize, raw: RawRow, base: &Path, policy: &PathPolicy) -> std::result::Result<Job, RowError> {
    let err = |column: &str, problem: String| RowError { row, column: Some(column.into()), problem };
    let text = raw.text.filter(|t| !t.trim().is_empty()).ok_or_else(|| err("text", "is empty".into()))?;
    let output_as_written =
        raw.output.filter(|o| !o.trim().is_empty()).ok_or_else(|| err("output", "is empty".into()))?;
    if !output_as_written.to_ascii_lowercase().ends_with(".wav") {
        return Err(err("output", format!("`{output_as_written}` must end in .wav")));
    }
    let output_base = policy.output_dir.as_deref().unwrap_or(base);
    let output = resolve_inside(output_base, &output_as_written, policy.allow_outside).map_err(|p| err("output", p))?;
    let reference = match raw.reference {
        Some(r) => Some(resolve_inside(base, &r, policy.allow_outside).map_err(|p| err("reference", p))?),
        None => None,
    };
    if let Some(reference) = &reference {
        if !reference.is_file() {
            return Err(err("reference", format!("{} does not exist", reference.display())));
        }
    }
    // A voice is a name, or a path to an .onnx file (which then resolves like the other paths).
    let voice = match raw.voice {
        Some(v) if v.contains('/') || v.to_ascii_lowercase().ends_with(".onnx") => Some(
            resolve_inside(base, &v, policy.allow_outside).map_err(|p| err("voice", p))?.to_string_lossy().into_owned(),
        ),
        other => other,
    };
    for (column, value) in [("preset", &raw.preset), ("profile", &raw.profile), ("model", &raw.model)] {
        if let Some(name) = value {
            let path_like = name.contains(['/', '\\']) || name.starts_with('.');
            if path_like && !policy.allow_outside {
                return Err(err(
                    column,
                    format!("`{name}` is a path; a row names an installed {column}, or pass --allow-outside-paths"),
                ));
            }
        }
    }
    let engine = match &raw.engine {
        Some(name) => Some(name.parse::<crate::convert::Engine>().map_err(|problem| err("engine", problem))?),
        None => None,
    };
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
        output,
        output_as_written,
        reference,
        voice,
        speaker,
        language: raw.language,
        preset: raw.preset,
        profile: raw.profile,
        engine,
        model: raw.model,
        length_scale: raw.length_scale,
        noise_scale: raw.noise_scale,
        noise_w: raw.noise_w,
    })
}
