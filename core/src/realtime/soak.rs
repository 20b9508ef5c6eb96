//! A soak of the real-time engine as a plugin drives it: every engine built with one shared latency, all of them
//! processing every block (the inactive ones into a scratch buffer), random block sizes, random parameter
//! automation and engine switches, non-finite input now and then, and workers that stall now and then.
//!
//! Checked throughout: the output is always finite; the passthrough engine's output is the input delayed by exactly
//! the reported latency at every sample, whatever the worker did (so the latency is constant and nothing drifts);
//! the audio side never waits. The caller wraps each audio-side call (the tests pass `assert_no_alloc`, so one
//! allocation there aborts the run). The bounded variant runs in `cargo test`; `demod-voice bench --soak` runs
//! the full million blocks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{AudioSide, RtConfig, RtEngine, WorkerThread};
use crate::config::UnderrunMode;
use crate::convert::{dsp::DspParams, Converter, Engine};
use crate::error::Result;

/// What to soak.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Audio-side calls.
    pub blocks: u64,
    /// The largest block (each call takes 1..=this many samples).
    pub max_block: usize,
    /// Host sample rate.
    pub sample_rate_hz: u32,
    /// Each worker sleeps three hops long once every this many hops.
    pub stall_every_hops: usize,
    /// Seed of the random choices.
    pub seed: u64,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions { blocks: 1_000_000, max_block: 4096, sample_rate_hz: 48_000, stall_every_hops: 5_000, seed: 1 }
    }
}

/// What a soak saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoakReport {
    /// Audio-side calls made.
    pub blocks: u64,
    /// Samples per channel through each engine.
    pub samples: u64,
    /// Engine switches.
    pub switches: u64,
    /// Parameter moves.
    pub automation: u64,
    /// Worker stalls injected.
    pub stalls: u64,
    /// Callbacks with a late worker, all engines.
    pub underruns: u64,
    /// Input samples that did not fit a ring, all engines.
    pub overruns: u64,
    /// Non-finite output samples (must be 0).
    pub non_finite: u64,
    /// The largest difference between the passthrough engine's output and the input delayed by the latency (must
    /// be tiny: float rounding of the mix).
    pub max_alignment_error: f32,
    /// The loudest sample heard (the active engine's output); input peaks at about 0.43.
    pub peak: f32,
    /// The latency every engine reported, samples (the same at the start and the end).
    pub latency: usize,
    /// Wall time.
    pub seconds: f64,
}

/// A converter that sleeps three hops long once every `every` hops (a worker descheduled, a page fault, a slow
/// model), then does what `inner` does.
struct Stalling {
    inner: Box<dyn Converter>,
    every: usize,
    calls: usize,
    stall: Duration,
    stalls: Arc<std::sync::atomic::AtomicU64>,
}

