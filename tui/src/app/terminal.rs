//! The real terminal: opening the app on it, restoring it on every way out (panics included), keeping stderr off
//! the screen, and the thread that turns key presses and ticks into events.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ratatui::crossterm::event::{self, Event};

use super::jobs::{dispatch, guarded, lock, quiet_context, Shared, JOB_THREAD};
use super::messages::{AppEvent, Job};
use super::screens::live::device_list;
use super::screens::speech::kept_voice;
use super::screens::synthesize::OutputInfo;
use super::{app_from_context, run_loop};
use crate::context::Context;

/// A batch this process runs on another thread, for the app to follow from the start (`demod-voice batch` on a
/// terminal).
#[derive(Debug, Clone)]
pub struct OwnBatch {
    /// The manifest (shown, and what `R` runs again).
    pub manifest: PathBuf,
    /// The run's progress log, which the app follows.
    pub log: PathBuf,
    /// Stops the run after its running job (`c`, or quitting the app).
    pub cancel: Arc<AtomicBool>,
}

/// Open the app on the real terminal; the terminal is restored on every way out, panics included.
pub fn run(ctx: &Context) -> Result<()> {
    run_with(ctx, None)
}

/// Open the app on its Batch screen, following `batch` as it runs.
pub fn follow_batch(ctx: &Context, batch: OwnBatch) -> Result<()> {
    run_with(ctx, Some(batch))
}

fn run_with(ctx: &Context, own_batch: Option<OwnBatch>) -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::error::usage(
            "the terminal app needs a terminal; use the subcommands (`demod-voice --help`) in scripts",
        ));
    }
    let mut app = app_from_context(ctx)?;
    app.live.inputs = device_list(Vec::new());
    app.live.outputs = device_list(Vec::new());
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A job's panic is caught and shown in the app (see `guarded`); any other ends the app, terminal restored.
        let thread = std::thread::current();
        // Panics the app catches and shows itself: a job's, and the real-time worker's (reported in its stats).
        if !matches!(thread.name(), Some(JOB_THREAD) | Some(demod_voice_core::realtime::RT_WORKER_THREAD)) {
            restore_terminal();
            restore_stderr();
            previous_hook(info);
            // A helper thread (input, sound, devices) that dies leaves an app that cannot work on a terminal that
            // is no longer the app's: end the process rather than keep running blind. The main thread's panic
            // ends it anyway.
            if thread.name() != Some("main") {
                std::process::exit(101);
            }
        }
    }));
    // Sound libraries print to stderr (ALSA does, when a device is missing), which would tear the screen: while
    // the app is up, stderr goes to a log file.
    let log = ctx.settings.dirs.cache.join("app-stderr.log");
    let _stderr = StderrRedirect::to(&log);
    let shared = Shared::default();
    match crate::devices::Playback::open(ctx.settings.config.audio.output_device.as_deref()) {
        Ok(playback) => {
            app.output =
                Ok(OutputInfo { device: playback.device.clone(), rate: playback.rate, state: playback.state.clone() });
            *lock(&shared.playback) = Some(playback);
        }
        Err(problem) => {
            app.status = format!("no audio output ({problem}); Ctrl-S saves to WAV");
            app.output = Err(problem);
        }
    }
    let global = ctx.global.clone();
    if app.output.is_ok() {
        // Load the voice Speak will use now, so the first Speak does not wait for the model.
        let (shared, global) = (shared.clone(), global.clone());
        let voice = app.voices.first().map(|v| v.name.clone());
        let _ = std::thread::Builder::new().name(JOB_THREAD.into()).spawn(move || {
            let _ = guarded(|| {
                let ctx = quiet_context(&global)?;
                kept_voice(&shared, &ctx, voice.as_deref()).map(drop)
            });
        });
    }
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    crate::interrupt::APP_ACTIVE.store(true, std::sync::atomic::Ordering::SeqCst);
    let (sender, receiver) = mpsc::channel();
    spawn_input_thread(sender.clone());

    let mut spawn = |job| {
        let sender: Sender<AppEvent> = sender.clone();
        let global = global.clone();
        let shared = shared.clone();
        // The job waits in a slot the thread takes it from: if no thread can be started (an exhausted system),
        // it runs here instead. The screen pauses while it does, but the job finishes and reports as usual.
        let slot = Arc::new(Mutex::new(Some(job)));
        let taken = Arc::clone(&slot);
        let take = move || taken.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (thread_global, thread_shared, thread_sender) = (global.clone(), shared.clone(), sender.clone());
        let spawned = std::thread::Builder::new().name(JOB_THREAD.into()).spawn(move || {
            if let Some(job) = take() {
                dispatch(job, &thread_global, &thread_shared, &thread_sender);
            }
        });
        if spawned.is_err() {
            if let Some(job) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                dispatch(job, &global, &shared, &sender);
            }
        }
    };
    if let Some(own) = own_batch {
        app.screen = super::Screen::Batch;
        let job = app.start_watch(own.log);
        app.batch.manifest = Some(own.manifest);
        app.batch.run_cancel = Some(own.cancel);
        spawn(job);
    }
    // Listing devices can take a while (some hosts open each one to ask): the Live screen's pickers fill in when
    // it is done.
    spawn(Job::ListDevices);
    let result = run_loop(&mut terminal, &mut app, &receiver, &mut spawn);
    crate::interrupt::APP_ACTIVE.store(false, std::sync::atomic::Ordering::SeqCst);
    restore_terminal();
    result
}

