//! The worker half of the real-time engine: pulls input from the ring, resamples to the converter's rate,
//! converts `context | hop | lookahead` blocks, joins them (SOLA), resamples back and pushes to the output ring.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbuf::traits::{Consumer, Observer, Producer};
use ringbuf::{HeapCons, HeapProd};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, Resampler};

use super::{Latency, Stats};
use crate::convert::Converter;

/// The worker thread's name (a panic there is caught and reported in the stats; panic hooks may leave it alone).
pub const RT_WORKER_THREAD: &str = "demod-voice-rt-worker";

/// The worker half: converts hops as input arrives. Run it on its own thread with [`Worker::spawn`], or drive it
/// step by step with [`Worker::step`] (offline conversion and tests).
pub struct Worker {
    pub(super) in_cons: HeapCons<f32>,
    pub(super) out_prod: HeapProd<f32>,
    pub(super) converter: Box<dyn Converter>,
    pub(super) stats: Arc<Stats>,
    pub(super) resampler_in: Option<Fft<f32>>,
    pub(super) resampler_out: Option<Fft<f32>>,
    pub(super) pull_chunk: usize,
    pub(super) hop_model: usize,
    pub(super) context: usize,
    pub(super) crossfade: usize,
    pub(super) search: usize,
    pub(super) lookahead_model: usize,
    /// Model-rate input from `history_start` on (the first `context` samples are leading silence).
    pub(super) history: Vec<f32>,
    pub(super) history_start: usize,
    pub(super) received_model: usize,
    pub(super) emitted_hops: usize,
    pub(super) pull_buf: Vec<f32>,
    pub(super) model_buf: Vec<f32>,
    pub(super) block: Vec<f32>,
    pub(super) converted: Vec<f32>,
    /// The previous block's output just past its hop, to cross-fade into.
    pub(super) tail: Vec<f32>,
    /// The SOLA offset chosen for the previous block.
    pub(super) delta: usize,
    /// Fade-in curve (sin², so fade-in + fade-out = 1 for correlated blocks).
    pub(super) fade: Vec<f32>,
    pub(super) emission: Vec<f32>,
    pub(super) host_out: Vec<f32>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) latency: Latency,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("converter", &self.converter.name()).field("latency", &self.latency).finish()
    }
}

/// A running worker thread; dropping it stops the thread.
#[derive(Debug)]
pub struct WorkerThread {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Worker>>,
}

