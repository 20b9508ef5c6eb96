//! Neural voice-conversion models as installable things: their I/O contracts (`docs/models.md`), telling a file's
//! kind from its inputs (a wrong file is refused naming what it has and what each kind needs), and the library in
//! `DATA/models/NAME/` with a `manifest.json` per model (`models add|list|show|remove`).
//!
//! Kinds: RVC voice models in the WebUI export (`phone`, `phone_lengths`, `pitch`, `pitchf`, `ds`, `rnd`) and the
//! w-okada export (`feats`, `p_len`, `pitch`, `pitchf`, `sid`; no-pitch models lack the pitch inputs), the content
//! encoder RVC needs (HuBERT/ContentVec: 16 kHz audio -> 256 or 768 channels), and OpenVoice-format tone colour
//! pairs (a reference encoder and a converter), and RMVPE pitch models RVC uses instead of its own pitch tracker
//! when one is installed (w-okada's `waveform`/`mel` + `threshold` -> `pitchf` forms, the WebUI's mel -> salience
//! form). The engines that run them are in [`crate::convert`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::onnx::{Provider, Runtime, SessionOptions};

/// One input or output of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Its name in the graph.
    pub name: String,
    /// `f32`, `i64`, ...
    pub dtype: String,
    /// Dimensions; -1 where the graph leaves it open.
    pub shape: Vec<i64>,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| if *d < 0 { "?".into() } else { d.to_string() }).collect();
        write!(f, "{} {}[{}]", self.name, self.dtype, dims.join(","))
    }
}

/// What a graph takes and gives, and its `metadata` JSON (RVC exports carry one) when present.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// The graph's inputs, in order.
    pub inputs: Vec<Port>,
    /// Its outputs, in order.
    pub outputs: Vec<Port>,
    /// Its `metadata` JSON, when it has one.
    pub metadata: Option<serde_json::Value>,
}

impl Signature {
    fn input(&self, name: &str) -> Option<&Port> {
        self.inputs.iter().find(|p| p.name == name)
    }

    fn has(&self, names: &[&str]) -> bool {
        names.iter().all(|n| self.input(n).is_some())
    }

    /// `name f32[1,?,768], ...`.
    pub fn describe_inputs(&self) -> String {
        self.inputs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// Read the signature of the model at `path` (on CPU; nothing is run).
pub fn signature(runtime: &Runtime, path: &Path) -> Result<Signature> {
    let options = SessionOptions { provider: Provider::Cpu, intra_threads: Some(1), ..Default::default() };
    let loaded = runtime.session_from_file(path, &options)?;
    let port = |outlet: &ort::value::Outlet| {
        let dtype = match outlet.dtype().tensor_type() {
            Some(ort::value::TensorElementType::Float32) => "f32".to_string(),
            Some(ort::value::TensorElementType::Int64) => "i64".to_string(),
            Some(other) => format!("{other:?}").to_lowercase(),
            None => "non-tensor".to_string(),
        };
        let shape = outlet.dtype().tensor_shape().map(|s| s.iter().copied().collect()).unwrap_or_default();
        Port { name: outlet.name().to_string(), dtype, shape }
    };
    let session = &loaded.session;
    let metadata =
        session.metadata().ok().and_then(|m| m.custom("metadata")).and_then(|text| serde_json::from_str(&text).ok());
    Ok(Signature {
        inputs: session.inputs().iter().map(port).collect(),
        outputs: session.outputs().iter().map(port).collect(),
        metadata,
    })
}

/// The kinds of model, each with what its file says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelKind {
    /// RVC voice model, WebUI export (always with pitch).
    RvcWebui {
        /// Content-feature channels (256 for v1, 768 for v2).
        channels: u32,
        /// Output rate from the metadata, when it has one.
        sample_rate: Option<u32>,
    },
    /// RVC voice model, w-okada export.
    RvcOkada {
        /// Content-feature channels (256 for v1, 768 for v2).
        channels: u32,
        /// Takes `pitch`/`pitchf` (f0 models).
        pitch: bool,
        /// Output rate from the metadata, when it has one.
        sample_rate: Option<u32>,
    },
    /// HuBERT / ContentVec content encoder (16 kHz audio in).
    ContentEncoder {
        /// Output channels.
        channels: u32,
    },
    /// OpenVoice-format reference (tone colour) encoder.
    ToneExtractor,
    /// OpenVoice-format tone colour converter.
    ToneConverter,
    /// RMVPE pitch model (RVC's pitch, 100 frames a second at 16 kHz).
    PitchModel {
        /// What it takes and gives.
        form: PitchForm,
    },
}

/// The forms RMVPE pitch models are exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PitchForm {
    /// w-okada: `waveform` f32[1,N] (16 kHz), `threshold` -> `pitchf` (Hz per 160 samples).
    Waveform,
    /// w-okada: `mel` f32[1,128,T] (log mel), `threshold` -> `pitchf` (Hz per mel frame).
    Mel,
    /// RVC WebUI: one input f32[1,128,T] (log mel) -> salience f32[1,T,360] over 20-cent bins.
    Salience,
}

