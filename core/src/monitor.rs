//! A rolling speaker similarity of live output: the first ONNX model that runs beside the real-time engine.
//!
//! The audio callback copies its output into a [`tap`] ring (lock-free, preallocated; when the monitor falls
//! behind, samples are dropped, never waited for). A monitor thread takes them, keeps the last few seconds, and
//! about once a second embeds the window with the speaker encoder and compares it with a target embedding. The
//! score is published through an atomic for the UI. Nothing here runs on the audio thread except the push.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbuf::traits::{Consumer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use crate::speaker::{Embedding, SpeakerEncoder};

/// Seconds of output each score is computed on.
pub const WINDOW_SECONDS: f32 = 3.0;
/// How often the score is recomputed.
pub const PERIOD: Duration = Duration::from_secs(1);
/// Windows quieter than this (RMS, dBFS) are not scored: silence says nothing about a speaker.
const QUIET_DBFS: f32 = -45.0;

/// The embedding scored against; the UI may change it (or clear it) while the monitor runs.
pub type Target = Arc<std::sync::Mutex<Option<Embedding>>>;

/// The audio callback's end of the monitor's ring.
pub struct Tap(HeapProd<f32>);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

impl Tap {
    /// Copy `samples` in (real-time safe: no allocation, no lock, no wait; what does not fit is dropped).
    pub fn push(&mut self, samples: &[f32]) {
        use ringbuf::traits::Producer;
        self.0.push_slice(samples);
    }
}

/// The ring the audio callback feeds (two seconds of room at `rate`): its end for the callback, and the monitor's.
pub fn tap(rate: u32) -> (Tap, HeapCons<f32>) {
    let (push, pull) = HeapRb::<f32>::new(rate as usize * 2).split();
    (Tap(push), pull)
}

/// A running monitor; dropping it stops the thread.
#[derive(Debug)]
pub struct SimilarityMonitor {
    score: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl SimilarityMonitor {
    /// Start scoring what arrives through `tap` (audio at `rate`) against `target`.
    pub fn spawn(
        mut tap: HeapCons<f32>,
        rate: u32,
        target: Target,
        encoder: SpeakerEncoder,
    ) -> std::io::Result<SimilarityMonitor> {
        let score = Arc::new(AtomicU32::new(f32::NAN.to_bits()));
        let stop = Arc::new(AtomicBool::new(false));
        let (published, stopped) = (Arc::clone(&score), Arc::clone(&stop));
        let window_len = (WINDOW_SECONDS * rate as f32) as usize;
        let handle = std::thread::Builder::new().name("demod-voice-similarity".into()).spawn(move || {
            let mut window: Vec<f32> = Vec::with_capacity(window_len * 2);
            let mut piece = vec![0.0f32; rate as usize];
            let mut next = Instant::now() + PERIOD;
            while !stopped.load(Ordering::Relaxed) {
                loop {
                    let got = tap.pop_slice(&mut piece);
                    if got == 0 {
                        break;
                    }
                    window.extend_from_slice(&piece[..got]);
                }
                if window.len() > window_len {
                    window.drain(..window.len() - window_len);
                }
                if Instant::now() >= next {
                    next += PERIOD;
                    let wanted = target.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    match wanted {
                        // No target: no score (a stale one would describe another profile).
                        None => published.store(f32::NAN.to_bits(), Ordering::Relaxed),
                        Some(wanted) => {
                            if let Some(value) = score_window(&window, window_len, rate, &wanted, &encoder) {
                                published.store(value.to_bits(), Ordering::Relaxed);
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })?;
        Ok(SimilarityMonitor { score, stop, handle: Some(handle) })
    }

    /// The latest score (cosine to the target), or `None` before the first full, audible window.
    pub fn score(&self) -> Option<f32> {
        read(&self.score)
    }

    /// The score's cell, for a UI that outlives this handle's borrow (read it with [`read`]).
    pub fn handle(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.score)
    }
}

/// Read a score cell: `None` while nothing has been scored.
pub fn read(cell: &AtomicU32) -> Option<f32> {
    Some(f32::from_bits(cell.load(Ordering::Relaxed))).filter(|v| v.is_finite())
}

fn score_window(window: &[f32], full: usize, rate: u32, target: &Embedding, encoder: &SpeakerEncoder) -> Option<f32> {
    if window.len() < full / 2 {
        return None;
    }
    let rms = (window.iter().map(|s| s * s).sum::<f32>() / window.len() as f32).sqrt();
    if 20.0 * rms.max(1e-9).log10() < QUIET_DBFS {
        return None;
    }
    encoder.embed(window, rate).ok().map(|e| e.cosine(target))
}

impl Drop for SimilarityMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
