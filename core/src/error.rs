//! The core's error type. Every variant names what went wrong and where, and most say what to do about it, so a
//! front-end can print `{error}` as a one-line message.

use std::path::PathBuf;

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to tell a user who has no runtime library.
pub const RUNTIME_HINT: &str =
    "run `demod-voice setup`, pass --ort-lib PATH, or set ORT_DYLIB_PATH to a libonnxruntime.so (1.20 or newer)";

/// What to tell a user who has no espeak-ng.
pub const ESPEAK_HINT: &str = "run `demod-voice setup`, install espeak-ng (Debian: `apt install espeak-ng`), or set \
     DEMOD_VOICE_ESPEAK_LIB / DEMOD_VOICE_ESPEAK_DATA";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("espeak-ng data not found at {}: the folder has no `phontab`; {ESPEAK_HINT}", path.display())]
    EspeakData { path: PathBuf },

    #[error("cannot load espeak-ng library {}: {source}; {ESPEAK_HINT}", path.display())]
    EspeakLibrary {
        path: PathBuf,
        #[source]
        source: libloading::Error,
    },

    #[error("{} is not an espeak-ng library (missing symbol `{symbol}`); {ESPEAK_HINT}", path.display())]
    EspeakSymbol { path: PathBuf, symbol: String },

    #[error("espeak-ng failed to start with data {}: {message}; {ESPEAK_HINT}", path.display())]
    EspeakInit { path: PathBuf, message: String },

    #[error("espeak-ng has no voice `{voice}` ({message}); check `espeak.voice` in the voice's .onnx.json")]
    EspeakVoice { voice: String, message: String },

    #[error("espeak-ng is already loaded from {} in this process; it cannot be reloaded from another place", loaded.display())]
    EspeakAlreadyLoaded { loaded: PathBuf },

    #[error("no espeak-ng found (looked in: {searched}); {ESPEAK_HINT}")]
    EspeakNotFound { searched: String },

    #[error("invalid text: {reason}")]
    InvalidText { reason: String },

    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("voice config {}: line {line}, column {column}: {message}", path.display())]
    VoiceConfigSyntax { path: PathBuf, line: usize, column: usize, message: String },

    #[error("voice config {}: field `{field}` {problem}", path.display())]
    VoiceConfigField { path: PathBuf, field: String, problem: String },

    #[error("voice model {} not found; a Piper voice is a `.onnx` file with its `.onnx.json` beside it", path.display())]
    VoiceModelMissing { path: PathBuf },

    #[error("voice config {} not found beside the model; Piper voices need both `NAME.onnx` and `NAME.onnx.json`", path.display())]
    VoiceConfigMissing { path: PathBuf },

    #[error("no voice named `{name}` (installed: {installed}); pass a path to an .onnx file or run `demod-voice voices list`")]
    VoiceNotFound { name: String, installed: String },

    #[error("voice model {}: {message}", path.display())]
    VoiceModel { path: PathBuf, message: String },

    #[error("speaker `{speaker}` is not in this voice (speakers: {available})")]
    SpeakerUnknown { speaker: String, available: String },

    #[error("no ONNX Runtime library found (looked in: {searched}); {RUNTIME_HINT}")]
    RuntimeNotFound { searched: String },

    #[error("cannot use ONNX Runtime library {}: {message}; {RUNTIME_HINT}", path.display())]
    RuntimeLoad { path: PathBuf, message: String },

    #[error("ONNX Runtime: {context}: {source}")]
    Onnx {
        context: String,
        #[source]
        source: ort::Error,
    },

    #[error("cannot write WAV {}: {source}", path.display())]
    Wav {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },

    #[error("cannot read WAV {}: {source}", path.display())]
    WavRead {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },

    #[error("setup: {message}")]
    Setup { message: String },

    #[error("config {}{}: {problem}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Config { path: PathBuf, line: Option<usize>, problem: String },

    #[error("preset {}{}: {problem}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Preset { path: PathBuf, line: Option<usize>, problem: String },

    #[error("no preset named `{name}` (available: {available}); see `demod-voice presets list`")]
    PresetNotFound { name: String, available: String },

    #[error("voice profile from {}: {problem}", path.display())]
    Profile { path: PathBuf, problem: String },

    #[error("no voice profile named `{name}` (profiles: {available}); make one with `demod-voice voices add-profile NAME REF.wav`")]
    ProfileNotFound { name: String, available: String },

    #[error("dataset {}{}: {problem}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Dataset { path: PathBuf, line: Option<usize>, problem: String },

    #[error("invalid setting `{key}`: {problem}")]
    Setting { key: String, problem: String },
}

impl Error {
    /// Wrap an ONNX Runtime error with what was being done.
    pub fn onnx(context: impl Into<String>, source: ort::Error) -> Self {
        Error::Onnx { context: context.into(), source }
    }
}