/// Sends stderr to a file until dropped (or until a panic restores it to print its message).
pub(crate) struct StderrRedirect;

/// The original stderr while redirected, else -1.
static SAVED_STDERR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

impl StderrRedirect {
    pub(crate) fn to(path: &std::path::Path) -> Option<StderrRedirect> {
        use std::os::fd::AsRawFd;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ok()?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok()?;
        // SAFETY: dup/dup2 on descriptors this process owns; `file` stays open until dup2 has copied it.
        let saved = unsafe { libc::dup(2) };
        if saved < 0 || unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
            return None;
        }
        SAVED_STDERR.store(saved, Ordering::SeqCst);
        Some(StderrRedirect)
    }
}

/// Put the original stderr back (idempotent).
pub(crate) fn restore_stderr() {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor dup'ed in `StderrRedirect::to`, owned by this process.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

impl Drop for StderrRedirect {
    fn drop(&mut self) {
        restore_stderr();
    }
}

/// The terminal and stderr back as they were (a signal is ending the process).
pub(crate) fn restore_after_signal() {
    restore_terminal();
    restore_stderr();
}

pub(crate) fn restore_terminal() {
    let _ = ratatui::try_restore();
}

/// How often meters and progress move.
pub(crate) const TICK: Duration = Duration::from_millis(33);

pub(crate) fn spawn_input_thread(sender: Sender<AppEvent>) {
    let mut last_tick = Instant::now();
    std::thread::spawn(move || loop {
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if sender.send(AppEvent::Tick).is_err() {
                return;
            }
        }
        match event::poll(TICK) {
            Ok(true) => {
                let forwarded = match event::read() {
                    Ok(Event::Key(key)) => {
                        // Fault injection for the test of the panic hook (debug builds only).
                        #[cfg(debug_assertions)]
                        if key.code == ratatui::crossterm::event::KeyCode::F(12)
                            && std::env::var_os("DEMOD_VOICE_TEST_FAULT").is_some_and(|v| v == "input-thread")
                        {
                            panic!("injected fault in the input thread (DEMOD_VOICE_TEST_FAULT)");
                        }
                        sender.send(AppEvent::Key(key))
                    }
                    Ok(Event::Resize(..)) => sender.send(AppEvent::Resize),
                    Ok(_) => Ok(()),
                    Err(_) => return,
                };
                if forwarded.is_err() {
                    return;
                }
            }
            Ok(false) => {}
            Err(_) => return,
        }
    });
}
