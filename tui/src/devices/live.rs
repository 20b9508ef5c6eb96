//! The live conversion loop: microphone -> input ring -> the core real-time engine -> output ring -> speakers.

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SizedSample};
use demod_voice_core::realtime::{AudioSide, Stats};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

/// One capture callback: mix `data` down to mono into `ring`; samples that do not fit are counted as lost.
pub fn capture_input<T: SizedSample>(data: &[T], channels: usize, ring: &mut HeapProd<f32>, live: &LiveState)
where
    f32: FromSample<T>,
{
    let channels = channels.max(1);
    let scale = 1.0 / channels as f32;
    let mut peak = 0.0f32;
    let mut lost = 0u64;
    for frame in data.chunks(channels) {
        let mono = frame.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() * scale;
        peak = peak.max(mono.abs());
        if ring.try_push(mono).is_err() {
            lost += 1;
        }
    }
    live.input_meter.record(peak);
    if lost > 0 {
        live.input_lost.fetch_add(lost, Ordering::Relaxed);
    }
}

/// Counters and levels of a live conversion, shared with the UI.
#[derive(Debug, Default)]
pub struct LiveState {
    pub input_meter: Meter,
    pub output_meter: Meter,
    /// Output callbacks that found too little microphone input (the input device runs late or slow).
    pub input_starved: AtomicU64,
    /// Microphone samples dropped: the ring was full, or held more than the allowed slack (clock drift).
    pub input_lost: AtomicU64,
    /// Trouble either device reported.
    pub device: DeviceHealth,
}

/// The output side of the live loop: microphone ring -> engine -> device.
pub struct LiveOutput {
    pub engine: AudioSide,
    pub ring: HeapCons<f32>,
    pub state: Arc<LiveState>,
    scratch_in: Vec<f32>,
    scratch_out: Vec<f32>,
    /// Most microphone samples allowed to wait in the ring; beyond this the oldest are dropped, so clock drift
    /// between two devices cannot build up latency.
    slack: usize,
    /// A copy of the output for the similarity monitor (lock-free; dropped when the monitor is behind).
    pub tap: Option<demod_voice_core::monitor::Tap>,
}

impl LiveOutput {
    pub fn new(engine: AudioSide, ring: HeapCons<f32>, state: Arc<LiveState>, max_block: usize) -> Self {
        LiveOutput {
            engine,
            ring,
            state,
            scratch_in: vec![0.0; max_block],
            scratch_out: vec![0.0; max_block],
            slack: max_block * 3,
            tap: None,
        }
    }

    /// One output callback.
    pub fn fill<T: SizedSample + FromSample<f32>>(&mut self, data: &mut [T], channels: usize) {
        let channels = channels.max(1);
        let excess = self.ring.occupied_len().saturating_sub(self.slack);
        if excess > 0 {
            self.ring.skip(excess);
            self.state.input_lost.fetch_add(excess as u64, Ordering::Relaxed);
        }
        let block = self.scratch_in.len();
        let mut peak = 0.0f32;
        let mut starved = false;
        for chunk in data.chunks_mut(block * channels) {
            let frames = chunk.len() / channels;
            let input = &mut self.scratch_in[..frames];
            let got = self.ring.pop_slice(input);
            if got < frames {
                input[got..].fill(0.0);
                starved = true;
            }
            let output = &mut self.scratch_out[..frames];
            self.engine.process(&[&*input], &mut [&mut *output]);
            if let Some(tap) = self.tap.as_mut() {
                tap.push(output);
            }
            for (frame, sample) in chunk.chunks_mut(channels).zip(output.iter()) {
                peak = peak.max(sample.abs());
                frame.fill(T::from_sample(sample.clamp(-1.0, 1.0)));
            }
        }
        if starved {
            self.state.input_starved.fetch_add(1, Ordering::Relaxed);
        }
        self.state.output_meter.record(peak);
    }
}

/// What a live conversion is set up with.
pub struct LiveSetup {
    pub input: Option<String>,
    pub output: Option<String>,
    pub converter: Box<dyn demod_voice_core::convert::Converter>,
    pub realtime: demod_voice_core::config::RealtimeSection,
    pub mix: f32,
    /// Score the output against a profile about once a second (the encoder, and the target the UI sets).
    pub similarity: Option<(demod_voice_core::speaker::SpeakerEncoder, demod_voice_core::monitor::Target)>,
}

