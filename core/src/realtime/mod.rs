//! The real-time engine shared by the DAW plugin, the terminal app's live screen and `convert`.
//!
//! ```text
//!  audio thread (AudioSide::process)             worker thread (Worker::run / Worker::step)
//!  ───────────────────────────────────           ─────────────────────────────────────────────
//!  input ──mono──> [input ring] ──────────────>  pull -> resample host->model (rubato)
//!                                                 -> converter(context | hop | lookahead)
//!                                                 -> SOLA join with the previous block
//!  output <─mix── [output ring] <──────────────  resample model->host (rubato) <- push
//!         <─dry delay line (exactly `latency`)
//! ```
//!
//! The audio side never allocates, locks, logs or waits: it moves samples through two pre-sized lock-free SPSC
//! rings (`ringbuf`, created as pairs and split) and reads atomics. Everything is sized in [`RtEngine::build`] from
//! the maximum block size and sample rate; a change of either means building a new engine (off the audio thread).
//!
//! Latency is computed, fixed for a configuration, and exact: the output ring is primed with
//! [`Latency::prime`] zeros, so output sample `m` is the worker's output for input sample `m - latency`. When the
//! worker is late the audio side emits the dry signal delayed by the same latency (or silence) and remembers how
//! many samples it owes; the late samples are dropped when they arrive, so the alignment never drifts.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use rubato::{Fft, FixedSync, Resampler};

pub mod soak;
mod worker;

pub use worker::{Worker, WorkerThread, RT_WORKER_THREAD};

use crate::config::UnderrunMode;
use crate::convert::Converter;
use crate::error::{Error, Result};

/// Host sample rates the engine is built and tested for.
pub const SUPPORTED_RATES: &[u32] = &[44_100, 48_000, 88_200, 96_000];
/// Largest block the audio side accepts in one call (bigger blocks are processed in pieces).
pub const MAX_BLOCK: usize = 8192;
/// How much audio each ring can hold: a worker stall shorter than this loses nothing.
const RING_SECONDS: f64 = 4.0;

/// Engine settings, fixed for the engine's life.
#[derive(Debug, Clone, PartialEq)]
pub struct RtConfig {
    /// The host's sample rate, Hz.
    pub sample_rate_hz: u32,
    /// The largest block `process` will be called with.
    pub max_block: usize,
    /// 1 or 2.
    pub channels: usize,
    /// Conversion hop, milliseconds.
    pub hop_ms: f32,
    /// SOLA cross-fade, milliseconds (the offset search window is as long).
    pub crossfade_ms: f32,
    /// Left context handed to the converter, milliseconds (costs compute, not latency).
    pub context_ms: f32,
    /// What plays when the worker is late.
    pub underrun: UnderrunMode,
    /// Offline rendering (a DAW's bounce, a batch tool): the audio side may wait for the worker instead of
    /// falling back, so the result is complete and identical run to run. Never set this for live audio.
    pub offline: bool,
    /// Pad the latency up to at least this many samples (a plugin offering several engines reports one
    /// latency for all of them, so switching engines never moves the track in time).
    pub min_latency: usize,
}

impl RtConfig {
    /// Defaults from the config file's `realtime` section.
    pub fn from_section(
        section: &crate::config::RealtimeSection,
        sample_rate_hz: u32,
        max_block: usize,
        channels: usize,
    ) -> Self {
        RtConfig {
            sample_rate_hz,
            max_block,
            channels,
            hop_ms: section.hop_ms,
            crossfade_ms: section.crossfade_ms,
            context_ms: section.context_ms,
            underrun: section.underrun,
            offline: false,
            min_latency: 0,
        }
    }
}

/// How the latency is made up, in host samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Total: output = input delayed by this (for the passthrough converter, exactly).
    pub total: usize,
    /// Zeros primed into the output ring.
    pub prime: usize,
    /// Delay inside the resampling chain (0 when the converter runs at the host rate).
    pub resampler: usize,
    /// Parts of `prime`.
    pub max_block: usize,
    /// One hop.
    pub hop: usize,
    /// The converter's lookahead.
    pub lookahead: usize,
    /// Safety margin for scheduling.
    pub margin: usize,
}

