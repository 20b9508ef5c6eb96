//! The Batch screen: run a manifest on a background thread, or follow a run another process does through its
//! progress log; a job table, progress, failures. [`BatchView`] is the screen's state and its own widget.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Row, Table, Widget, Wrap};

use crate::app::messages::{AppEvent, Job};
use crate::app::{App, Screen};
use crate::context::Context;
use demod_voice_core::batch::{self, Event as BatchEvent, Manifest, RunOptions};
use ratatui::Terminal;

/// Where one batch job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStatus {
    Pending,
    Running,
    Done { audio_seconds: f64, seconds: f64 },
    Skipped(String),
    Failed(String),
}

/// One row of the batch table.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub row: usize,
    pub output: String,
    pub status: JobStatus,
}

/// The Batch screen's state.
#[derive(Debug, Default)]
pub struct BatchView {
    pub manifest: Option<PathBuf>,
    pub rows: Vec<BatchRow>,
    /// Invalid manifest rows, as text.
    pub invalid: Vec<String>,
    pub running: bool,
    pub started: Option<std::time::Instant>,
    /// Seconds the finished run took.
    pub elapsed: Option<f64>,
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The run belongs to another process; this app only follows its progress log (`cancel` stops following).
    pub watching: bool,
    /// Jobs a watched run announced (its rows may not all be known yet when following a log without its manifest).
    pub expected: Option<usize>,
    /// First table row shown.
    pub scroll: usize,
    pub error: Option<String>,
    /// The run this process does itself and the Batch screen follows (`demod-voice batch` on a terminal): `c`
    /// cancels it rather than only stopping the following.
    pub run_cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl BatchView {
    /// Jobs finished one way or another.
    pub fn processed(&self) -> usize {
        self.rows.iter().filter(|r| !matches!(r.status, JobStatus::Pending | JobStatus::Running)).count()
    }

    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| matches!(r.status, JobStatus::Failed(_))).count()
    }

    /// Audio seconds made and the compute seconds they took.
    pub fn audio_and_compute(&self) -> (f64, f64) {
        self.rows.iter().fold((0.0, 0.0), |(a, c), r| match r.status {
            JobStatus::Done { audio_seconds, seconds } => (a + audio_seconds, c + seconds),
            _ => (a, c),
        })
    }

    /// Jobs in the run: the rows known, or what the run announced if that is more.
    pub fn total(&self) -> usize {
        self.rows.len().max(self.expected.unwrap_or(0))
    }

    pub(crate) fn apply(&mut self, event: demod_voice_core::batch::Event) {
        use demod_voice_core::batch::Event;
        let (row, output, status) = match event {
            Event::Started { row, output } => (row, output, JobStatus::Running),
            Event::Finished { row, output, audio_seconds, seconds } => {
                (row, output, JobStatus::Done { audio_seconds, seconds })
            }
            Event::Skipped { row, output, reason } => (row, output, JobStatus::Skipped(reason)),
            Event::Failed { row, output, error } => (row, output, JobStatus::Failed(error)),
        };
        // Rows are kept in manifest order, so the row number finds its place by binary search; a row not known
        // yet (a log followed without its manifest) takes its place there.
        match self.rows.binary_search_by_key(&row, |r| r.row) {
            Ok(index) => self.rows[index].status = status,
            Err(index) => self.rows.insert(index, BatchRow { row, output, status }),
        }
    }
}

impl App {
    pub(crate) fn start_batch(&mut self, manifest: PathBuf) -> Job {
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.batch = BatchView {
            manifest: Some(manifest.clone()),
            running: true,
            started: Some(std::time::Instant::now()),
            cancel: cancel.clone(),
            ..BatchView::default()
        };
        self.status = format!("running {} ...", manifest.display());
        Job::RunBatch { manifest, cancel }
    }