/// A running live conversion: two device streams and the engine's worker thread.
pub struct Live {
    pub input: String,
    pub output: String,
    pub rate: u32,
    pub block: usize,
    pub state: Arc<LiveState>,
    pub stats: Arc<Stats>,
    pub controls: Arc<demod_voice_core::realtime::Controls>,
    pub latency_samples: usize,
    /// The rolling similarity's score cell, when the monitor runs.
    pub similarity: Option<Arc<std::sync::atomic::AtomicU32>>,
    _monitor: Option<demod_voice_core::monitor::SimilarityMonitor>,
    _input_stream: cpal::Stream,
    _output_stream: cpal::Stream,
    _worker: demod_voice_core::realtime::WorkerThread,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("input", &self.input).field("output", &self.output).finish()
    }
}

/// The block the live loop asks devices for (frames), when they let it choose.
pub(crate) const LIVE_BLOCK: u32 = 256;
/// The block assumed when a device does not say what it will use.
pub(crate) const LIVE_BLOCK_UNKNOWN: usize = 2048;

impl Live {
    /// Open both devices and start converting.
    pub fn start(setup: LiveSetup) -> Result<Live, String> {
        let host = cpal::default_host();
        let out_device = find_device(&host, setup.output.as_deref(), false)?;
        let in_device = find_device(&host, setup.input.as_deref(), true)?;
        let (out_name, in_name) = (device_name(&out_device), device_name(&in_device));
        let out_config = out_device
            .default_output_config()
            .map_err(|e| format!("output device `{out_name}` offers no usable format: {e}"))?;
        let rate = out_config.sample_rate();
        let in_config = in_device
            .supported_input_configs()
            .map_err(|e| format!("input device `{in_name}` offers no usable format: {e}"))?
            .filter(|c| c.min_sample_rate() <= rate && rate <= c.max_sample_rate())
            .max_by_key(|c| (c.sample_format() == cpal::SampleFormat::F32, std::cmp::Reverse(c.channels())))
            .map(|c| c.with_sample_rate(rate))
            .ok_or_else(|| {
                format!("input device `{in_name}` cannot run at {rate} Hz like output `{out_name}`; pick another pair")
            })?;
        let (out_buffer, asked) = pick_block(out_config.buffer_size());
        let (in_buffer, _) = pick_block(in_config.buffer_size());
        // The engine must take the device's whole callback at once, and a device may not grant the size asked for:
        // a short-lived silent stream tells what it will really use.
        let granted = with_sample_type!(
            out_config.sample_format(),
            T => out_device
                .build_output_stream::<T, _, _>(
                    cpal::StreamConfig { channels: out_config.channels(), sample_rate: rate, buffer_size: out_buffer },
                    |data: &mut [T], _| data.fill(<T as cpal::Sample>::EQUILIBRIUM),
                    |_| {},
                    None,
                )
                .ok()
                .and_then(|probe| probe.buffer_size().ok()),
            |other| format!("output device `{out_name}` wants {other} samples, which are not supported")
        );
        let block =
            granted.map_or(asked, |frames| asked.max(frames as usize)).min(demod_voice_core::realtime::MAX_BLOCK);
        let rt = demod_voice_core::realtime::RtConfig::from_section(&setup.realtime, rate, block, 1);
        let (engine, worker) = demod_voice_core::realtime::RtEngine::build(&rt, setup.converter)
            .map_err(|e| format!("live engine: {e}"))?;
        let latency_samples = engine.latency();
        let stats = engine.stats();
        let controls = engine.controls();
        controls.set_mix(setup.mix);
        let worker = worker.spawn().map_err(|e| format!("cannot start the conversion worker: {e}"))?;
        let state = Arc::new(LiveState::default());
        let (producer, consumer) = HeapRb::<f32>::new(block * 8).split();
        let mut output = LiveOutput::new(engine, consumer, state.clone(), block);
        let monitor = match setup.similarity {
            Some((encoder, target)) => {
                let (push, pull) = demod_voice_core::monitor::tap(rate);
                output.tap = Some(push);
                demod_voice_core::monitor::SimilarityMonitor::spawn(pull, rate, target, encoder).ok()
            }
            None => None,
        };
        let out_channels = usize::from(out_config.channels());
        let out_stream_config =
            cpal::StreamConfig { channels: out_config.channels(), sample_rate: rate, buffer_size: out_buffer };
        let out_stream = with_sample_type!(
            out_config.sample_format(),
            T => out_device.build_output_stream::<T, _, _>(
                out_stream_config,
                move |data, _| output.fill(data, out_channels),
                {
                    let state = state.clone();
                    move |error| state.device.report(&error)
                },
                None,
            ),
            |other| format!("output device `{out_name}` wants {other} samples, which are not supported")
        )
        .map_err(|e| format!("cannot open output device `{out_name}`: {e}"))?;
        let in_channels = usize::from(in_config.channels());
        let in_stream_config =
            cpal::StreamConfig { channels: in_config.channels(), sample_rate: rate, buffer_size: in_buffer };
        let mut ring = producer;
        let in_state = state.clone();
        let in_stream = with_sample_type!(
            in_config.sample_format(),
            T => in_device.build_input_stream::<T, _, _>(
                in_stream_config,
                move |data, _| capture_input(data, in_channels, &mut ring, &in_state),
                {
                    let state = state.clone();
                    move |error| state.device.report(&error)
                },
                None,
            ),
            |other| format!("input device `{in_name}` gives {other} samples, which are not supported")
        )
        .map_err(|e| format!("cannot open input device `{in_name}`: {e}"))?;
        in_stream.play().map_err(|e| format!("cannot start input device `{in_name}`: {e}"))?;
        out_stream.play().map_err(|e| format!("cannot start output device `{out_name}`: {e}"))?;
        Ok(Live {
            input: in_name,
            output: out_name,
            rate,
            block,
            state,
            stats,
            controls,
            latency_samples,
            similarity: monitor.as_ref().map(demod_voice_core::monitor::SimilarityMonitor::handle),
            _monitor: monitor,
            _input_stream: in_stream,
            _output_stream: out_stream,
            _worker: worker,
        })
    }