/// Every kind's inputs, as the refusal of a wrong file lists them.
pub const CONTRACTS: &[(&str, &str)] = &[
    (
        "RVC voice model (WebUI export)",
        "phone f32[1,T,768|256], phone_lengths i64[1], pitch i64[1,T], pitchf f32[1,T], ds i64[1], rnd f32[1,192,T]",
    ),
    (
        "RVC voice model (w-okada export)",
        "feats f32[1,T,768|256], p_len i64[1], [pitch i64[1,T], pitchf f32[1,T]], sid i64[1]",
    ),
    ("content encoder (HuBERT/ContentVec)", "one input f32[1,N] (16 kHz audio) -> f32[1,T,768|256]"),
    ("tone colour reference encoder (OpenVoice)", "input f32[1,T,513] -> f32[1,256]"),
    (
        "tone colour converter (OpenVoice)",
        "audio f32[1,513,T], audio_length i64[1], src_tone f32[1,256,1], dest_tone f32[1,256,1], tau f32[1]",
    ),
    (
        "RMVPE pitch model",
        "waveform f32[1,N] or mel f32[1,128,T], threshold f32 -> pitchf; or input f32[1,128,T] -> f32[1,T,360]",
    ),
];

impl ModelKind {
    /// The engine that runs it (`rvc`, `tone-color`), or what it serves (`content` for RVC's encoder).
    pub fn engine(&self) -> &'static str {
        match self {
            ModelKind::RvcWebui { .. } | ModelKind::RvcOkada { .. } => "rvc",
            ModelKind::ContentEncoder { .. } => "content",
            ModelKind::ToneExtractor | ModelKind::ToneConverter => "tone-color",
            ModelKind::PitchModel { .. } => "pitch",
        }
    }

    /// One line on what it is.
    pub fn describe(&self) -> String {
        let rate = |r: &Option<u32>| r.map_or_else(String::new, |r| format!(", {r} Hz"));
        match self {
            ModelKind::RvcWebui { channels, sample_rate } => {
                format!("RVC voice model (WebUI export, {channels} channels, pitch{})", rate(sample_rate))
            }
            ModelKind::RvcOkada { channels, pitch, sample_rate } => format!(
                "RVC voice model (w-okada export, {channels} channels, {}{})",
                if *pitch { "pitch" } else { "no pitch" },
                rate(sample_rate)
            ),
            ModelKind::ContentEncoder { channels } => format!("content encoder ({channels} channels, 16 kHz)"),
            ModelKind::ToneExtractor => "tone colour reference encoder (OpenVoice format)".into(),
            ModelKind::ToneConverter => "tone colour converter (OpenVoice format)".into(),
            ModelKind::PitchModel { form } => format!(
                "RMVPE pitch model ({})",
                match form {
                    PitchForm::Waveform => "w-okada export, audio in",
                    PitchForm::Mel => "w-okada export, mel in",
                    PitchForm::Salience => "WebUI export, mel in, salience out",
                }
            ),
        }
    }
}