/// Counters readable from any thread without blocking.
#[derive(Debug, Default)]
pub struct Stats {
    /// Audio callbacks in which the worker's output was short.
    pub underruns: AtomicU64,
    /// Samples replaced by the fallback.
    pub underrun_samples: AtomicU64,
    /// Input samples that did not fit into the input ring (the worker stalled for seconds).
    pub overruns: AtomicU64,
    /// Hops converted.
    pub hops: AtomicU64,
    /// Nanoseconds the last hop took.
    pub worker_ns_last: AtomicU64,
    /// Nanoseconds the slowest hop took.
    pub worker_ns_max: AtomicU64,
    /// Nanoseconds of all hops.
    pub worker_ns_total: AtomicU64,
    /// The engine's total latency, samples.
    pub latency_samples: AtomicU64,
    /// The hop length in host samples (to turn worker time into a fraction of real time).
    pub hop_samples: AtomicU64,
    /// Set when the converter panicked: the worker has stopped, and the audio side falls back for good.
    pub worker_dead: AtomicBool,
    /// What the panic said (for the app, the plugin's status and `convert`; never read by the audio side).
    pub worker_death: std::sync::Mutex<Option<String>>,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsSnapshot {
    /// Callbacks with a late worker.
    pub underruns: u64,
    /// Samples replaced by the fallback.
    pub underrun_samples: u64,
    /// Input samples that did not fit.
    pub overruns: u64,
    /// Hops converted.
    pub hops: u64,
    /// The last hop's time.
    pub worker_last: Duration,
    /// Mean hop time.
    pub worker_mean: Duration,
    /// Slowest hop time.
    pub worker_max: Duration,
    /// The engine's total latency, samples.
    pub latency_samples: u64,
    /// The worker died (its converter panicked); output is the fallback from then on.
    pub worker_dead: bool,
}

impl Stats {
    /// Why the worker died, when it did.
    pub fn worker_death(&self) -> Option<String> {
        if !self.worker_dead.load(Ordering::Acquire) {
            return None;
        }
        let reason = self.worker_death.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(reason.unwrap_or_else(|| "the converter panicked".into()))
    }

