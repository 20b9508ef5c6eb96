//! The real-time engine's contract, with the passthrough converter: output = input delayed by exactly the
//! reported latency, for any block sizes at every supported rate, with no underruns while the worker keeps up;
//! and a stalled worker never blocks the audio side, which falls back as configured and re-aligns without drift.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use demod_voice_core::config::UnderrunMode;
use demod_voice_core::convert::{Converter, Passthrough};
use demod_voice_core::realtime::{AudioSide, RtConfig, RtEngine, Worker, SUPPORTED_RATES};

use demod_voice_core::realtime::soak::XorShift as Rng;

fn config(rate: u32, max_block: usize, channels: usize) -> RtConfig {
    RtConfig {
        sample_rate_hz: rate,
        max_block,
        channels,
        hop_ms: 10.0,
        crossfade_ms: 3.0,
        context_ms: 20.0,
        underrun: UnderrunMode::Dry,
        offline: false,
        min_latency: 0,
    }
}

/// Run `input` (per channel) through the engine with random block sizes, letting the worker catch up after
/// every block as a fast worker would.
fn run_synchronously(
    audio: &mut AudioSide,
    worker: &mut Worker,
    input: &[Vec<f32>],
    max_block: usize,
    rng: &mut Rng,
) -> Vec<Vec<f32>> {
    let frames = input[0].len();
    let mut output = vec![vec![0.0f32; frames]; input.len()];
    let mut pos = 0;
    while pos < frames {
        let n = (1 + rng.below(max_block as u64) as usize).min(frames - pos);
        let ins: Vec<&[f32]> = input.iter().map(|c| &c[pos..pos + n]).collect();
        let mut outs: Vec<&mut [f32]> = output.iter_mut().map(|c| &mut c[pos..pos + n]).collect();
        audio.process(&ins, &mut outs);
        while worker.step() {}
        pos += n;
    }
    output
}

fn assert_delayed(input: &[f32], output: &[f32], latency: usize, label: &str) {
    for (m, &out) in output.iter().enumerate() {
        let expected = if m >= latency { input[m - latency] } else { 0.0 };
        assert!((out - expected).abs() < 1e-5, "{label}: sample {m}: {out} != {expected} (latency {latency})");
    }
}

#[test]
fn passthrough_output_is_input_delayed_by_exactly_the_reported_latency() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for &rate in SUPPORTED_RATES {
        for (channels, max_block) in [(1, 64), (2, 512), (1, 8192)] {
            let (mut audio, mut worker) =
                RtEngine::build(&config(rate, max_block, channels), Box::new(Passthrough::default())).unwrap();
            let latency = audio.latency();
            assert_eq!(latency, worker.latency().total);
            let frames = rate as usize + 3 * max_block;
            let input: Vec<Vec<f32>> =
                (0..channels).map(|_| (0..frames).map(|_| rng.uniform() * 0.5).collect()).collect();
            let output = run_synchronously(&mut audio, &mut worker, &input, max_block, &mut rng);
            let label = format!("{rate} Hz, {channels} ch, blocks up to {max_block}");
            if channels == 1 {
                assert_delayed(&input[0], &output[0], latency, &label);
            } else {
                // Stereo: the wet path carries the mono sum to both channels.
                let mono: Vec<f32> = (0..frames).map(|i| (input[0][i] + input[1][i]) / 2.0).collect();
                assert_delayed(&mono, &output[0], latency, &label);
                assert_delayed(&mono, &output[1], latency, &label);
            }
            let stats = audio.stats().snapshot();
            assert_eq!(stats.underruns, 0, "{label}");
            assert_eq!(stats.latency_samples, latency as u64);
            assert!(stats.hops > 0);
        }
    }
}

#[test]
fn dry_mix_is_the_same_aligned_signal() {
    let mut rng = Rng(7);
    let (mut audio, mut worker) = RtEngine::build(&config(48_000, 256, 2), Box::new(Passthrough::default())).unwrap();
    audio.controls().set_mix(0.0);
    let input: Vec<Vec<f32>> = (0..2).map(|_| (0..48_000).map(|_| rng.uniform()).collect()).collect();
    let output = run_synchronously(&mut audio, &mut worker, &input, 256, &mut rng);
    // Fully dry: each channel is its own input delayed by the latency (not the mono sum).
    assert_delayed(&input[0], &output[0], audio.latency(), "dry left");
    assert_delayed(&input[1], &output[1], audio.latency(), "dry right");
}

