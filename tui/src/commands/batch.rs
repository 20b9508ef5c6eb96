//! `batch MANIFEST` and `batch report JOURNAL...`. On a terminal the run shows in the app's Batch screen; with
//! `--headless`, `--json-events` or without a terminal, progress goes to stderr (and events to stdout).
//!
//! Exit codes: 0 every job done (or already done), 1 some job failed or a row was invalid, 2 the manifest is
//! unusable (unreadable, every row invalid, or an invalid row with `--strict`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use demod_voice_core::batch::{self, Event, Job, Manifest, RunOptions};

use crate::cli::{BatchArgs, BatchCommand};
use crate::context::Context;
use crate::error::{usage, SomeFailed};

pub fn batch(ctx: &mut Context, args: BatchArgs) -> Result<()> {
    if let Some(BatchCommand::Report { journals, json }) = args.command {
        return report(&journals, json);
    }
    let Some(manifest_path) = args.manifest.clone() else {
        return Err(usage("give a manifest: demod-voice batch MANIFEST.csv|.jsonl|.yaml|.txt"));
    };
    let policy = batch::PathPolicy { output_dir: args.output_dir.clone(), allow_outside: args.allow_outside_paths };
    let mut manifest = Manifest::load_with(&manifest_path, &policy).map_err(|e| usage(e.to_string()))?;
    for error in &manifest.errors {
        eprintln!("invalid {}: {error}", manifest_path.display());
    }
    if manifest.jobs.is_empty() {
        return Err(usage(format!(
            "{} has no valid rows ({} invalid)",
            manifest_path.display(),
            manifest.errors.len()
        )));
    }
    if args.strict && !manifest.errors.is_empty() {
        return Err(usage(format!("{} invalid row(s) and --strict: nothing was run", manifest.errors.len())));
    }
    if args.check {
        println!(
            "{}: {} valid row(s), {} invalid",
            manifest_path.display(),
            manifest.jobs.len(),
            manifest.errors.len()
        );
        return if manifest.errors.is_empty() { Ok(()) } else { Err(SomeFailed("invalid rows".into()).into()) };
    }
    ctx.apply_speech_flags(&args.scales)?;
    let jobs: Vec<Job> = match args.shard {
        Some(shard) => std::mem::take(&mut manifest.jobs).into_iter().filter(|j| shard.contains(j)).collect(),
        None => std::mem::take(&mut manifest.jobs),
    };
    let options = RunOptions {
        jobs: args.jobs.max(1),
        fail_fast: args.fail_fast,
        timeout: args.timeout.map(Duration::from_secs_f64),
        force: args.force,
        overwrite: args.overwrite,
        journal: batch::journal_path(&manifest_path, args.state.as_deref(), args.shard),
        cancel: None,
    };
    let total = jobs.len();
    let on_terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let mut summary = if on_terminal && !args.headless && !args.json_events {
        run_in_app(ctx, &manifest_path, &jobs, options)?
    } else {
        let progress = Progress::new(total, args.json_events, ctx.global.quiet);
        let summary = batch::run_speech(&jobs, &options, &ctx.settings, &|event| progress.event(event))?;
        progress.finish();
        summary
    };
    summary.invalid = manifest.errors.len();
    summary.failures.extend(manifest.errors.iter().cloned());
    summary.failures.sort_by_key(|f| f.row);
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&summary)? + "\n";
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write report {}: {e}", path.display()))?;
    }
    eprintln!(
        "batch: {} done, {} already done or skipped, {} failed, {} invalid; {:.1} s of audio in {:.1} s (real-time factor {:.3})",
        summary.done, summary.skipped, summary.failed, summary.invalid, summary.audio_seconds, summary.wall_seconds, summary.real_time_factor
    );
    if !summary.similarity.is_empty() {
        let values: Vec<f32> = summary.similarity.values().copied().collect();
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        let low = values.iter().copied().fold(f32::INFINITY, f32::min);
        eprintln!(
            "batch: {} clone row(s): similarity to their references {mean:.2} on average (lowest {low:.2}; per row in --report)",
            values.len()
        );
    }
    for failure in &summary.failures {
        eprintln!("  {failure}");
    }
    if summary.failed > 0 || summary.invalid > 0 {
        return Err(SomeFailed(format!("{} job(s) failed, {} row(s) invalid", summary.failed, summary.invalid)).into());
    }
    Ok(())
}

