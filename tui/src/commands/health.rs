//! `demod-voice health [--json] [--deep]`: the checks of [`crate::health`], printed; exit 1 when any is an error.

use std::io::Write;

use anyhow::Result;

use crate::cli::HealthArgs;
use crate::context::Context;
use crate::health::{collect, Report, Status};

/// Run the checks. `config_problem` is set when the config file could not be loaded (health still runs, on
/// the built-in defaults, and reports it).
pub fn health(ctx: &Context, args: HealthArgs) -> Result<()> {
    let report = collect(ctx, args.deep, None);
    print(&report, args.json)
}

pub fn health_with_config_error(ctx: &Context, args: HealthArgs, problem: String) -> Result<()> {
    let report = collect(ctx, args.deep, Some(problem));
    print(&report, args.json)
}

fn print(report: &Report, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "demod-voice {}: {}", report.version, status_word(report.status))?;
        for c in &report.checks {
            writeln!(out, "{:<8} {:<10} {}", status_word(c.status), c.name, c.message)?;
            if let Some(hint) = &c.hint {
                writeln!(out, "{:<8} {:<10} -> {hint}", "", "")?;
            }
        }
    }
    if report.status == Status::Error {
        return Err(anyhow::anyhow!("health: some checks failed (see above)"));
    }
    Ok(())
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Error => "error",
    }
}