#[test]
fn resampled_passthrough_keeps_the_reported_latency() {
    for rate in [44_100, 48_000] {
        let converter = Passthrough { forced_rate: Some(24_000) };
        let (mut audio, mut worker) = RtEngine::build(&config(rate, 256, 1), Box::new(converter)).unwrap();
        let latency = audio.latency();
        assert!(worker.latency().resampler > 0);
        // A band-limited signal (below 8 kHz survives the 24 kHz model rate): a chirp of clicks smoothed.
        let mut rng = Rng(99);
        let frames = rate as usize * 2;
        let input: Vec<f32> = (0..frames)
            .map(|t| {
                let x = t as f32 / rate as f32;
                0.3 * (2.0 * std::f32::consts::PI * (300.0 + 2000.0 * x) * x).sin() + 0.05 * rng.uniform()
            })
            .collect();
        let output = run_synchronously(&mut audio, &mut worker, std::slice::from_ref(&input), 256, &mut rng);
        // The delay that best aligns output with input.
        let window = &input[rate as usize / 2..rate as usize];
        let best = (latency.saturating_sub(40)..latency + 40)
            .max_by(|&a, &b| {
                let score = |d: usize| -> f32 {
                    window.iter().enumerate().map(|(i, x)| x * output[0][rate as usize / 2 + i + d]).sum()
                };
                score(a).total_cmp(&score(b))
            })
            .unwrap();
        assert!((best as i64 - latency as i64).abs() <= 1, "{rate} Hz: measured {best}, reported {latency}");
    }
}

/// Passthrough that sleeps three hops long for hops `from..to`.
struct Stalling {
    hop: usize,
    rate: u32,
    calls: usize,
    from: usize,
    to: usize,
}

impl Converter for Stalling {
    fn name(&self) -> &'static str {
        "stalling"
    }
    fn sample_rate(&self) -> Option<u32> {
        None
    }
    fn prepare(&mut self, rate: u32, max_hop: usize, _max_block: usize) {
        self.rate = rate;
        self.hop = max_hop;
    }
    fn latency(&self) -> usize {
        0
    }
    fn process(&mut self, input: &[f32], _s: usize, _l: usize, output: &mut [f32]) {
        if (self.from..self.to).contains(&self.calls) {
            std::thread::sleep(Duration::from_secs_f64(3.0 * self.hop as f64 / f64::from(self.rate)));
        }
        self.calls += 1;
        output.copy_from_slice(input);
    }
    fn reset(&mut self) {}
}

fn stall_run(mode: UnderrunMode) -> (Vec<f32>, Vec<f32>, usize, u64) {
    let rate = 48_000;
    let block = 256;
    let mut cfg = config(rate, block, 1);
    cfg.underrun = mode;
    let converter = Stalling { hop: 0, rate: 0, calls: 0, from: 50, to: 70 };
    let (mut audio, worker) = RtEngine::build(&cfg, Box::new(converter)).unwrap();
    let thread = worker.spawn().unwrap();
    let mut rng = Rng(5);
    let frames = rate as usize * 3;
    let input: Vec<f32> = (0..frames).map(|_| rng.uniform() * 0.5).collect();
    let mut output = vec![0.0f32; frames];
    let started = std::time::Instant::now();
    let mut pos = 0;
    while pos < frames {
        let n = block.min(frames - pos);
        // Real-time pacing: the audio thread runs on the clock, not on the worker.
        let due = Duration::from_secs_f64(pos as f64 / f64::from(rate));
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        // The audio side keeps going while the worker sleeps: this loop finishing on time, with underruns
        // counted, is the proof that it never waits for the worker.
        audio.process(&[&input[pos..pos + n]], &mut [&mut output[pos..pos + n]]);
        pos += n;
    }
    thread.stop();
    let underruns = audio.stats().snapshot().underruns;
    (input, output, audio.latency(), underruns)
}

#[test]
fn a_stalled_worker_causes_counted_underruns_with_dry_fallback_and_no_drift() {
    let (input, output, latency, underruns) = stall_run(UnderrunMode::Dry);
    assert!(underruns > 0, "the stall must cause underruns");
    // Wet (passthrough) and the dry fallback are the same delayed signal, so the whole output must be the input
    // delayed by exactly the latency: during the stall (fallback) and after it (re-aligned, no drift).
    assert_delayed(&input, &output, latency, "dry fallback");
}