fn mismatch(path: &Path, signature: &Signature, why: &str) -> Error {
    let expected: Vec<String> = CONTRACTS.iter().map(|(kind, inputs)| format!("{kind}: {inputs}")).collect();
    Error::ModelSignature {
        path: path.to_path_buf(),
        problem: format!("{why}; it takes {}; expected one of: {}", signature.describe_inputs(), expected.join("; ")),
    }
}

/// What kind of model `signature` (read from `path`) is; a file that fits no contract is refused naming both.
pub fn detect(signature: &Signature, path: &Path) -> Result<ModelKind> {
    let want = |port: &str, dtype: &str| -> Result<&Port> {
        let found = signature.input(port).ok_or_else(|| mismatch(path, signature, &format!("no input `{port}`")))?;
        if found.dtype != dtype {
            return Err(mismatch(path, signature, &format!("`{port}` is {} where {dtype} is expected", found.dtype)));
        }
        Ok(found)
    };
    let channels_of = |port: &Port| -> Result<u32> {
        match port.shape.get(2) {
            Some(&c) if c == 256 || c == 768 => Ok(c as u32),
            _ => Err(mismatch(path, signature, &format!("`{port}` does not have 256 or 768 channels"))),
        }
    };
    let sample_rate = signature.metadata.as_ref().and_then(|m| m["samplingRate"].as_u64()).map(|r| r as u32);
    if signature.has(&["phone", "phone_lengths", "ds", "rnd"]) {
        let phone = want("phone", "f32")?;
        want("phone_lengths", "i64")?;
        want("pitch", "i64")?;
        want("pitchf", "f32")?;
        return Ok(ModelKind::RvcWebui { channels: channels_of(phone)?, sample_rate });
    }
    if signature.has(&["feats", "p_len", "sid"]) {
        let feats = want("feats", "f32")?;
        want("p_len", "i64")?;
        let pitch = signature.has(&["pitch", "pitchf"]);
        if pitch {
            want("pitch", "i64")?;
            want("pitchf", "f32")?;
        }
        return Ok(ModelKind::RvcOkada { channels: channels_of(feats)?, pitch, sample_rate });
    }
    if signature.has(&["audio", "audio_length", "src_tone", "dest_tone", "tau"]) {
        want("audio", "f32")?;
        want("src_tone", "f32")?;
        want("dest_tone", "f32")?;
        return Ok(ModelKind::ToneConverter);
    }
    for (input, form) in [("waveform", PitchForm::Waveform), ("mel", PitchForm::Mel)] {
        if signature.has(&[input, "threshold"]) {
            want(input, "f32")?;
            want("threshold", "f32")?;
            return Ok(ModelKind::PitchModel { form });
        }
    }
    if signature.inputs.len() == 1 {
        let only = &signature.inputs[0];
        let output = signature.outputs.first();
        let salience = output.is_some_and(|o| o.shape.len() == 3 && o.shape[2] == 360);
        if only.dtype == "f32" && only.shape.len() == 3 && only.shape[1] == 128 && salience {
            return Ok(ModelKind::PitchModel { form: PitchForm::Salience });
        }
        if only.dtype == "f32" && only.shape.len() == 3 && only.shape[2] == 513 {
            return Ok(ModelKind::ToneExtractor);
        }
        if only.dtype == "f32" && only.shape.len() == 2 {
            if let Some(output) = output.filter(|o| o.shape.len() == 3) {
                return Ok(ModelKind::ContentEncoder { channels: channels_of(output)? });
            }
        }
    }
    Err(mismatch(path, signature, "it fits none of the model kinds"))
}

/// One file of an installed model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Its name in the model's folder.
    pub file: String,
    /// What it is.
    pub kind: ModelKind,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// Where it was added from.
    pub source: String,
}

/// An installed model: `DATA/models/NAME/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The name `--model` takes.
    pub name: String,
    /// `rvc`, `tone-color`, `content` (an RVC content encoder) or `pitch` (an RMVPE pitch model).
    pub engine: String,
    /// Its files.
    pub files: Vec<ModelFile>,
    /// Seconds since the Unix epoch.
    pub added_unix: u64,
    /// The licence its user gave when adding it (`--licence`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
}

