//! `demod-voice`: the command-line and terminal front-end.
//!
//! Exit codes: 0 success, 1 failure, 2 usage, input or configuration error.

mod app;
mod cli;
mod commands;
mod context;
mod devices;
mod error;
mod health;
mod interrupt;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use demod_voice_core::Error as CoreError;

use crate::cli::{Cli, Command};
use crate::commands::{batch, bench, clone, config, convert, phonemize, preprocess, setup, similarity, speak, voices};
use crate::context::Context;
use crate::error::{exit_code, is_broken_pipe, one_line};

fn main() -> ExitCode {
    interrupt::install();
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        // `demod-voice` alone: the app on a terminal, the usage elsewhere.
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
            return finish(Context::new(cli.global.clone()).and_then(|context| app::run(&context)));
        }
        eprintln!("error: no subcommand given; see `demod-voice --help` (on a terminal, `demod-voice` opens the app)");
        return ExitCode::from(2);
    };
    // `health` still runs on a broken config file, on the defaults, and reports the problem as a check.
    if let Command::Health(args) = &command {
        if let Err(problem) = Context::new(cli.global.clone()) {
            let args = cli::HealthArgs { json: args.json, deep: args.deep };
            let result = Context::with_defaults(cli.global.clone())
                .and_then(|context| commands::health::health_with_config_error(&context, args, one_line(&problem)));
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {}", one_line(&error));
                    ExitCode::from(1)
                }
            };
        }
    }
    let result = Context::new(cli.global.clone()).and_then(|mut context| {
        // The full-screen app owns the terminal: log lines on stderr would tear it.
        if !matches!(command, Command::Tui) {
            init_logging(&context)?;
        }
        for warning in &context.settings.warnings {
            tracing::warn!("{warning}");
        }
        run(&mut context, command)
    });
    finish(result)
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`demod-voice ... | head`): not an error worth reporting.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Tui => app::run(context),
        Command::Speak(args) => speak::speak(context, args),
        Command::PiperInfer(args) => speak::piper_infer(context, args),
        Command::Clone(args) => clone::clone(context, args),
        Command::XttsZeroShot(args) => clone::zero_shot(context, args),
        Command::Phonemize(args) => phonemize::phonemize(context, args),
        Command::Voices { command } => voices::voices(context, command),
        Command::Setup(args) => setup::setup(context, args),
        Command::Bench(args) => bench::bench(context, args),
        Command::Config { command } => config::config(context, command),
        Command::Presets { command } => config::presets(context, command),
        Command::Health(args) => commands::health::health(context, args),
        Command::Convert(args) => convert::convert(context, args),
        Command::Preprocess(args) => preprocess::preprocess(context, args),
        Command::Batch(args) => batch::batch(context, args),
        Command::Similarity(args) => similarity::similarity(context, args),
        Command::Serve(args) => serve::serve(context, args),
        Command::Models { command } => commands::models::models(context, command),
    }
}

/// Logging: `-q`/`-v` win, then `RUST_LOG`, then the config's `log.level`; `log.file` adds a file.
/// Log lines go to stderr (or the file), never to stdout, which may carry audio or JSON.
fn init_logging(context: &Context) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, EnvFilter, Layer};

    let global = &context.global;
    let log = &context.settings.config.log;
    let filter = || {
        let filter = if global.quiet {
            EnvFilter::new("error")
        } else if global.verbose > 0 {
            EnvFilter::new(match global.verbose {
                1 => "info",
                2 => "debug",
                _ => "trace",
            })
        } else {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(log.level.as_str()))
        };
        // ONNX Runtime's own chatter stays at warn unless tracing everything.
        if global.verbose >= 3 {
            filter
        } else {
            filter.add_directive("ort=warn".parse().expect("static directive"))
        }
    };
    let stderr = fmt::layer().with_writer(std::io::stderr).with_target(false).without_time().with_filter(filter());
    let file_layer = match &log.file {
        Some(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|source| {
                CoreError::Config {
                    path: context.settings.path.clone().unwrap_or_default(),
                    line: None,
                    problem: format!("`log.file` {} cannot be opened: {source}", path.display()),
                }
            })?;
            Some(fmt::layer().with_writer(std::sync::Mutex::new(file)).with_ansi(false).with_filter(filter()))
        }
        None => None,
    };
    tracing_subscriber::registry().with(stderr).with(file_layer).init();
    Ok(())
}

/// Unit tests check that device callbacks never allocate: this allocator aborts on any allocation made inside
/// `assert_no_alloc(..)` (and is the system allocator everywhere else).
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;