    pub(crate) fn start_watch(&mut self, manifest: PathBuf) -> Job {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.batch = BatchView {
            manifest: Some(manifest.clone()),
            running: true,
            watching: true,
            started: Some(std::time::Instant::now()),
            cancel: stop.clone(),
            ..BatchView::default()
        };
        self.status = format!("following the run of {} ...", manifest.display());
        Job::WatchBatch { manifest, stop }
    }

    /// Batch progress arrived.
    pub fn batch_event(&mut self, event: AppEvent) {
        match event {
            AppEvent::BatchRun { started_unix, pid, jobs } => {
                self.batch.expected = Some(jobs);
                let now =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                let ago = Duration::from_secs_f64((now - started_unix).max(0.0));
                self.batch.started = Instant::now().checked_sub(ago).or(self.batch.started);
                self.status = format!("following the run of process {pid}; c stops following");
            }
            AppEvent::BatchNote(note) => self.status = note,
            AppEvent::BatchLoaded { rows, invalid } => {
                self.batch.rows = rows
                    .into_iter()
                    .map(|(row, output)| BatchRow { row, output, status: JobStatus::Pending })
                    .collect();
                self.batch.invalid = invalid;
            }
            AppEvent::Batch(event) => self.batch.apply(event),
            AppEvent::BatchDone(outcome) => {
                self.batch.running = false;
                self.batch.elapsed = self.batch.started.map(|s| s.elapsed().as_secs_f64());
                let own_run = self.batch.run_cancel.as_ref();
                let cancelled = own_run.unwrap_or(&self.batch.cancel).load(std::sync::atomic::Ordering::Relaxed);
                let verb = match (self.batch.watching && own_run.is_none(), cancelled) {
                    (true, true) => "no longer watched",
                    (true, false) => "watched batch finished",
                    (false, true) => "batch cancelled",
                    (false, false) => "batch finished",
                };
                self.status = match outcome {
                    Ok(()) => format!(
                        "{verb}: {} of {} processed, {} failed, {} invalid row(s){}",
                        self.batch.processed(),
                        self.batch.rows.len(),
                        self.batch.failed(),
                        self.batch.invalid.len(),
                        match (own_run.is_some(), self.batch.failed() > 0) {
                            (true, _) => "; q quits",
                            (false, true) => "; R runs it again (done jobs are skipped)",
                            (false, false) => "",
                        }
                    ),
                    Err(problem) => {
                        self.batch.error = Some(problem.clone());
                        format!("batch failed: {problem}")
                    }
                };
            }
            _ => {}
        }
    }
}

/// The Batch screen: a pure function of the batch's own state.
impl Widget for &BatchView {
    fn render(self, area: Rect, buf: &mut Buffer) {
        batch(self, area, buf)
    }
}