    /// Mark the worker dead with the reason (the worker does this when its converter panics).
    pub fn mark_dead(&self, reason: String) {
        *self.worker_death.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        self.worker_dead.store(true, Ordering::Release);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let hops = self.hops.load(Ordering::Relaxed);
        let total = self.worker_ns_total.load(Ordering::Relaxed);
        StatsSnapshot {
            underruns: self.underruns.load(Ordering::Relaxed),
            underrun_samples: self.underrun_samples.load(Ordering::Relaxed),
            overruns: self.overruns.load(Ordering::Relaxed),
            hops,
            worker_last: Duration::from_nanos(self.worker_ns_last.load(Ordering::Relaxed)),
            worker_mean: Duration::from_nanos(total.checked_div(hops).unwrap_or(0)),
            worker_max: Duration::from_nanos(self.worker_ns_max.load(Ordering::Relaxed)),
            latency_samples: self.latency_samples.load(Ordering::Relaxed),
            worker_dead: self.worker_dead.load(Ordering::Relaxed),
        }
    }
}

/// Settings the audio side reads on every block (written from UI or parameter threads).
#[derive(Debug)]
pub struct Controls {
    /// Wet/dry mix, 0..1, as f32 bits.
    mix_bits: AtomicU32,
}

impl Default for Controls {
    fn default() -> Self {
        Controls { mix_bits: AtomicU32::new(1.0f32.to_bits()) }
    }
}

impl Controls {
    /// Wet/dry mix, 0..1 (clamped).
    pub fn set_mix(&self, mix: f32) {
        self.mix_bits.store(mix.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }
    /// The wet/dry mix.
    pub fn mix(&self) -> f32 {
        f32::from_bits(self.mix_bits.load(Ordering::Relaxed))
    }
}

impl RtConfig {
    /// The total latency of `engine` on an engine built for this config, in host samples: the number the plugin
    /// reports to the host and the app shows (computed by building the engine, never guessed).
    pub fn latency_of(&self, engine: crate::convert::Engine) -> Result<usize> {
        let (audio, _worker) = RtEngine::build(self, engine.build(Default::default())?)?;
        Ok(audio.latency())
    }
}

/// Builder for an engine: the audio side and the worker, joined by rings created here as pairs.
pub struct RtEngine;

impl RtEngine {
    /// Build an engine for `config` and `converter`. Allocates everything either side will ever use.
    pub fn build(config: &RtConfig, mut converter: Box<dyn Converter>) -> Result<(AudioSide, Worker)> {
        let bad = |problem: String| Error::Setting { key: "realtime".into(), problem };
        if !(1..=2).contains(&config.channels) {
            return Err(bad(format!("{} channels; 1 or 2 are supported", config.channels)));
        }
        if config.max_block == 0 || config.max_block > MAX_BLOCK {
            return Err(bad(format!("maximum block {} is outside 1..{MAX_BLOCK}", config.max_block)));
        }
        if !(8_000..=192_000).contains(&config.sample_rate_hz) {
            return Err(bad(format!("sample rate {} Hz is outside 8000..192000", config.sample_rate_hz)));
        }
        let host_rate = config.sample_rate_hz as usize;
        let model_rate = converter.sample_rate().unwrap_or(config.sample_rate_hz) as usize;
        let gcd = gcd(host_rate, model_rate);
        let (unit_host, unit_model) = (host_rate / gcd, model_rate / gcd);
        let ms = |ms: f32, rate: usize| ((f64::from(ms) * rate as f64 / 1000.0).round() as usize).max(1);
        // The hop must map to a whole number of model samples.
        let hop_host = (ms(config.hop_ms, host_rate) / unit_host).max(1) * unit_host;
        let hop_model = hop_host / unit_host * unit_model;
        let crossfade = ms(config.crossfade_ms, model_rate).min(hop_model.saturating_sub(1));
        // A continuous converter's hops already join exactly: no search, no cross-fade, no lookahead for them.
        let crossfade = if config.crossfade_ms <= 0.0 || converter.continuous() { 0 } else { crossfade };
        let search = crossfade;
        let context = if config.context_ms <= 0.0 { 0 } else { ms(config.context_ms, model_rate) };
        converter.prepare(model_rate as u32, hop_model, context + hop_model + crossfade + search + 4096);
        let lookahead_model = crossfade + search + converter.latency();

        let resampling = model_rate != host_rate;
        let (resampler_in, resampler_out, pull_chunk, resampler_delay) = if resampling {
            let chunk_in = unit_host * 128usize.div_ceil(unit_host);
            let rin = Fft::<f32>::new(host_rate, model_rate, chunk_in, 1, FixedSync::Input)
                .map_err(|e| bad(format!("resampler {host_rate}->{model_rate} Hz: {e}")))?;
            let rout = Fft::<f32>::new(model_rate, host_rate, hop_model, 1, FixedSync::Input)
                .map_err(|e| bad(format!("resampler {model_rate}->{host_rate} Hz: {e}")))?;
            let delay_in_host = (rin.output_delay() as f64 * host_rate as f64 / model_rate as f64).round() as usize;
            let delay = delay_in_host + rout.output_delay();
            (Some(rin), Some(rout), chunk_in, delay)
        } else {
            (None, None, 1, 0)
        };
        let lookahead_host = (lookahead_model * host_rate).div_ceil(model_rate) + pull_chunk;
        // Time the worker has to convert a hop once its input is complete: a quarter hop, at least 2 ms (the dsp
        // worker needs about 1.5% of real time, so this is ample without being wasteful).
        let mut margin = (hop_host / 4).max(host_rate / 500);
        let natural = config.max_block + hop_host + lookahead_host + margin + resampler_delay;
        // Extra padding counts as worker margin: more time, same exactness.
        margin += config.min_latency.saturating_sub(natural);
        let prime = config.max_block + hop_host + lookahead_host + margin;
        let latency = Latency {
            total: prime + resampler_delay,
            prime,
            resampler: resampler_delay,
            max_block: config.max_block,
            hop: hop_host,
            lookahead: lookahead_host,
            margin,
        };

        let ring_len = (RING_SECONDS * host_rate as f64) as usize + prime + MAX_BLOCK;
        let (in_prod, in_cons) = HeapRb::<f32>::new(ring_len).split();
        let (mut out_prod, out_cons) = HeapRb::<f32>::new(ring_len).split();
        // Prime the output: the first `prime` output samples are silence, then the worker's output follows.
        let zeros = vec![0.0f32; prime];
        out_prod.push_slice(&zeros);

        let stats = Arc::new(Stats::default());
        stats.latency_samples.store(latency.total as u64, Ordering::Relaxed);
        stats.hop_samples.store(hop_host as u64, Ordering::Relaxed);
        let controls = Arc::new(Controls::default());

        let audio = AudioSide {
            in_prod,
            out_cons,
            dry: vec![vec![0.0; latency.total.max(1)]; config.channels],
            dry_pos: 0,
            mono: vec![0.0; config.max_block],
            wet: vec![0.0; config.max_block],
            owed: 0,
            pending_input_zeros: 0,
            latency: latency.total,
            channels: config.channels,
            max_block: config.max_block,
            underrun: config.underrun,
            offline: config.offline,
            stats: Arc::clone(&stats),
            controls: Arc::clone(&controls),
            mix_state: f32::NAN,
            mix_step: 1.0 - (-1.0 / (0.01 * host_rate as f32)).exp(),
        };

        let history_cap = context + hop_model * 4 + lookahead_model + 8192;
        let mut history = Vec::with_capacity(history_cap * 2);
        history.resize(context, 0.0);
        let block_len = context + hop_model + lookahead_model;
        let fade: Vec<f32> = (0..crossfade)
            .map(|i| {
                let x = (i as f32 + 0.5) / crossfade as f32;
                (std::f32::consts::FRAC_PI_2 * x).sin().powi(2)
            })
            .collect();
        let worker = Worker {
            in_cons,
            out_prod,
            converter,
            stats,
            resampler_in,
            resampler_out,
            pull_chunk,
            hop_model,
            context,
            crossfade,
            search,
            lookahead_model,
            history,
            history_start: 0,
            received_model: 0,
            emitted_hops: 0,
            pull_buf: vec![0.0; pull_chunk.max(MAX_BLOCK)],
            model_buf: vec![0.0; pull_chunk * 4 + 64],
            block: vec![0.0; block_len],
            converted: vec![0.0; block_len],
            tail: vec![0.0; crossfade],
            delta: 0,
            fade,
            emission: vec![0.0; hop_model],
            host_out: vec![0.0; hop_host * 4 + 64],
            stop: Arc::new(AtomicBool::new(false)),
            latency,
        };
        Ok((audio, worker))
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The audio-thread half. `process` is the only thing a host callback calls.
pub struct AudioSide {
    in_prod: HeapProd<f32>,
    out_cons: HeapCons<f32>,
    /// Per-channel delay lines of exactly `latency` samples: the dry signal aligned with the wet one.
    dry: Vec<Vec<f32>>,
    dry_pos: usize,
    mono: Vec<f32>,
    wet: Vec<f32>,
    /// Output samples the audio side replaced by the fallback and must drop when the worker delivers them.
    owed: usize,
    /// Input samples that did not fit into the ring; zeros go in their place once there is room.
    pending_input_zeros: usize,
    latency: usize,
    channels: usize,
    max_block: usize,
    underrun: UnderrunMode,
    /// Wait for the worker instead of falling back (offline rendering only).
    offline: bool,
    stats: Arc<Stats>,
    controls: Arc<Controls>,
    /// The mix currently applied (NaN before the first block), and how far it moves toward the target per sample.
    mix_state: f32,
    mix_step: f32,
}

impl std::fmt::Debug for AudioSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioSide").field("latency", &self.latency).field("channels", &self.channels).finish()
    }
}

impl AudioSide {
    /// Total latency in samples (report it to the host for delay compensation).
    pub fn latency(&self) -> usize {
        self.latency
    }

