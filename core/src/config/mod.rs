//! The configuration file: `$XDG_CONFIG_HOME/demod-voice/config.yaml` (or `--config PATH`), merged key by key over
//! built-in defaults, then under presets and command-line flags.
//!
//! YAML is read with `serde-saphyr`, a maintained successor of the deprecated `serde_yaml` on the same serde
//! model, chosen for its panic-free parser and precise error locations (line and column).
//!
//! A config written for the old Python tool (top-level `gpu`, `piper`, `xtts` or `advanced` sections) is
//! recognised and translated: keys with a meaning here are mapped, the others produce one warning each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod legacy;

use legacy::parse_legacy;

use crate::error::{Error, Result};
use crate::limits;

/// The voice `tts.voice` names when nothing else does (installed by `setup`).
pub const DEFAULT_VOICE: &str = "en_US-joe-medium";

/// Every section and key, with its default. Unknown keys are errors (with the closest known key suggested).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where inference runs.
    pub runtime: RuntimeSection,
    /// Speech defaults.
    pub tts: TtsSection,
    /// Output files and streams.
    pub output: OutputSection,
    /// Live conversion.
    pub realtime: RealtimeSection,
    /// The terminal app's sound devices.
    pub audio: AudioSection,
    /// Training-data preparation.
    pub preprocessing: PreprocessingSection,
    /// Where data lives.
    pub paths: PathsSection,
    /// Logging.
    pub log: LogSection,
    /// The voice catalogue and downloads.
    pub voices: VoicesSection,
}

/// Where inference runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSection {
    /// `auto` (CUDA when usable, else CPU), `cpu`, `cuda` or `tensorrt`.
    pub provider: ProviderName,
    /// GPU index for CUDA/TensorRT.
    pub device_id: i32,
    /// Intra-op threads; 0 means the number of physical cores.
    pub intra_threads: usize,
    /// ONNX Runtime library (libonnxruntime.so); empty means search as usual.
    pub library: Option<PathBuf>,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        RuntimeSection { provider: ProviderName::Auto, device_id: 0, intra_threads: 0, library: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// An execution provider by name, as the config file and `--provider` spell it.
pub enum ProviderName {
    /// CUDA when usable, else CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// NVIDIA TensorRT (falls back to CUDA, then CPU).
    Tensorrt,
}

impl ProviderName {
    /// The name as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Auto => "auto",
            ProviderName::Cpu => "cpu",
            ProviderName::Cuda => "cuda",
            ProviderName::Tensorrt => "tensorrt",
        }
    }
}

/// Speech defaults; `None` scales use the voice's own `inference` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsSection {
    /// Voice name or path.
    pub voice: String,
    /// Speaker id or name for multi-speaker voices.
    pub speaker: Option<String>,
    /// Language (`de`, `pt-BR`): picks the installed voice of it (best quality first) or the catalogue's, unless
    /// the voice was chosen more specifically.
    pub language: Option<String>,
    /// Length scale (`None`: the voice's own).
    pub length_scale: Option<f32>,
    /// Noise scale (`None`: the voice's own).
    pub noise_scale: Option<f32>,
    /// Noise-w scale (`None`: the voice's own).
    pub noise_w: Option<f32>,
    /// Seconds of silence after each sentence.
    pub sentence_silence: f32,
    /// Gain after normalisation.
    pub volume: f32,
    /// Peak-normalise each sentence (Piper's behaviour).
    pub normalize: bool,
}

impl Default for TtsSection {
    fn default() -> Self {
        TtsSection {
            voice: DEFAULT_VOICE.into(),
            speaker: None,
            language: None,
            length_scale: None,
            noise_scale: None,
            noise_w: None,
            sentence_silence: 0.0,
            volume: 1.0,
            normalize: true,
        }
    }
}

/// Output files and streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// Resample to this rate (Hz); `None` keeps the voice's rate.
    pub sample_rate: Option<u32>,
    /// `wav` (16-bit PCM) or `wav-f32` (32-bit float).
    pub format: OutputFormat,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection { sample_rate: None, format: OutputFormat::Wav }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
/// How WAV output is encoded.
pub enum OutputFormat {
    #[serde(rename = "wav")]
    /// 16-bit PCM.
    Wav,
    #[serde(rename = "wav-f32")]
    /// 32-bit float.
    WavF32,
}

/// Live conversion (the real-time engine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeSection {
    /// Samples per conversion block, in milliseconds.
    pub hop_ms: f32,
    /// Cross-fade between blocks, milliseconds.
    pub crossfade_ms: f32,
    /// Left context handed to the converter with each hop, milliseconds.
    pub context_ms: f32,
    /// What the audio thread outputs when the worker falls behind: `dry` or `silence`.
    pub underrun: UnderrunMode,
}