#[test]
fn a_stalled_worker_with_silence_fallback_goes_quiet_then_realigns() {
    let (input, output, latency, underruns) = stall_run(UnderrunMode::Silence);
    assert!(underruns > 0);
    let silent = output.iter().skip(latency).filter(|&&s| s == 0.0).count();
    assert!(silent > 1000, "the fallback was silence ({silent} zero samples)");
    // Every sample is either the input delayed by exactly the latency or fallback silence: nothing is ever
    // shifted (no drift), and the converted signal comes back after the stall.
    let mut aligned_after_stall = 0;
    for m in latency..output.len() {
        let expected = input[m - latency];
        assert!(output[m] == 0.0 || (output[m] - expected).abs() < 1e-6, "sample {m} is neither aligned nor silence");
        if m > output.len() / 2 && output[m] != 0.0 {
            aligned_after_stall += 1;
        }
    }
    assert!(aligned_after_stall > 10_000, "the converted signal resumed ({aligned_after_stall} samples)");
}

#[test]
fn invalid_configurations_are_refused() {
    assert!(RtEngine::build(&config(48_000, 0, 1), Box::new(Passthrough::default())).is_err());
    assert!(RtEngine::build(&config(48_000, 256, 3), Box::new(Passthrough::default())).is_err());
    assert!(RtEngine::build(&config(4_000, 256, 1), Box::new(Passthrough::default())).is_err());
}

#[test]
fn padded_latency_is_still_exact() {
    let mut rng = Rng(11);
    let mut cfg = config(48_000, 256, 1);
    cfg.min_latency = 3000;
    let (mut audio, mut worker) = RtEngine::build(&cfg, Box::new(Passthrough::default())).unwrap();
    assert_eq!(audio.latency(), 3000);
    let input = vec![(0..48_000).map(|_| rng.uniform()).collect::<Vec<f32>>()];
    let output = run_synchronously(&mut audio, &mut worker, &input, 256, &mut rng);
    assert_delayed(&input[0], &output[0], 3000, "padded");
}

/// Records the block lengths it is given.
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<usize>>>);

impl Converter for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn sample_rate(&self) -> Option<u32> {
        None
    }
    fn prepare(&mut self, _rate: u32, _max_hop: usize, _max_block: usize) {}
    fn latency(&self) -> usize {
        0
    }
    fn process(&mut self, input: &[f32], _s: usize, _l: usize, output: &mut [f32]) {
        self.0.lock().unwrap().push(input.len());
        output.copy_from_slice(input);
    }
    fn reset(&mut self) {}
}

#[test]
fn the_config_files_realtime_keys_shape_the_engine() {
    use demod_voice_core::config::RealtimeSection;
    let blocks = |section: &RealtimeSection| {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let config = RtConfig::from_section(section, 48_000, 256, 1);
        assert_eq!(config.underrun, section.underrun);
        let (mut audio, mut worker) = RtEngine::build(&config, Box::new(Recorder(seen.clone()))).unwrap();
        let mut rng = Rng(2);
        let input = vec![(0..9600).map(|_| rng.uniform()).collect::<Vec<f32>>()];
        run_synchronously(&mut audio, &mut worker, &input, 256, &mut rng);
        let len = seen.lock().unwrap()[0];
        (len, audio.latency())
    };
    let base = RealtimeSection::default();
    let (block, latency) = blocks(&base);
    // context_ms: more history in each block, same latency.
    let (more_context, same_latency) = blocks(&RealtimeSection { context_ms: 80.0, ..base.clone() });
    assert_eq!(more_context - block, 40 * 48);
    assert_eq!(same_latency, latency);
    // hop_ms: a longer hop is a longer block and a longer latency.
    let (longer_hop, longer_latency) = blocks(&RealtimeSection { hop_ms: 20.0, ..base.clone() });
    assert_eq!(longer_hop - block, 10 * 48);
    assert!(longer_latency > latency);
    // crossfade_ms: the SOLA overlap and search window are both lookahead.
    let (longer_fade, fade_latency) = blocks(&RealtimeSection { crossfade_ms: 6.0, ..base.clone() });
    assert_eq!(longer_fade - block, 2 * 2 * 48);
    assert_eq!(fade_latency - latency, 2 * 2 * 48);
}