impl Converter for Stalling {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn sample_rate(&self) -> Option<u32> {
        self.inner.sample_rate()
    }
    fn prepare(&mut self, sample_rate_hz: u32, max_hop: usize, max_block: usize) {
        self.stall = Duration::from_secs_f64(3.0 * max_hop as f64 / f64::from(sample_rate_hz.max(1)));
        self.inner.prepare(sample_rate_hz, max_hop, max_block);
    }
    fn latency(&self) -> usize {
        self.inner.latency()
    }
    fn process(&mut self, input: &[f32], hop_start: usize, hop_len: usize, output: &mut [f32]) {
        self.calls += 1;
        if self.every > 0 && self.calls.is_multiple_of(self.every) {
            self.stalls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(self.stall);
        }
        self.inner.process(input, hop_start, hop_len, output);
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn continuous(&self) -> bool {
        self.inner.continuous()
    }
}

/// A tiny deterministic generator (xorshift64): the soak and the engine's tests must not depend on a crate's
/// random stream. The seed must not be 0.
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number in 0..n (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// A number in 0..1.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// A number in -1..1.
    pub fn uniform(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }
}

/// Run the soak. `guard` is called once per block with the audio-side work to run (wrap it in an allocation
/// checker). Everything the audio side touches is allocated before the first block.
pub fn soak(options: &SoakOptions, guard: &mut dyn FnMut(&mut dyn FnMut())) -> Result<SoakReport> {
    let max_block = options.max_block.clamp(1, super::MAX_BLOCK);
    let rate = options.sample_rate_hz;
    let mut config = RtConfig {
        sample_rate_hz: rate,
        max_block,
        channels: 1,
        hop_ms: 10.0,
        crossfade_ms: 3.0,
        context_ms: 20.0,
        underrun: UnderrunMode::Dry,
        offline: false,
        min_latency: 0,
    };
    for &engine in Engine::LIVE {
        config.min_latency = config.min_latency.max(config.latency_of(engine)?);
    }
    let params = Arc::new(DspParams::default());
    let stalls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut engines: Vec<AudioSide> = Vec::new();
    let mut workers: Vec<WorkerThread> = Vec::new();
    for &engine in Engine::LIVE {
        let converter = Stalling {
            inner: engine.build(Arc::clone(&params))?,
            every: options.stall_every_hops,
            calls: 0,
            stall: Duration::ZERO,
            stalls: Arc::clone(&stalls),
        };
        let (audio, worker) = RtEngine::build(&config, Box::new(converter))?;
        workers.push(
            worker
                .spawn()
                .map_err(|source| crate::error::Error::Write { path: "realtime worker thread".into(), source })?,
        );
        engines.push(audio);
    }
    let latency = engines[0].latency();
    let passthrough = Engine::Passthrough.index();
    let controls: Vec<_> = engines.iter().map(AudioSide::controls).collect();
    let stats: Vec<_> = engines.iter().map(AudioSide::stats).collect();

    // Everything below the loop header is preallocated.
    let history_len = latency + max_block + 1;
    let mut history = vec![0.0f32; history_len];
    let mut written = 0u64;
    let mut input = vec![0.0f32; max_block];
    let mut outputs = vec![vec![0.0f32; max_block]; engines.len()];
    let mut report = SoakReport { latency, ..Default::default() };
    let mut rng = XorShift(options.seed.max(1));
    let mut phase = 0.0f32;
    let mut active = 0usize;
    // The harness keeps within about a second of the workers, as a host running on the clock would.
    let backlog_limit = rate as usize;
    let started = Instant::now();
    for _ in 0..options.blocks {
        let n = 1 + rng.below(max_block as u64) as usize;
        for sample in input.iter_mut().take(n) {
            phase += 0.031 + 0.01 * rng.unit();
            *sample = 0.4 * phase.sin() + 0.05 * (rng.unit() - 0.5);
        }
        if rng.below(1000) == 0 {
            input[rng.below(n as u64) as usize] = if rng.below(2) == 0 { f32::NAN } else { f32::INFINITY };
        }
        if rng.below(8) == 0 {
            report.automation += 1;
            params.set_pitch_semitones(rng.unit() * 48.0 - 24.0);
            params.set_formant_ratio(0.5 + rng.unit() * 1.5);
            params.set_profile_amount(rng.unit());
            let mix = rng.unit();
            for c in &controls {
                c.set_mix(mix);
            }
        }
        if rng.below(64) == 0 {
            active = rng.below(engines.len() as u64) as usize;
            report.switches += 1;
        }
        let input_block = &input[..n];
        guard(&mut || {
            for (engine, output) in engines.iter_mut().zip(outputs.iter_mut()) {
                engine.process(&[input_block], &mut [&mut output[..n]]);
            }
        });
        for (i, &x) in input_block.iter().enumerate() {
            history[((written + i as u64) % history_len as u64) as usize] = if x.is_finite() { x } else { 0.0 };
        }
        for output in &outputs {
            report.non_finite += output[..n].iter().filter(|s| !s.is_finite()).count() as u64;
        }
        // What the host hears is the active engine's output (the others keep running, as in the plugin, so a
        // switch never starts an engine cold).
        report.peak = outputs[active][..n].iter().fold(report.peak, |p, s| p.max(s.abs()));
        for (i, &out) in outputs[passthrough][..n].iter().enumerate() {
            let m = written + i as u64;
            let expected =
                if m >= latency as u64 { history[((m - latency as u64) % history_len as u64) as usize] } else { 0.0 };
            report.max_alignment_error = report.max_alignment_error.max((out - expected).abs());
        }
        written += n as u64;
        report.blocks += 1;
        while engines.iter().any(|e| e.input_backlog() > backlog_limit) {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    report.samples = written;
    report.seconds = started.elapsed().as_secs_f64();
    drop(workers);
    for (engine, stats) in engines.iter().zip(&stats) {
        let snapshot = stats.snapshot();
        report.underruns += snapshot.underruns;
        report.overruns += snapshot.overruns;
        debug_assert_eq!(engine.latency(), latency);
        if engine.latency() != latency || snapshot.latency_samples != latency as u64 {
            report.max_alignment_error = f32::INFINITY;
        }
    }
    report.stalls = stalls.load(std::sync::atomic::Ordering::Relaxed);
    Ok(report)
}