impl Default for RealtimeSection {
    fn default() -> Self {
        RealtimeSection { hop_ms: 10.0, crossfade_ms: 4.0, context_ms: 40.0, underrun: UnderrunMode::Dry }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// What the audio side plays when the worker is late.
pub enum UnderrunMode {
    /// The dry signal, delayed by the latency.
    Dry,
    /// Silence.
    Silence,
}

/// Sound devices of the terminal app (Speak and Live), by the names its device pickers and `health` show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AudioSection {
    /// Output device for Speak and Live; `None` is the system's default.
    pub output_device: Option<String>,
    /// Microphone for Live; `None` is the system's default.
    pub input_device: Option<String>,
}

/// Dataset preparation (`preprocess`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessingSection {
    /// Rate of the processed clips, Hz.
    pub sample_rate: u32,
    /// Loudness target, dBFS (RMS).
    pub normalize_db: f32,
    /// Trim leading and trailing silence.
    pub trim_silence: bool,
    /// Level below which audio counts as silence when trimming, dBFS.
    pub silence_threshold_db: f32,
    /// Clips shorter than this are dropped, seconds.
    pub min_duration: f32,
    /// Clips longer than this are dropped, seconds.
    pub max_duration: f32,
}

impl Default for PreprocessingSection {
    fn default() -> Self {
        PreprocessingSection {
            sample_rate: 22050,
            normalize_db: -20.0,
            trim_silence: true,
            silence_threshold_db: -40.0,
            min_duration: 0.5,
            max_duration: 15.0,
        }
    }
}

/// Piper's voice catalogue and how voices are downloaded from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoicesSection {
    /// The catalogue (`voices.json`).
    pub catalog_url: String,
    /// What the catalogue's file paths are relative to.
    pub base_url: String,
    /// A cached catalogue older than this many hours is fetched again.
    pub catalog_max_age_hours: f32,
    /// Seconds to wait for a connection, an answer, or the next bytes of a download.
    pub timeout_s: f32,
    /// Tries after the first for timeouts, broken connections and server errors.
    pub retries: u32,
}

impl Default for VoicesSection {
    fn default() -> Self {
        VoicesSection {
            catalog_url: crate::catalog::DEFAULT_CATALOG_URL.into(),
            base_url: crate::catalog::DEFAULT_BASE_URL.into(),
            catalog_max_age_hours: 24.0,
            timeout_s: 30.0,
            retries: 3,
        }
    }
}

/// Folder overrides; `None` uses the XDG defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PathsSection {
    /// The data folder (runtime, espeak-ng, voices, profiles).
    pub data: Option<PathBuf>,
    /// The voice library.
    pub voices: Option<PathBuf>,
    /// The cache folder (downloaded wheels, logs).
    pub cache: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// Logging.
pub struct LogSection {
    /// `error`, `warn`, `info`, `debug` or `trace` (`-v`/`-q` and `RUST_LOG` override it).
    pub level: LogLevel,
    /// Also append log lines to this file.
    pub file: Option<PathBuf>,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { level: LogLevel::Warn, file: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// How much is logged.
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Progress too.
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The name as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// A loaded config: the effective values, where each came from, and warnings to show.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    /// The effective values.
    pub config: Config,
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// Dotted key -> where its value came from (`file PATH`, `legacy file PATH`, `--flag`, `preset NAME`...).
    /// Keys not listed have their default.
    pub sources: BTreeMap<String, String>,
    /// One line each: ignored legacy keys and the like.
    pub warnings: Vec<String>,
}

impl LoadedConfig {
    /// Where `key` got its value.
    pub fn source_of(&self, key: &str) -> &str {
        self.sources.get(key).map(String::as_str).unwrap_or("default")
    }

    /// Record that `key` was set by `source` (a flag, a preset, an environment variable).
    pub fn set_source(&mut self, key: &str, source: impl Into<String>) {
        self.sources.insert(key.to_string(), source.into());
    }