    /// The engine's counters (shared with any thread).
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// The settings the audio side reads each block (shared).
    pub fn controls(&self) -> Arc<Controls> {
        Arc::clone(&self.controls)
    }

    /// Input samples the worker has not taken yet (lock-free; a harness or meter may read it).
    pub fn input_backlog(&self) -> usize {
        self.in_prod.occupied_len()
    }

    /// Process one block: `input` and `output` hold one slice per channel (1 or 2), all of the same length,
    /// which may be anything from 1 to [`MAX_BLOCK`] and change from call to call.
    ///
    /// Real-time safe: no allocation, no lock, no logging, no waiting (unless built with `offline`, for
    /// rendering faster than real time, where it waits for the worker).
    pub fn process(&mut self, input: &[&[f32]], output: &mut [&mut [f32]]) {
        let frames = output.first().map_or(0, |c| c.len());
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(self.max_block);
            self.process_chunk(input, output, done, n);
            done += n;
        }
    }

    fn process_chunk(&mut self, input: &[&[f32]], output: &mut [&mut [f32]], offset: usize, n: usize) {
        let in_channels = input.len().min(self.channels).max(1);
        // Mono sum of the input (voice conversion is mono); non-finite input is treated as silence.
        for i in 0..n {
            let mut sum = 0.0;
            for channel in input.iter().take(in_channels) {
                let s = channel.get(offset + i).copied().unwrap_or(0.0);
                sum += if s.is_finite() { s } else { 0.0 };
            }
            self.mono[i] = sum / in_channels as f32;
        }
        // Input to the worker. Zeros owed from an earlier overflow go first, so indices never shift.
        if self.pending_input_zeros > 0 {
            let room = self.in_prod.vacant_len().min(self.pending_input_zeros);
            for _ in 0..room {
                let _ = self.in_prod.try_push(0.0);
            }
            self.pending_input_zeros -= room;
        }
        let pushed = if self.pending_input_zeros == 0 { self.in_prod.push_slice(&self.mono[..n]) } else { 0 };
        if pushed < n {
            self.pending_input_zeros += n - pushed;
            self.stats.overruns.fetch_add((n - pushed) as u64, Ordering::Relaxed);
        }
        // Output from the worker: first drop what was already replaced by the fallback.
        if self.owed > 0 {
            let dropped = self.out_cons.skip(self.owed.min(self.out_cons.occupied_len()));
            self.owed -= dropped;
        }
        if self.offline {
            // Offline only: give the worker time to catch up (bounded, so a stuck worker cannot hang the host; a
            // dead one is not waited for at all).
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while self.out_cons.occupied_len() < n
                && !self.stats.worker_dead.load(Ordering::Relaxed)
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        let got = if self.owed == 0 { self.out_cons.pop_slice(&mut self.wet[..n]) } else { 0 };
        if got < n {
            self.owed += n - got;
            self.stats.underruns.fetch_add(1, Ordering::Relaxed);
            self.stats.underrun_samples.fetch_add((n - got) as u64, Ordering::Relaxed);
        }
        // The mix glides to its target (about 10 ms) so automation and bypass never click; the first block
        // starts at the target.
        let target_mix = self.controls.mix();
        if self.mix_state.is_nan() {
            self.mix_state = target_mix;
        }
        let len = self.dry[0].len();
        let last_line = self.dry.len() - 1;
        for i in 0..n {
            self.mix_state += (target_mix - self.mix_state) * self.mix_step;
            if (self.mix_state - target_mix).abs() < 1e-4 {
                self.mix_state = target_mix;
            }
            let mix = self.mix_state;
            let pos = (self.dry_pos + i) % len;
            for (c, out_channel) in output.iter_mut().enumerate().take(self.channels) {
                let line = &mut self.dry[c.min(last_line)];
                let delayed = line[pos];
                let s = input.get(c).or(input.first()).and_then(|ch| ch.get(offset + i)).copied().unwrap_or(0.0);
                line[pos] = if s.is_finite() { s } else { 0.0 };
                let value = if i < got {
                    self.wet[i] * mix + delayed * (1.0 - mix)
                } else {
                    match self.underrun {
                        UnderrunMode::Dry => delayed,
                        UnderrunMode::Silence => 0.0,
                    }
                };
                if let Some(slot) = out_channel.get_mut(offset + i) {
                    *slot = value;
                }
            }
        }
        self.dry_pos = (self.dry_pos + n) % len;
    }
}

/// Convert a whole clip through the real-time engine, block by block exactly as live, with the worker keeping up;
/// the latency is trimmed so the output lines up with the input and has its length. Allocates (offline use).
pub fn convert_offline(
    samples: &[f32],
    sample_rate_hz: u32,
    converter: Box<dyn Converter>,
    section: &crate::config::RealtimeSection,
) -> Result<Vec<f32>> {
    const BLOCK: usize = 512;
    let config = RtConfig::from_section(section, sample_rate_hz, BLOCK, 1);
    let (mut audio, mut worker) = RtEngine::build(&config, converter)?;
    let latency = audio.latency();
    let total = samples.len() + latency;
    let mut input = samples.to_vec();
    input.resize(total, 0.0);
    let mut output = vec![0.0f32; total];
    let mut pos = 0;
    while pos < total {
        let n = BLOCK.min(total - pos);
        audio.process(&[&input[pos..pos + n]], &mut [&mut output[pos..pos + n]]);
        while worker.step_guarded() {}
        if let Some(reason) = audio.stats().worker_death() {
            return Err(Error::Setting { key: "realtime".into(), problem: format!("the converter failed: {reason}") });
        }
        pos += n;
    }
    output.drain(..latency);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dsp_engine_needs_more_latency_than_passthrough() {
        let config = RtConfig::from_section(&Default::default(), 48_000, 128, 1);
        let dsp = config.latency_of(crate::convert::Engine::Dsp).unwrap_or(0);
        let passthrough = config.latency_of(crate::convert::Engine::Passthrough).unwrap_or(usize::MAX);
        assert!(dsp > passthrough, "dsp {dsp} vs passthrough {passthrough}");
    }
}