#[test]
fn mix_changes_glide_instead_of_jumping() {
    let mut rng = Rng(21);
    let (mut audio, mut worker) = RtEngine::build(&config(48_000, 128, 1), Box::new(Passthrough::default())).unwrap();
    let latency = audio.latency();
    // A constant input: wet and dry are equal, so the output only shows the mix if the mix itself changes
    // level; use a wet path that differs from the dry one by feeding silence then a constant.
    let mut input = vec![0.0f32; 48_000];
    for s in input.iter_mut().skip(latency * 2) {
        *s = 0.5 + 0.0 * rng.uniform();
    }
    let controls = audio.controls();
    let mut output = vec![0.0f32; 48_000];
    let mut pos = 0;
    while pos < 48_000 {
        let n = 128.min(48_000 - pos);
        if pos == 24_000 {
            controls.set_mix(0.0);
        }
        audio.process(&[&input[pos..pos + n]], &mut [&mut output[pos..pos + n]]);
        while worker.step() {}
        pos += n;
    }
    // Wet and dry are both the delayed input here, so the level stays 0.5 through the switch: a mix change
    // never produces a step, and the largest sample-to-sample step after the switch is tiny.
    let largest = output[24_000..].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
    assert!(largest < 1e-3, "step {largest} at the mix change");
}

/// A converter that doubles its input and panics on its 10th hop.
struct PanicsOnTenth {
    calls: usize,
}

impl Converter for PanicsOnTenth {
    fn name(&self) -> &'static str {
        "panicking"
    }
    fn sample_rate(&self) -> Option<u32> {
        None
    }
    fn prepare(&mut self, _rate: u32, _max_hop: usize, _max_block: usize) {}
    fn latency(&self) -> usize {
        0
    }
    fn process(&mut self, input: &[f32], _s: usize, _l: usize, output: &mut [f32]) {
        self.calls += 1;
        if self.calls == 10 {
            panic!("injected failure on hop 10");
        }
        for (o, i) in output.iter_mut().zip(input) {
            *o = 2.0 * i;
        }
    }
    fn reset(&mut self) {}
}

/// Hardening: a converter that panics used to kill the worker thread silently: live audio stayed dry with no word
/// of why, and offline rendering waited 2 s for every block (a DAW bounce took hours).
#[test]
fn a_panicking_converter_is_reported_dead_and_nothing_waits_for_it() {
    let rate = 48_000;
    let block = 256;
    let mut cfg = config(rate, block, 1);
    cfg.offline = true;
    let (mut audio, worker) = RtEngine::build(&cfg, Box::new(PanicsOnTenth { calls: 0 })).unwrap();
    let stats = audio.stats();
    let thread = worker.spawn().unwrap();
    let mut rng = Rng(11);
    let frames = rate as usize * 2;
    let input: Vec<f32> = (0..frames).map(|_| rng.uniform() * 0.25).collect();
    let mut output = vec![0.0f32; frames];
    let started = std::time::Instant::now();
    for pos in (0..frames).step_by(block) {
        let n = block.min(frames - pos);
        audio.process(&[&input[pos..pos + n]], &mut [&mut output[pos..pos + n]]);
    }
    // 375 blocks: waiting 2 s for each would take over 12 minutes; once the death is seen, none waits at all.
    assert!(started.elapsed() < Duration::from_secs(60), "offline rendering waited for a dead worker");
    let snapshot = stats.snapshot();
    assert!(snapshot.worker_dead, "{snapshot:?}");
    let reason = stats.worker_death().unwrap();
    assert!(reason.contains("panicking") && reason.contains("hop 10"), "{reason}");
    // After the death the output is the dry fallback: the input delayed by exactly the latency.
    let latency = audio.latency();
    let tail = frames - rate as usize / 2;
    for m in tail..frames {
        assert!((output[m] - input[m - latency]).abs() < 1e-6, "sample {m} is not the aligned dry signal");
    }
    // Before it, the converter's (doubled) signal was heard.
    let doubled = (latency..latency + 2000).filter(|&m| (output[m] - 2.0 * input[m - latency]).abs() < 1e-6).count();
    assert!(doubled > 1000, "{doubled}");
    assert!(thread.stop().is_some(), "the thread ended cleanly, worker returned");
}

#[test]
fn offline_conversion_with_a_panicking_converter_is_an_error_not_a_hang() {
    let samples = vec![0.1f32; 48_000];
    let err = demod_voice_core::realtime::convert_offline(
        &samples,
        48_000,
        Box::new(PanicsOnTenth { calls: 0 }),
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("converter failed") && err.contains("hop 10"), "{err}");
}