    /// Every key with its effective value (as YAML scalar text) and source, in file order.
    pub fn entries(&self) -> Vec<(String, String, String)> {
        entries(&self.config, &self.sources)
    }
}

/// Every key of `config` with its value (as YAML scalar text) and its source in `sources` (`default` when absent),
/// in file order.
pub fn entries(config: &Config, sources: &BTreeMap<String, String>) -> Vec<(String, String, String)> {
    let value = serde_json::to_value(config).unwrap_or_default();
    let mut out = Vec::new();
    flatten(&value, "", &mut out);
    out.into_iter()
        .map(|(key, value)| {
            let source = sources.get(&key).cloned().unwrap_or_else(|| "default".into());
            (key, value, source)
        })
        .collect()
}

fn flatten(value: &serde_json::Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(child, &path, out);
            }
        }
        serde_json::Value::Null => out.push((prefix.to_string(), "null".into())),
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        // Settings are f32: show 0.7, not the f64 widening 0.699999988079071.
        serde_json::Value::Number(n) if n.is_f64() => {
            let wide = n.as_f64().unwrap_or_default();
            let narrow = wide as f32;
            let text = if f64::from(narrow) == wide { format!("{narrow:?}") } else { format!("{wide:?}") };
            out.push((prefix.to_string(), text));
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The default location: `$XDG_CONFIG_HOME/demod-voice/config.yaml`.
pub fn default_path(config_dir: &Path) -> PathBuf {
    config_dir.join("config.yaml")
}

/// Load `explicit` (must exist) or the default file (may be absent).
pub fn load(explicit: Option<&Path>, default_file: &Path) -> Result<LoadedConfig> {
    match explicit {
        Some(path) => {
            if !path.is_file() {
                return Err(config_error(path, None, "the file does not exist (given with --config)".into()));
            }
            load_file(path)
        }
        None if default_file.is_file() => load_file(default_file),
        None => Ok(LoadedConfig::default()),
    }
}

/// Read and check one config file.
pub fn load_file(path: &Path) -> Result<LoadedConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

fn config_error(path: &Path, line: Option<usize>, problem: String) -> Error {
    Error::Config { path: path.to_path_buf(), line, problem }
}

/// Top-level sections that only the old Python tool wrote.
const LEGACY_SECTIONS: &[&str] = &["gpu", "piper", "xtts", "advanced", "logging", "models"];

/// Parse config text; `path` names it in messages.
pub fn parse(text: &str, path: &Path) -> Result<LoadedConfig> {
    let tree: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_saphyr::from_str(text).map_err(|e| saphyr_error(path, &e.to_string(), None))?
    };
    let tree = match tree {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        serde_json::Value::Object(map) => serde_json::Value::Object(map),
        _ => {
            return Err(config_error(
                path,
                Some(1),
                "the top level must be a mapping of sections (runtime:, tts:, ...)".into(),
            ))
        }
    };
    let is_legacy = tree.as_object().is_some_and(|m| m.keys().any(|k| LEGACY_SECTIONS.contains(&k.as_str())));
    let mut loaded = if is_legacy {
        parse_legacy(&tree, path)?
    } else {
        let config: Config = serde_saphyr::from_str(if text.trim().is_empty() { "{}" } else { text })
            .map_err(|e| saphyr_error(path, &e.to_string(), Some(&Config::default())))?;
        let mut sources = BTreeMap::new();
        let mut keys = Vec::new();
        flatten(&tree, "", &mut keys);
        for (key, _) in keys {
            sources.insert(key, format!("file {}", path.display()));
        }
        LoadedConfig { config, path: Some(path.to_path_buf()), sources, warnings: Vec::new() }
    };
    loaded.path = Some(path.to_path_buf());
    if let Err(problem) = validate(&loaded.config) {
        let line = find_key_line(text, &problem.key);
        return Err(config_error(path, line, format!("`{}` {}", problem.key, problem.message)));
    }
    Ok(loaded)
}

/// A value outside what the code accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The dotted key.
    pub key: String,
    /// What is wrong with its value.
    pub message: String,
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: T,
    low: T,
    high: T,
) -> std::result::Result<(), Invalid> {
    if value >= low && value <= high {
        Ok(())
    } else {
        Err(Invalid { key: key.into(), message: format!("is {value}, expected {low}..{high}") })
    }
}

fn limit(key: &str, value: f32, limit: limits::Limit) -> std::result::Result<(), Invalid> {
    range(key, value, limit.min, limit.max)
}