const MANIFEST: &str = "manifest.json";

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Install `sources` as the model `name` (default: the first file's stem) in `models_dir`: each file's kind is
/// read from its graph, checked against `sha256` when given (one file), and the files must make one model (an RVC
/// voice model, a content encoder, an RMVPE pitch model, or a tone colour converter with its reference encoder).
/// Copied in as one folder.
pub fn add(
    runtime: &Runtime,
    models_dir: &Path,
    sources: &[PathBuf],
    name: Option<&str>,
    sha256: Option<&str>,
    replace: bool,
) -> Result<Manifest> {
    let sources: Vec<(PathBuf, String)> = sources.iter().map(|p| (p.clone(), p.display().to_string())).collect();
    add_with(runtime, models_dir, &sources, name, sha256, replace, None)
}

/// [`add`] with each file's origin as the manifest should record it (its URL when it was downloaded) and the
/// licence its user names.
pub fn add_with(
    runtime: &Runtime,
    models_dir: &Path,
    sources: &[(PathBuf, String)],
    name: Option<&str>,
    sha256: Option<&str>,
    replace: bool,
    licence: Option<&str>,
) -> Result<Manifest> {
    let model_error = |path: &Path, problem: String| Error::ModelSignature { path: path.to_path_buf(), problem };
    let origins: Vec<&String> = sources.iter().map(|(_, origin)| origin).collect();
    let sources: Vec<PathBuf> = sources.iter().map(|(path, _)| path.clone()).collect();
    let first = sources.first().ok_or_else(|| model_error(models_dir, "no model file given".into()))?;
    if let Some(missing) = sources.iter().find(|s| !s.is_file()) {
        return Err(model_error(missing, "the file does not exist".into()));
    }
    let name = name.map(str::to_string).unwrap_or_else(|| crate::piper::synth::voice_name(first));
    if !valid_name(&name) {
        return Err(model_error(first, format!("`{name}` is not a model name (letters, digits, '-', '_', '.')")));
    }
    let mut files = Vec::new();
    for (source, origin) in sources.iter().zip(&origins) {
        let digest = crate::assets::sha256_hex(source)?;
        if let Some(expected) = sha256.filter(|_| sources.len() == 1) {
            if !digest.eq_ignore_ascii_case(expected.trim()) {
                return Err(model_error(
                    source,
                    format!("its SHA-256 is {digest}, not the {expected} given; nothing installed"),
                ));
            }
        }
        let kind = detect(&signature(runtime, source)?, source)?;
        let file = source.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "model.onnx".into());
        files.push(ModelFile { file, kind, sha256: digest, source: origin.to_string() });
    }
    let kinds: Vec<&ModelKind> = files.iter().map(|f| &f.kind).collect();
    let engine = match kinds.as_slice() {
        [ModelKind::RvcWebui { .. } | ModelKind::RvcOkada { .. }] => "rvc",
        [ModelKind::ContentEncoder { .. }] => "content",
        [ModelKind::PitchModel { .. }] => "pitch",
        [ModelKind::ToneConverter, ModelKind::ToneExtractor] | [ModelKind::ToneExtractor, ModelKind::ToneConverter] => {
            "tone-color"
        }
        [ModelKind::ToneConverter] | [ModelKind::ToneExtractor] => {
            return Err(model_error(
                first,
                "a tone colour model is a pair: give the converter and its reference encoder together".into(),
            ))
        }
        _ => {
            let found: Vec<String> = kinds.iter().map(|k| k.describe()).collect();
            return Err(model_error(first, format!("these files do not make one model: {}", found.join(", "))));
        }
    };
    let target = models_dir.join(&name);
    if target.exists() && !replace {
        return Err(model_error(&target, format!("a model named `{name}` is installed; pass --force to replace it")));
    }
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    let staging = models_dir.join(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(write_error(&staging))?;
    for (source, file) in sources.iter().zip(&files) {
        let to = staging.join(&file.file);
        std::fs::copy(source, &to).map_err(write_error(&to))?;
    }
    let manifest = Manifest {
        name: name.clone(),
        engine: engine.to_string(),
        files,
        added_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        licence: licence.map(str::to_string),
    };
    let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    std::fs::write(staging.join(MANIFEST), text).map_err(write_error(&staging.join(MANIFEST)))?;
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(write_error(&target))?;
    }
    std::fs::rename(&staging, &target).map_err(write_error(&target))?;
    crate::durable::sync_folder(models_dir);
    Ok(manifest)
}

