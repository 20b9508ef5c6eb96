//! `demod-voice`: the command-line and terminal front-end.
//!
//! Exit codes: 0 success, 1 failure, 2 usage or input error.

mod bench;
mod cli;
mod context;
mod speak;

use std::process::ExitCode;

use clap::Parser;
use demod_voice_core::Error as CoreError;

use crate::cli::{Cli, Command};
use crate::context::Context;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    let context = Context::new(cli.global.clone());
    let result = match cli.command {
        Command::Speak(args) => speak::speak(&context, args),
        Command::PiperInfer(args) => speak::piper_infer(&context, args),
        Command::Phonemize(args) => speak::phonemize(&context, args),
        Command::Voices { command } => speak::voices(&context, command),
        Command::Setup(args) => speak::setup(&context, args),
        Command::Bench(args) => bench::bench(&context, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// The error and its causes on one line, without repeating a cause its parent already quotes.
fn one_line(error: &anyhow::Error) -> String {
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

/// 2 for problems with what the user gave us, 1 for everything else.
fn exit_code(error: &anyhow::Error) -> u8 {
    if error.is::<speak::UsageError>() {
        return 2;
    }
    match error.downcast_ref::<CoreError>() {
        Some(
            CoreError::Setting { .. }
            | CoreError::InvalidText { .. }
            | CoreError::SpeakerUnknown { .. },
        ) => 2,
        _ => 1,
    }
}

fn init_logging(global: &cli::GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let default = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    // -v/-q win over RUST_LOG only when given; RUST_LOG refines the default otherwise.
    let filter = if global.verbose > 0 || global.quiet {
        EnvFilter::new(default)
    } else {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
    };
    // ONNX Runtime's own chatter stays at warn unless asked for explicitly.
    let filter = filter.add_directive("ort=warn".parse().expect("static directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