pub(crate) fn batch(view: &BatchView, area: Rect, buf: &mut Buffer) {
    let block = Block::new()
        .borders(Borders::ALL)
        .title(" Batch (o: open and run, w: watch another run, c: cancel, R: run again) ");
    let Some(manifest) = &view.manifest else {
        Paragraph::new(
            "no batch yet: press o and type the path of a manifest (.csv, .jsonl, .yaml or .txt) to run it here, \
             or w to follow a `demod-voice batch` that runs elsewhere on this machine",
        )
        .wrap(Wrap { trim: true })
        .block(block)
        .render(area, buf);
        return;
    };
    let inner = block.inner(area);
    block.render(area, buf);
    let failures: Vec<Line> = view
        .rows
        .iter()
        .filter_map(|r| match &r.status {
            JobStatus::Failed(error) => Some(Line::from(format!("row {} ({}): {error}", r.row, r.output))),
            _ => None,
        })
        .chain(view.invalid.iter().map(|invalid| Line::from(format!("invalid {invalid}"))))
        .chain(view.error.iter().map(|error| Line::from(error.clone())))
        .collect();
    let failure_height = if failures.is_empty() { 0 } else { (failures.len() as u16).min(6) + 2 };
    let [head, gauge, table_area, failure_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(failure_height),
    ])
    .areas(inner);

    let total = view.total();
    let processed = view.processed();
    let elapsed = view.elapsed.or_else(|| view.started.map(|s| s.elapsed().as_secs_f64())).unwrap_or(0.0);
    let (audio, compute) = view.audio_and_compute();
    let rtf = if audio > 0.0 { format!("{:.3}", compute / audio) } else { "-".into() };
    let eta = if view.running && processed > 0 && processed < total {
        format!("{:.0} s", elapsed / processed as f64 * (total - processed) as f64)
    } else {
        "-".into()
    };
    let state = match (view.running, view.watching) {
        (true, true) => "watching",
        (true, false) => "running",
        (false, _) => "stopped",
    };
    Line::from(format!(
        "{}  {state}  {processed}/{total} jobs, {} failed, {} invalid  ETA {eta}  RTF {rtf}  {:.1} s audio",
        manifest.display(),
        view.failed(),
        view.invalid.len(),
        audio
    ))
    .render(head, buf);
    let ratio = if total == 0 { 0.0 } else { processed as f64 / total as f64 };
    Gauge::default()
        .ratio(ratio.clamp(0.0, 1.0))
        .label(format!("{:.0}%", ratio * 100.0))
        .gauge_style(Style::new().fg(Color::Green))
        .render(gauge, buf);

    // Only the rows that fit are built, so a manifest of any size draws in the same time.
    let visible = table_area.height.saturating_sub(1) as usize;
    let start = view.scroll.min(total.saturating_sub(1));
    let rows = view.rows.iter().skip(start).take(visible).map(|r| {
        let (status, detail, color) = match &r.status {
            JobStatus::Pending => ("pending", String::new(), Color::DarkGray),
            JobStatus::Running => ("running", String::new(), Color::Yellow),
            JobStatus::Done { audio_seconds, seconds } => {
                ("done", format!("{audio_seconds:.1} s audio in {seconds:.1} s"), Color::Green)
            }
            JobStatus::Skipped(reason) => ("skipped", reason.clone(), Color::Blue),
            JobStatus::Failed(error) => ("failed", error.clone(), Color::Red),
        };
        Row::new([r.row.to_string(), status.to_string(), r.output.clone(), detail]).style(Style::new().fg(color))
    });
    Table::new(rows, [Constraint::Length(6), Constraint::Length(8), Constraint::Length(28), Constraint::Min(0)])
        .header(Row::new(["ROW", "STATUS", "OUTPUT", "DETAIL"]).style(Style::new().add_modifier(Modifier::BOLD)))
        .render(table_area, buf);
    if !failures.is_empty() {
        Paragraph::new(failures)
            .wrap(Wrap { trim: true })
            .style(Style::new().fg(Color::Red))
            .block(Block::new().borders(Borders::TOP).title(" Problems "))
            .render(failure_area, buf);
    }
}

/// A batch run from the Batch screen: every job of `manifest` with the configured defaults, one worker, progress through
/// `events`, stopping early when `cancel` is set. `loaded` hears the valid jobs and the invalid rows first.
pub(crate) fn run_batch(
    ctx: &mut Context,
    manifest_path: &std::path::Path,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    loaded: impl FnOnce(&[batch::Job], &[batch::RowError]),
    events: &(dyn Fn(BatchEvent) + Sync),
) -> Result<batch::Summary> {
    let manifest = Manifest::load(manifest_path).map_err(|e| crate::error::usage(e.to_string()))?;
    loaded(&manifest.jobs, &manifest.errors);
    ctx.check()?;
    let options =
        RunOptions { cancel: Some(cancel), ..RunOptions::sequential(batch::journal_path(manifest_path, None, None)) };
    let mut summary = batch::run_speech(&manifest.jobs, &options, &ctx.settings, events)?;
    summary.invalid = manifest.errors.len();
    Ok(summary)
}