/// Check every value's range and the relations between values.
pub fn validate(config: &Config) -> std::result::Result<(), Invalid> {
    range("runtime.device_id", config.runtime.device_id, 0, 64)?;
    range("runtime.intra_threads", config.runtime.intra_threads, 0, 1024)?;
    let tts = &config.tts;
    if tts.voice.trim().is_empty() {
        return Err(Invalid { key: "tts.voice".into(), message: "is empty".into() });
    }
    if let Some(v) = tts.length_scale {
        limit("tts.length_scale", v, limits::LENGTH_SCALE)?;
    }
    if let Some(v) = tts.noise_scale {
        limit("tts.noise_scale", v, limits::NOISE_SCALE)?;
    }
    if let Some(v) = tts.noise_w {
        limit("tts.noise_w", v, limits::NOISE_W)?;
    }
    limit("tts.sentence_silence", tts.sentence_silence, limits::SENTENCE_SILENCE)?;
    limit("tts.volume", tts.volume, limits::VOLUME)?;
    if let Some(rate) = config.output.sample_rate {
        range("output.sample_rate", rate, 8000, 192_000)?;
    }
    let rt = &config.realtime;
    range("realtime.hop_ms", rt.hop_ms, 2.0, 500.0)?;
    range("realtime.crossfade_ms", rt.crossfade_ms, 0.0, 100.0)?;
    range("realtime.context_ms", rt.context_ms, 0.0, 2000.0)?;
    if rt.crossfade_ms >= rt.hop_ms {
        return Err(Invalid {
            key: "realtime.crossfade_ms".into(),
            message: format!(
                "is {} ms, which must be shorter than realtime.hop_ms ({} ms)",
                rt.crossfade_ms, rt.hop_ms
            ),
        });
    }
    let voices = &config.voices;
    for (key, url) in [("voices.catalog_url", &voices.catalog_url), ("voices.base_url", &voices.base_url)] {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Invalid { key: key.into(), message: format!("`{url}` is not an http:// or https:// URL") });
        }
    }
    range("voices.catalog_max_age_hours", voices.catalog_max_age_hours, 0.0, 24.0 * 365.0)?;
    range("voices.timeout_s", voices.timeout_s, 0.1, 3600.0)?;
    range("voices.retries", voices.retries, 0, 20)?;
    if let Some(language) = &tts.language {
        if language.trim().is_empty() || !language.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(Invalid {
                key: "tts.language".into(),
                message: format!("`{language}` is not a language code such as `de`, `pt-BR` or `en_US`"),
            });
        }
    }
    let pre = &config.preprocessing;
    range("preprocessing.sample_rate", pre.sample_rate, 8000, 96_000)?;
    range("preprocessing.normalize_db", pre.normalize_db, -60.0, 0.0)?;
    range("preprocessing.silence_threshold_db", pre.silence_threshold_db, -96.0, -10.0)?;
    range("preprocessing.min_duration", pre.min_duration, 0.0, 600.0)?;
    range("preprocessing.max_duration", pre.max_duration, 0.1, 3600.0)?;
    if pre.min_duration >= pre.max_duration {
        return Err(Invalid {
            key: "preprocessing.min_duration".into(),
            message: format!(
                "({} s) must be below preprocessing.max_duration ({} s)",
                pre.min_duration, pre.max_duration
            ),
        });
    }
    Ok(())
}

/// Turn a serde-saphyr error (several lines with a source snippet) into one line, adding the closest known key
/// when the problem is an unknown one.
fn saphyr_error(path: &Path, message: &str, _schema: Option<&Config>) -> Error {
    let first = message.lines().next().unwrap_or(message).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let (line, rest) = match first.strip_prefix("line ") {
        Some(after) => {
            let number: String = after.chars().take_while(char::is_ascii_digit).collect();
            let rest = after[number.len()..].trim_start();
            (number.parse().ok(), rest.to_string())
        }
        None => (None, first.to_string()),
    };
    let mut problem = rest;
    // "column 3: unknown field ..." -> "unknown field ... (column 3)"
    if let Some(after) = problem.strip_prefix("column ") {
        if let Some((column, message)) = after.split_once(':') {
            problem = format!("{} (column {column})", message.trim());
        }
    }
    if let Some(suggestion) = suggest_for_unknown_field(&problem) {
        problem.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    config_error(path, line, problem)
}

/// From "unknown field `lenght_scale`, expected one of length_scale, voice", the closest expected name.
fn suggest_for_unknown_field(message: &str) -> Option<String> {
    let after = message.split("unknown field `").nth(1)?;
    let (unknown, rest) = after.split_once('`')?;
    let expected = rest.split("expected one of").nth(1).or_else(|| rest.split("expected").nth(1))?;
    expected
        .split(',')
        .map(|s| s.trim().trim_matches('`').to_string())
        .filter(|s| !s.is_empty())
        .map(|candidate| (strsim::levenshtein(unknown, &candidate), candidate))
        .filter(|(distance, candidate)| *distance <= candidate.len().max(3) / 2 + 1)
        .min()
        .map(|(_, candidate)| candidate)
}

/// The 1-based line where a dotted key is set in YAML text (best effort: indentation-based).
pub fn find_key_line(text: &str, dotted: &str) -> Option<usize> {
    let parts: Vec<&str> = dotted.split('.').collect();
    let mut depth = 0;
    let mut indent_stack: Vec<usize> = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        while indent_stack.last().is_some_and(|&i| indent <= i) {
            indent_stack.pop();
            depth = indent_stack.len();
        }
        if depth < parts.len() && trimmed.starts_with(&format!("{}:", parts[depth])) {
            if depth + 1 == parts.len() {
                return Some(idx + 1);
            }
            indent_stack.push(indent);
            depth = indent_stack.len();
        }
    }
    None
}

