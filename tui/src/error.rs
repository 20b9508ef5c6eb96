//! How a command's failure reaches the user: one line on stderr and an exit code.
//!
//! Exit codes: 0 success, 1 failure (missing or broken files, runtime problems, a failed job or check), 2 usage,
//! input or configuration error.

use demod_voice_core::Error as CoreError;

/// A problem with what the user asked for (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::error::Error for UsageError {}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A usage error with `message` (exit code 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Some jobs or rows failed; the summary has said which (exit code 1).
#[derive(Debug)]
pub struct SomeFailed(pub String);

impl std::fmt::Display for SomeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SomeFailed {}

/// The error and its causes on one line, without repeating a cause its parent already quotes.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text.replace('\n', " ")
}

/// True when the reader of standard output went away (`demod-voice ... | head`): not worth reporting.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind));
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// 2 for problems with what the user gave us (arguments, text, config, presets), 1 for everything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.is::<UsageError>() {
        return 2;
    }
    match error.downcast_ref::<CoreError>() {
        Some(
            CoreError::Setting { .. }
            | CoreError::InvalidText { .. }
            | CoreError::SpeakerUnknown { .. }
            | CoreError::Config { .. }
            | CoreError::Preset { .. }
            | CoreError::PresetNotFound { .. }
            | CoreError::Profile { .. }
            | CoreError::ProfileNotFound { .. }
            | CoreError::Dataset { .. }
            | CoreError::WavFormat { .. }
            | CoreError::WavRead { .. }
            | CoreError::ModelSignature { .. },
        ) => 2,
        _ => 1,
    }
}