/// Follow the progress log of a batch that another process runs, until the run ends, its process is gone, or
/// `stop` is set. `path` is the manifest (whose log sits beside it), or the log itself (`.events.jsonl`, for runs
/// with `--state` or `--shard`; its rows then appear as the run reaches them).
pub(crate) fn watch_batch(path: &std::path::Path, stop: &AtomicBool, sender: &Sender<AppEvent>) -> Result<()> {
    use demod_voice_core::batch::LogLine;
    let given_log = path.to_string_lossy().ends_with(".events.jsonl");
    let (rows, invalid): (Vec<(usize, String)>, Vec<String>) = if given_log {
        (Vec::new(), Vec::new())
    } else {
        let loaded = batch::Manifest::load(path).map_err(|e| crate::error::usage(e.to_string()))?;
        (
            loaded.jobs.iter().map(|j| (j.row, j.output_as_written.clone())).collect(),
            loaded.errors.iter().map(ToString::to_string).collect(),
        )
    };
    let send_rows = || {
        let _ = sender.send(AppEvent::BatchLoaded { rows: rows.clone(), invalid: invalid.clone() });
    };
    send_rows();
    let manifest = path;
    let log = if given_log { path.to_path_buf() } else { batch::events_path(&batch::journal_path(path, None, None)) };
    let mut reader = batch::EventLogReader::new(log.clone());
    let mut pid = None;
    let mut waiting_said = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Checked before reading, so the lines a finished process wrote last are still read.
        let process_gone = pid.is_some_and(|pid| !process_alive(pid));
        match reader.poll().with_context(|| format!("reading {}", log.display()))? {
            None if !waiting_said => {
                waiting_said = true;
                let note = if given_log {
                    format!("waiting for a run to write {}", log.display())
                } else {
                    format!(
                        "waiting for `demod-voice batch {}` to start (no progress log at {} yet)",
                        manifest.display(),
                        log.display()
                    )
                };
                let _ = sender.send(AppEvent::BatchNote(note));
            }
            None => {}
            Some(lines) => {
                for line in lines {
                    match line {
                        LogLine::Run { pid: run_pid, started_unix, jobs } => {
                            // A new run rewrote the log: every row starts over.
                            pid = Some(run_pid);
                            send_rows();
                            let _ = sender.send(AppEvent::BatchRun { started_unix, pid: run_pid, jobs });
                        }
                        LogLine::Job(event) => {
                            let _ = sender.send(AppEvent::Batch(event));
                        }
                        LogLine::End { .. } => return Ok(()),
                    }
                }
            }
        }
        if process_gone {
            anyhow::bail!(
                "the run (process {}) ended without finishing its log: it was killed or crashed; run it again to resume",
                pid.unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether process `pid` still exists.
pub(crate) fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists and may be signalled; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Seconds per frame of drawing the Batch screen with `jobs` jobs (half done, every tenth failed) on an off-screen
/// terminal of `width` x `height`, for `frames` frames; for `bench --app-frame`.
pub fn batch_frame_times(jobs: usize, width: u16, height: u16, frames: usize) -> Result<Vec<f64>> {
    let mut app = App::new(Vec::new(), Vec::new(), Vec::new(), PathBuf::from("."));
    app.screen = Screen::Batch;
    let _ = app.start_batch(PathBuf::from("manifest.csv"));
    let rows = (1..=jobs).map(|row| (row, format!("out/{row:06}.wav"))).collect();
    app.batch_event(AppEvent::BatchLoaded { rows, invalid: Vec::new() });
    for row in 1..=jobs / 2 {
        let output = format!("out/{row:06}.wav");
        app.batch.apply(if row % 10 == 0 {
            demod_voice_core::batch::Event::Failed { row, output, error: "voice not installed".into() }
        } else {
            demod_voice_core::batch::Event::Finished { row, output, audio_seconds: 3.0, seconds: 0.1 }
        });
    }
    let mut terminal = Terminal::new(ratatui::backend::TestBackend::new(width, height))?;
    let mut times = Vec::with_capacity(frames);
    for frame in 0..frames {
        app.batch.scroll = frame * 97 % jobs.max(1);
        let started = std::time::Instant::now();
        terminal.draw(|f| f.render_widget(&app, f.area()))?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(times)
}
