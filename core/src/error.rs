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

/// Everything that can go wrong in the core, each with the details a one-line message needs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The espeak-ng data folder has no `phontab`.
    #[error("espeak-ng data not found at {}: the folder has no `phontab`; {ESPEAK_HINT}", path.display())]
    EspeakData {
        /// The file or folder concerned.
        path: PathBuf,
    },

    /// The espeak-ng shared library could not be loaded.
    #[error("cannot load espeak-ng library {}: {source}; {ESPEAK_HINT}", path.display())]
    EspeakLibrary {
        /// The file or folder concerned.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: libloading::Error,
    },

    /// A library that is not espeak-ng (a symbol is missing).
    #[error("{} is not an espeak-ng library (missing symbol `{symbol}`); {ESPEAK_HINT}", path.display())]
    EspeakSymbol {
        /// The file or folder concerned.
        path: PathBuf,
        /// The missing symbol.
        symbol: String,
    },

    /// espeak-ng refused to start with its data.
    #[error("espeak-ng failed to start with data {}: {message}; {ESPEAK_HINT}", path.display())]
    EspeakInit {
        /// The file or folder concerned.
        path: PathBuf,
        /// What went wrong, as the library said it.
        message: String,
    },

    /// espeak-ng has no voice of that name.
    #[error("espeak-ng has no voice `{voice}` ({message}); check `espeak.voice` in the voice's .onnx.json")]
    EspeakVoice {
        /// The espeak-ng voice asked for.
        voice: String,
        /// What went wrong, as the library said it.
        message: String,
    },

    /// espeak-ng was loaded from another place earlier in this process.
    #[error("espeak-ng is already loaded from {} in this process; it cannot be reloaded from another place", loaded.display())]
    EspeakAlreadyLoaded {
        /// The library already loaded.
        loaded: PathBuf,
    },

    /// No espeak-ng anywhere it was looked for.
    #[error("no espeak-ng found (looked in: {searched}); {ESPEAK_HINT}")]
    EspeakNotFound {
        /// Where it looked, in order.
        searched: String,
    },

    /// Text that cannot be spoken.
    #[error("invalid text: {reason}")]
    InvalidText {
        /// What is wrong with it.
        reason: String,
    },

    /// A file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or folder concerned.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: std::io::Error,
    },

    /// A file or folder could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder concerned.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: std::io::Error,
    },

    /// A voice's `.onnx.json` is not valid JSON or misses a required field.
    #[error("voice config {}: line {line}, column {column}: {message}", path.display())]
    VoiceConfigSyntax {
        /// The file or folder concerned.
        path: PathBuf,
        /// The 1-based line, when known.
        line: usize,
        /// The 1-based column.
        column: usize,
        /// What went wrong, as the library said it.
        message: String,
    },

    /// A field of a voice's `.onnx.json` has a value that cannot work.
    #[error("voice config {}: field `{field}` {problem}", path.display())]
    VoiceConfigField {
        /// The file or folder concerned.
        path: PathBuf,
        /// The field at fault (dotted).
        field: String,
        /// What is wrong.
        problem: String,
    },

    /// The `.onnx` file of a voice does not exist.
    #[error("voice model {} not found; a Piper voice is a `.onnx` file with its `.onnx.json` beside it", path.display())]
    VoiceModelMissing {
        /// The file or folder concerned.
        path: PathBuf,
    },

    /// The `.onnx.json` beside a voice model does not exist.
    #[error("voice config {} not found beside the model; Piper voices need both `NAME.onnx` and `NAME.onnx.json`", path.display())]
    VoiceConfigMissing {
        /// The file or folder concerned.
        path: PathBuf,
    },

    /// No installed voice of that name.
    #[error("no voice named `{name}` (installed: {installed}); pass a path to an .onnx file or run `demod-voice voices list`")]
    VoiceNotFound {
        /// The name asked for.
        name: String,
        /// The installed voices, comma-separated.
        installed: String,
    },

    /// A neural conversion model that is not what it should be, or not installed.
    #[error("model {}: {problem}", path.display())]
    ModelSignature {
        /// The file or folder concerned.
        path: PathBuf,
        /// What is wrong (with the inputs it has and those expected) and what to do.
        problem: String,
    },

    /// A voice that is not installed and cannot be installed now.
    #[error("voice `{name}` is not installed: {problem}")]
    VoiceUnavailable {
        /// The name asked for.
        name: String,
        /// Why it cannot be installed, and what to do.
        problem: String,
    },

    /// ONNX Runtime could not load a voice model.
    #[error("voice model {}: {message}", path.display())]
    VoiceModel {
        /// The file or folder concerned.
        path: PathBuf,
        /// What went wrong, as the library said it.
        message: String,
    },

    /// A speaker name or id the voice does not have.
    #[error("speaker `{speaker}` is not in this voice (speakers: {available})")]
    SpeakerUnknown {
        /// The speaker asked for.
        speaker: String,
        /// What there is instead, comma-separated.
        available: String,
    },

    /// No ONNX Runtime library anywhere it was looked for.
    #[error("no ONNX Runtime library found (looked in: {searched}); {RUNTIME_HINT}")]
    RuntimeNotFound {
        /// Where it looked, in order.
        searched: String,
    },

    /// A library that is not a usable ONNX Runtime.
    #[error("cannot use ONNX Runtime library {}: {message}; {RUNTIME_HINT}", path.display())]
    RuntimeLoad {
        /// The file or folder concerned.
        path: PathBuf,
        /// What went wrong, as the library said it.
        message: String,
    },

    /// ONNX Runtime failed while doing something.
    #[error("ONNX Runtime: {context}: {source}")]
    Onnx {
        /// What was being done.
        context: String,
        #[source]
        /// The underlying error.
        source: ort::Error,
    },

    /// A WAV file could not be written.
    #[error("cannot write WAV {}: {source}", path.display())]
    Wav {
        /// The file or folder concerned.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: hound::Error,
    },

    /// A WAV file could not be read.
    #[error("cannot read WAV {}: {source}", path.display())]
    WavRead {
        /// The file or folder concerned.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: hound::Error,
    },

    /// A WAV file declares a format no recording has (an absurd rate, too many channels, odd sample sizes).
    #[error("WAV {} {problem}; convert it (e.g. `sox in.wav -r 48000 out.wav`) first", path.display())]
    WavFormat {
        /// The file concerned.
        path: PathBuf,
        /// What it declares and what is read.
        problem: String,
    },

    /// The voice catalogue cannot be had or read.
    #[error("voice catalogue {origin}: {problem}")]
    Catalog {
        /// Its URL or cached file.
        origin: String,
        /// What is wrong and what to do.
        problem: String,
    },

    /// A download failed (after its retries).
    #[error("download of {url} failed: {problem}")]
    Download {
        /// What was being fetched.
        url: String,
        /// What went wrong and what to do.
        problem: String,
    },

    /// A downloaded file does not match the catalogue; nothing was installed.
    #[error(
        "{file} of voice {key} from {url} does not match the catalogue ({problem}); nothing was installed: run \
             `demod-voice voices catalog --refresh` and try again"
    )]
    Checksum {
        /// The voice.
        key: String,
        /// The file's name.
        file: String,
        /// Where it came from.
        url: String,
        /// Size or digest, found and expected.
        problem: String,
    },

    /// Installing assets failed.
    #[error("setup: {message}")]
    Setup {
        /// What went wrong, as the library said it.
        message: String,
    },

    /// The config file (or a value laid over it) is invalid.
    #[error("config {}{}: {problem}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Config {
        /// The file or folder concerned.
        path: PathBuf,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        problem: String,
    },

    /// A preset file is invalid.
    #[error("preset {}{}: {problem}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Preset {
        /// The file or folder concerned.
        path: PathBuf,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        problem: String,
    },

    /// No preset of that name.
    #[error("no preset named `{name}` (available: {available}); see `demod-voice presets list`")]
    PresetNotFound {
        /// The name asked for.
        name: String,
        /// What there is instead, comma-separated.
        available: String,
    },

    /// A voice profile (or its reference recording) is unusable.
    #[error("voice profile from {}: {problem}", path.display())]
    Profile {
        /// The file or folder concerned.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// No voice profile of that name.
    #[error("no voice profile named `{name}` (profiles: {available}); make one with `demod-voice voices add-profile NAME REF.wav`")]
    ProfileNotFound {
        /// The name asked for.
        name: String,
        /// What there is instead, comma-separated.
        available: String,
    },

    /// A training-data folder or its `metadata.csv` is unusable.
    #[error("dataset {}{}: {problem}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Dataset {
        /// The file or folder concerned.
        path: PathBuf,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        problem: String,
    },

    /// Another process is running the same batch (it holds the lock beside the journal).
    #[error("batch {} is already running (pid {pid}, lock {}); wait for it, or stop it first", journal.display(), lock.display())]
    BatchLocked {
        /// The journal both runs would write.
        journal: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The process holding it, as it wrote there (`unknown` if unreadable).
        pid: String,
    },

    /// A setting has a value outside what it accepts.
    #[error("invalid setting `{key}`: {problem}")]
    Setting {
        /// The dotted setting key.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

impl Error {
    /// Wrap an ONNX Runtime error with what was being done.
    pub fn onnx(context: impl Into<String>, source: ort::Error) -> Self {
        Error::Onnx { context: context.into(), source }
    }
}