/// On a terminal: the same run on a thread of its own while the app's Batch screen follows it through its progress
/// log; quitting the app cancels what has not started. The summary afterwards is the headless one.
fn run_in_app(
    ctx: &Context,
    manifest: &std::path::Path,
    jobs: &[Job],
    mut options: RunOptions,
) -> Result<batch::Summary> {
    let cancel = Arc::new(AtomicBool::new(false));
    options.cancel = Some(cancel.clone());
    let log = batch::events_path(&options.journal);
    // A previous run's log would look finished to the app before this run rewrites it.
    let _ = std::fs::remove_file(&log);
    std::thread::scope(|scope| {
        let run = scope.spawn(|| Ok(batch::run_speech(jobs, &options, &ctx.settings, &|_| {})?));
        let own = crate::app::OwnBatch { manifest: manifest.to_path_buf(), log, cancel: cancel.clone() };
        let shown = crate::app::follow_batch(ctx, own);
        cancel.store(true, Ordering::Relaxed);
        let summary = match run.join() {
            Ok(summary) => summary,
            Err(_) => Err(anyhow::anyhow!("the batch run stopped on an internal error")),
        };
        shown?;
        summary
    })
}

/// Progress on stderr (a bar on a terminal, periodic lines otherwise) and, with --json-events, events on stdout.
struct Progress {
    total: usize,
    json: bool,
    quiet: bool,
    terminal: bool,
    state: Mutex<(usize, Instant, f64)>,
}

impl Progress {
    fn new(total: usize, json: bool, quiet: bool) -> Progress {
        Progress {
            total,
            json,
            quiet,
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new((0, Instant::now(), 0.0)),
        }
    }

    fn event(&self, event: Event) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut out, &event).map(|()| writeln!(out));
            let _ = out.flush();
        }
        let ended = matches!(event, Event::Finished { .. } | Event::Failed { .. } | Event::Skipped { .. });
        if let Event::Failed { row, error, .. } = &event {
            if !self.quiet {
                eprintln!("row {row} failed: {error}");
            }
        }
        if !ended || self.quiet {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 += 1;
        if let Event::Finished { audio_seconds, .. } = event {
            state.2 += audio_seconds;
        }
        let (done, started, audio) = *state;
        let elapsed = started.elapsed().as_secs_f64();
        let eta = if done > 0 { elapsed / done as f64 * (self.total - done) as f64 } else { 0.0 };
        if self.terminal {
            let width = 30;
            let filled = done * width / self.total.max(1);
            eprint!(
                "\r[{}{}] {done}/{} jobs, {audio:.1} s audio, ETA {eta:.0} s ",
                "#".repeat(filled),
                "-".repeat(width - filled),
                self.total
            );
        } else if done == self.total || done % 10 == 0 {
            eprintln!(
                "batch: {done}/{} jobs, {audio:.1} s of audio, {elapsed:.1} s elapsed, ETA {eta:.0} s",
                self.total
            );
        }
    }

    fn finish(&self) {
        if self.terminal && !self.quiet {
            eprintln!();
        }
    }
}

fn report(journals: &[PathBuf], json: bool) -> Result<()> {
    for path in journals {
        if !path.is_file() {
            return Err(usage(format!("journal {} does not exist", path.display())));
        }
    }
    let (merged, duplicates) = batch::merge_journals(journals);
    let audio: f64 = merged.values().map(|e| e.audio_seconds).sum();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "outputs": merged.len(), "audio_seconds": audio, "duplicates": duplicates, "entries": merged }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(out, "{} outputs, {audio:.1} s of audio, from {} journal(s)", merged.len(), journals.len())?;
        for output in &duplicates {
            writeln!(out, "warning: {output} appears in more than one journal")?;
        }
    }
    Ok(())
}
