//! Ctrl-C, `kill` and a closed terminal: the process ends at once, but without leaving half-written files
//! (every temporary output is registered in [`demod_voice_core::durable`]) or a terminal stuck in the app's raw
//! mode. A batch run resumes from its journal.
//!
//! The signals are blocked in every thread (set before any thread starts, so all inherit it; child processes get
//! a clean mask from `std::process::Command`) and taken by one thread with `sigwait`, where ordinary code may run.

use std::sync::atomic::{AtomicBool, Ordering};

/// True while the full-screen app owns the terminal.
pub(crate) static APP_ACTIVE: AtomicBool = AtomicBool::new(false);

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Start taking the signals. Call first thing in `main`, before any thread exists.
pub(crate) fn install() {
    // SAFETY: sigset_t is plain data initialised by sigemptyset/sigaddset; the mask calls take valid pointers.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` and `signal` are valid for the call.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            on_signal(signal);
        }
    });
    if spawned.is_err() {
        // No thread for them: let the signals act as they would have.
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

/// What `serve` does on SIGTERM or SIGINT instead of ending at once: stop taking work and let what runs finish.
/// A second signal ends the process as usual.
static DRAIN: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Ask for a graceful drain on the next SIGTERM/SIGINT (once per process).
pub(crate) fn on_terminate_drain(drain: impl Fn() + Send + Sync + 'static) {
    let _ = DRAIN.set(Box::new(drain));
}

fn on_signal(signal: libc::c_int) {
    if matches!(signal, libc::SIGTERM | libc::SIGINT) && !DRAINING.swap(true, Ordering::SeqCst) {
        if let Some(drain) = DRAIN.get() {
            eprintln!("draining: new requests are refused, running ones finish (a second signal stops at once)");
            drain();
            return;
        }
    }
    exit_on_signal(signal)
}

fn exit_on_signal(signal: libc::c_int) -> ! {
    if APP_ACTIVE.load(Ordering::SeqCst) {
        crate::app::restore_after_signal();
    }
    let removed = demod_voice_core::durable::remove_pending();
    let name = match signal {
        libc::SIGINT => "interrupted",
        libc::SIGTERM => "terminated",
        _ => "hung up",
    };
    if removed > 0 {
        eprintln!("{name}; removed {removed} unfinished output file(s)");
    } else {
        eprintln!("{name}");
    }
    // `_exit`, not `exit`: the runtime's static destructors must not run under a thread still inside a model.
    // SAFETY: ends the process; nothing after it runs.
    unsafe { libc::_exit(128 + signal) }
}