/// True when `source` names a file to download rather than a path.
pub fn is_url(source: &str) -> bool {
    source.starts_with("https://") || source.starts_with("http://")
}

/// Download `url` into `models_dir/.downloads/` for [`add_with`], with the voice catalogue's downloader: timeouts,
/// retries, and a broken download resumed where it stopped on the next try (the partial file is kept there). The
/// caller removes the file once it is installed or refused. `progress` is told the bytes so far and the whole size
/// when the server gives it.
pub fn download(
    url: &str,
    models_dir: &Path,
    http: &crate::catalog::HttpOptions,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<PathBuf> {
    let last = url.split(['?', '#']).next().unwrap_or(url).rsplit('/').next().unwrap_or("");
    let file: String = last.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    let file = if file.is_empty() || file.starts_with('.') { "model.onnx".to_string() } else { file };
    let folder = models_dir.join(".downloads");
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    std::fs::create_dir_all(&folder).map_err(write_error(&folder))?;
    let path = folder.join(&file);
    let mut handle =
        std::fs::OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(write_error(&path))?;
    if let Err(e) = crate::catalog::Http::new(http.clone()).download_into(url, &mut handle, None, progress) {
        // What arrived is kept to resume from; nothing is not.
        if handle.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&path);
        }
        return Err(e);
    }
    handle.sync_all().map_err(write_error(&path))?;
    Ok(path)
}

/// The installed models, by name, each with its manifest or why it cannot be read.
pub fn list(models_dir: &Path) -> Vec<(String, std::result::Result<Manifest, String>)> {
    let Ok(entries) = std::fs::read_dir(models_dir) else { return Vec::new() };
    let mut out: Vec<(String, std::result::Result<Manifest, String>)> = entries
        .flatten()
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let manifest = std::fs::read(e.path().join(MANIFEST))
                .map_err(|err| format!("no readable {MANIFEST}: {err}"))
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|err| format!("{MANIFEST}: {err}")));
            (name, manifest)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The installed model `name`.
pub fn find(models_dir: &Path, name: &str) -> Result<Manifest> {
    let installed = list(models_dir);
    match installed.iter().find(|(n, _)| n == name) {
        Some((_, Ok(manifest))) => Ok(manifest.clone()),
        Some((_, Err(problem))) => Err(Error::ModelSignature { path: models_dir.join(name), problem: problem.clone() }),
        None => {
            let names: Vec<&str> = installed.iter().map(|(n, _)| n.as_str()).collect();
            Err(Error::ModelSignature {
                path: models_dir.join(name),
                problem: format!(
                    "no model named `{name}` (installed: {}); `demod-voice models add FILE` installs one",
                    if names.is_empty() { "none".into() } else { names.join(", ") }
                ),
            })
        }
    }
}

/// Remove the installed model `name`.
pub fn remove(models_dir: &Path, name: &str) -> Result<PathBuf> {
    if !valid_name(name) {
        return Err(Error::ModelSignature {
            path: models_dir.join(name),
            problem: format!("`{name}` is not a model name"),
        });
    }
    // A model whose manifest is unreadable can still be removed; one that is not there is an error.
    if !models_dir.join(name).is_dir() {
        find(models_dir, name)?;
    }
    let folder = models_dir.join(name);
    std::fs::remove_dir_all(&folder).map_err(|source| Error::Write { path: folder.clone(), source })?;
    Ok(folder)
}