/// The commented default file written by `config init`.
pub const DEFAULT_FILE: &str = include_str!("../../../presets/config.default.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<LoadedConfig> {
        parse(text, Path::new("/cfg/config.yaml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let loaded = parse_str("").unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.source_of("tts.volume"), "default");
    }

    #[test]
    fn keys_merge_over_defaults_and_record_their_source() {
        let loaded = parse_str("tts:\n  volume: 0.5\n").unwrap();
        assert_eq!(loaded.config.tts.volume, 0.5);
        assert!(loaded.config.tts.normalize, "untouched keys keep their defaults");
        assert_eq!(loaded.source_of("tts.volume"), "file /cfg/config.yaml");
        assert_eq!(loaded.source_of("tts.normalize"), "default");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err = parse_str("tts:\n  volume: [1,\n").unwrap_err().to_string();
        assert!(err.contains("/cfg/config.yaml") && err.contains("line"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn unknown_keys_suggest_the_closest_known_one() {
        let err = parse_str("tts:\n  lenght_scale: 1.2\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("did you mean `length_scale`"), "{err}");
        let err = parse_str("runtim:\n  provider: cpu\n").unwrap_err().to_string();
        assert!(err.contains("did you mean `runtime`"), "{err}");
    }

    #[test]
    fn wrong_types_are_reported_with_the_line() {
        let err = parse_str("log:\n  level: warn\ntts:\n  volume: loud\n").unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
        let err = parse_str("runtime:\n  provider: quantum\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_key_and_line() {
        let err = parse_str("tts:\n  sentence_silence: 0.2\n  volume: 50\n").unwrap_err().to_string();
        assert!(err.contains("tts.volume") && err.contains("line 3") && err.contains("0..10"), "{err}");
        let err = parse_str("realtime:\n  hop_ms: 10\n  crossfade_ms: 12\n").unwrap_err().to_string();
        assert!(err.contains("realtime.crossfade_ms") && err.contains("line 3"), "{err}");
    }

    #[test]
    fn old_tool_config_maps_known_keys_and_warns_for_the_rest() {
        let text = "gpu:\n  enabled: true\n  device_id: 1\npiper:\n  speed: 2.0\n  noise_scale: 0.5\n  noise_scale_w: 0.6\n  default_speaker: 3\noutput:\n  sample_rate: 16000\npreprocessing:\n  min_duration: 1.0\nadvanced:\n  num_threads: 3\nxtts:\n  temperature: 0.7\n  model: foo\n";
        let loaded = parse_str(text).unwrap();
        let c = &loaded.config;
        assert_eq!(c.runtime.provider, ProviderName::Cuda);
        assert_eq!(c.runtime.device_id, 1);
        assert_eq!(c.tts.length_scale, Some(0.5));
        assert_eq!(c.tts.noise_scale, Some(0.5));
        assert_eq!(c.tts.noise_w, Some(0.6));
        assert_eq!(c.tts.speaker.as_deref(), Some("3"));
        assert_eq!(c.output.sample_rate, Some(16000));
        assert_eq!(c.preprocessing.min_duration, 1.0);
        assert_eq!(c.runtime.intra_threads, 3);
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert!(loaded.warnings.iter().all(|w| w.contains("xtts.") && !w.contains('\n')));
        assert!(loaded.source_of("tts.length_scale").contains("piper.speed"));
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load(Some(Path::new("/nonexistent/c.yaml")), Path::new("/x")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/c.yaml") && err.contains("does not exist"), "{err}");
        assert_eq!(load(None, Path::new("/nonexistent/default.yaml")).unwrap().config, Config::default());
    }

    #[test]
    fn the_commented_default_file_loads_to_the_defaults() {
        assert_eq!(parse_str(DEFAULT_FILE).unwrap().config, Config::default());
    }

    #[test]
    fn key_lines_follow_indentation() {
        let text = "# c\ntts:\n  volume: 1\nlog:\n  level: warn\n  file: x\n";
        assert_eq!(find_key_line(text, "log.file"), Some(6));
        assert_eq!(find_key_line(text, "tts.volume"), Some(3));
        assert_eq!(find_key_line(text, "tts.speaker"), None);
    }
}