impl WorkerThread {
    /// Stop the thread and get the worker back.
    pub fn stop(mut self) -> Option<Worker> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok())
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Worker {
    /// How the latency is made up.
    pub fn latency(&self) -> Latency {
        self.latency
    }

    /// The converter's engine name.
    pub fn converter_name(&self) -> &'static str {
        self.converter.name()
    }

    /// Run on a new thread until stopped. The thread polls at a fraction of the hop; it never touches the audio
    /// thread (no wake-ups, no shared locks).
    pub fn spawn(mut self) -> std::io::Result<WorkerThread> {
        let stop = Arc::clone(&self.stop);
        let hop_secs = self.hop_model as f64 / self.model_rate_hint();
        let poll = Duration::from_secs_f64((hop_secs / 8.0).clamp(0.0002, 0.002));
        let handle = std::thread::Builder::new().name(RT_WORKER_THREAD.into()).spawn(move || {
            while !self.stop.load(Ordering::Relaxed) && !self.stats.worker_dead.load(Ordering::Relaxed) {
                if !self.step_guarded() {
                    std::thread::sleep(poll);
                }
            }
            self
        })?;
        Ok(WorkerThread { stop, handle: Some(handle) })
    }

    fn model_rate_hint(&self) -> f64 {
        // Only used for the polling interval; exactness is not needed.
        (self.hop_model as f64 / self.latency.hop.max(1) as f64) * 48_000.0
    }

    /// Whether a hop's worth of work is waiting (tests use this to let the worker catch up).
    pub fn has_work(&self) -> bool {
        self.in_cons.occupied_len() >= self.pull_chunk
    }

    /// [`Worker::step`], with a panic inside the converter caught: the worker is then marked dead in the stats
    /// (the audio side stops waiting and falls back) and does nothing more. Returns false once dead.
    pub fn step_guarded(&mut self) -> bool {
        if self.stats.worker_dead.load(Ordering::Relaxed) {
            return false;
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step())) {
            Ok(worked) => worked,
            Err(payload) => {
                let reason = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                self.stats.mark_dead(format!("the {} converter panicked: {reason}", self.converter.name()));
                false
            }
        }
    }

    /// Do whatever work is available now; returns false when there was nothing to do.
    pub fn step(&mut self) -> bool {
        let mut worked = false;
        // Pull input in resampler-sized chunks (or everything, without resampling).
        loop {
            let want = match &self.resampler_in {
                Some(r) => r.input_frames_next(),
                None => self.in_cons.occupied_len().min(self.pull_buf.len()),
            };
            if want == 0 || self.in_cons.occupied_len() < want {
                break;
            }
            let got = self.in_cons.pop_slice(&mut self.pull_buf[..want]);
            debug_assert_eq!(got, want);
            match &mut self.resampler_in {
                Some(r) => {
                    let frames_out = r.output_frames_next();
                    if self.model_buf.len() < frames_out {
                        self.model_buf.resize(frames_out, 0.0);
                    }
                    let input = InterleavedSlice::new(&self.pull_buf[..want], 1, want);
                    let output = InterleavedSlice::new_mut(&mut self.model_buf[..frames_out], 1, frames_out);
                    if let (Ok(input), Ok(mut output)) = (input, output) {
                        if let Ok((_, produced)) = r.process_into_buffer(&input, &mut output, None) {
                            self.history.extend_from_slice(&self.model_buf[..produced]);
                            self.received_model += produced;
                        }
                    }
                }
                None => {
                    self.history.extend_from_slice(&self.pull_buf[..want]);
                    self.received_model += want;
                }
            }
            worked = true;
            // Convert every hop whose lookahead has arrived.
            while (self.emitted_hops + 1) * self.hop_model + self.lookahead_model <= self.received_model {
                if self.out_prod.vacant_len() < self.host_out.len() {
                    return worked; // the audio side is far behind; wait for room (never the audio thread)
                }
                self.convert_hop();
            }
        }
        worked
    }

    fn convert_hop(&mut self) {
        let started = Instant::now();
        let (hop, context, crossfade, search) = (self.hop_model, self.context, self.crossfade, self.search);
        let block_len = context + hop + self.lookahead_model;
        // History index of the block start: absolute model index (hop start - context) minus history_start,
        // where the history holds `context` leading zeros before absolute index 0.
        let start = self.emitted_hops * hop - self.history_start;
        self.block[..block_len].copy_from_slice(&self.history[start..start + block_len]);
        self.converter.process(&self.block[..block_len], context, hop, &mut self.converted[..block_len]);

        // SOLA: find the offset whose start best matches the previous tail, then cross-fade.
        let base = context;
        let mut delta = self.delta.min(search);
        let mut rho = 1.0f32;
        // The first block has nothing before it to join.
        if crossfade > 0 && self.emitted_hops > 0 {
            let tail_energy: f32 = self.tail.iter().map(|x| x * x).sum();
            if tail_energy > 1e-9 {
                let score = |d: usize, converted: &[f32], tail: &[f32]| -> (f32, f32) {
                    let seg = &converted[base + d..base + d + crossfade];
                    let (mut dot, mut energy) = (0.0f32, 0.0f32);
                    for (a, b) in seg.iter().zip(tail) {
                        dot += a * b;
                        energy += a * a;
                    }
                    let norm = (energy * tail_energy).sqrt();
                    (if norm > 1e-12 { dot / norm } else { 0.0 }, dot)
                };
                let (mut best, _) = score(delta, &self.converted, &self.tail);
                for d in 0..=search {
                    let (s, _) = score(d, &self.converted, &self.tail);
                    // Strictly better only: ties keep the previous offset.
                    if s > best + 1e-6 {
                        best = s;
                        delta = d;
                    }
                }
                rho = best.clamp(0.0, 1.0);
            }
            for i in 0..crossfade {
                let v = self.fade[i];
                // Power-preserving for the measured correlation: linear (v + (1-v) = 1) for identical blocks,
                // equal-power (v² + (1-v)² scaled to 1) for uncorrelated ones.
                let norm = (v * v + (1.0 - v) * (1.0 - v) + 2.0 * rho * v * (1.0 - v)).sqrt().max(1e-6);
                let (g_in, g_out) = (v / norm, (1.0 - v) / norm);
                self.emission[i] = g_in * self.converted[base + delta + i] + g_out * self.tail[i];
            }
        }
        let joined = if crossfade > 0 && self.emitted_hops > 0 { crossfade } else { 0 };
        self.emission[joined..hop].copy_from_slice(&self.converted[base + delta + joined..base + delta + hop]);
        self.tail.copy_from_slice(&self.converted[base + delta + hop..base + delta + hop + crossfade]);
        self.delta = delta;

        // Back to the host rate and out.
        match &mut self.resampler_out {
            Some(r) => {
                let frames_out = r.output_frames_next();
                if self.host_out.len() < frames_out {
                    self.host_out.resize(frames_out, 0.0);
                }
                let input = InterleavedSlice::new(&self.emission[..hop], 1, hop);
                let output = InterleavedSlice::new_mut(&mut self.host_out[..frames_out], 1, frames_out);
                if let (Ok(input), Ok(mut output)) = (input, output) {
                    if let Ok((_, produced)) = r.process_into_buffer(&input, &mut output, None) {
                        self.out_prod.push_slice(&self.host_out[..produced]);
                    }
                }
            }
            None => {
                self.out_prod.push_slice(&self.emission[..hop]);
            }
        }
        self.emitted_hops += 1;
        // Drop history no future block needs.
        let keep_from = self.emitted_hops * hop - self.history_start;
        if keep_from > self.history.capacity() / 4 {
            self.history.drain(..keep_from);
            self.history_start += keep_from;
        }
        let ns = started.elapsed().as_nanos() as u64;
        self.stats.hops.fetch_add(1, Ordering::Relaxed);
        self.stats.worker_ns_last.store(ns, Ordering::Relaxed);
        self.stats.worker_ns_total.fetch_add(ns, Ordering::Relaxed);
        self.stats.worker_ns_max.fetch_max(ns, Ordering::Relaxed);
    }
}