    /// Latency through the loop, seconds: the engine's, plus one device block on each side.
    pub fn latency_seconds(&self) -> f64 {
        (self.latency_samples + 2 * self.block) as f64 / f64::from(self.rate)
    }
}

/// The buffer size to ask a device for, and the largest block the engine must then take.
pub(crate) fn pick_block(range: &cpal::SupportedBufferSize) -> (cpal::BufferSize, usize) {
    match *range {
        // Some drivers report min > max (or 0): `clamp` would panic on that, and a fixed size from a nonsense
        // range would be refused; let the driver choose, and size the engine for the worst case.
        cpal::SupportedBufferSize::Range { min, max } if min == 0 || min > max => {
            (cpal::BufferSize::Default, LIVE_BLOCK_UNKNOWN)
        }
        cpal::SupportedBufferSize::Range { min, max } => {
            let block = LIVE_BLOCK.clamp(min, max);
            (cpal::BufferSize::Fixed(block), block as usize)
        }
        cpal::SupportedBufferSize::Unknown => (cpal::BufferSize::Default, LIVE_BLOCK_UNKNOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_reporting_min_above_max_gets_the_default_size_not_a_panic() {
        let (size, block) = pick_block(&cpal::SupportedBufferSize::Range { min: 4096, max: 64 });
        assert_eq!((size, block), (cpal::BufferSize::Default, LIVE_BLOCK_UNKNOWN));
        let (size, _) = pick_block(&cpal::SupportedBufferSize::Range { min: 0, max: 0 });
        assert_eq!(size, cpal::BufferSize::Default);
        let (size, block) = pick_block(&cpal::SupportedBufferSize::Range { min: 32, max: 8192 });
        assert_eq!((size, block), (cpal::BufferSize::Fixed(LIVE_BLOCK), LIVE_BLOCK as usize));
    }
}
