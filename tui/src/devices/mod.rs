//! Sound devices for the terminal app (cpal): speech playback and the live conversion loop.
//!
//! The device callbacks keep the core engine's real-time rules: no allocation, lock, logging or waiting. Samples
//! reach them through lock-free SPSC rings (`ringbuf`, created as pairs and split); levels and counters leave
//! through atomics. The callback bodies are plain functions ([`fill_output`], [`capture_input`], [`LiveOutput::fill`])
//! so tests run them, allocation checker on, without a device.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SizedSample};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// The loudest sample since the last read; written by a device callback, read (and reset) by the UI.
#[derive(Debug, Default)]
pub struct Meter(AtomicU32);

impl Meter {
    /// Record a peak (absolute value). Non-negative floats order like their bit patterns, so a max of the bits is
    /// a max of the values.
    pub fn record(&self, peak: f32) {
        if peak.is_finite() {
            self.0.fetch_max(peak.abs().to_bits(), Ordering::Relaxed);
        }
    }

    /// The peak since the last call.
    pub fn take(&self) -> f32 {
        f32::from_bits(self.0.swap(0, Ordering::Relaxed))
    }
}

/// What the playback callback shares with the rest of the app.
#[derive(Debug, Default)]
pub struct PlaybackState {
    pub meter: Meter,
    /// Frames of queued audio played so far (the silence played while idle is not counted).
    pub played: AtomicU64,
    /// Set to drop everything queued (an interrupted utterance); the callback clears it once done.
    pub flush: AtomicBool,
    /// Callbacks that ran out of queued audio part-way (a gap in speech, when the synthesis falls behind).
    pub gaps: AtomicU64,
    /// Device trouble, reported by the stream's error callback.
    pub device: DeviceHealth,
}

/// What a stream's error callback reports: glitches counted, a lost device flagged. Atomics only (the callback may
/// run on the audio thread).
#[derive(Debug, Default)]
pub struct DeviceHealth {
    /// Buffer under- or overruns the device reported (audible glitches).
    pub xruns: AtomicU64,
    /// The device went away (unplugged, or the sound server restarted); the stream has stopped.
    pub lost: AtomicBool,
}

impl DeviceHealth {
    fn report(&self, error: &cpal::Error) {
        match error.kind() {
            cpal::ErrorKind::Xrun => {
                self.xruns.fetch_add(1, Ordering::Relaxed);
            }
            cpal::ErrorKind::DeviceNotAvailable
            | cpal::ErrorKind::StreamInvalidated
            | cpal::ErrorKind::DeviceChanged => self.lost.store(true, Ordering::Release),
            _ => {}
        }
    }
}

/// One playback callback: queued mono samples to every channel of `data`, silence when the queue is empty.
pub fn fill_output<T: SizedSample + FromSample<f32>>(
    data: &mut [T],
    channels: usize,
    queue: &mut HeapCons<f32>,
    state: &PlaybackState,
) {
    if state.flush.load(Ordering::Acquire) {
        queue.clear();
        state.flush.store(false, Ordering::Release);
    }
    let channels = channels.max(1);
    let mut peak = 0.0f32;
    let mut played = 0u64;
    let mut ran_out = false;
    for frame in data.chunks_mut(channels) {
        let sample = match queue.try_pop() {
            Some(s) => {
                played += 1;
                s
            }
            None => {
                ran_out |= played > 0;
                0.0
            }
        };
        peak = peak.max(sample.abs());
        let value = T::from_sample(sample.clamp(-1.0, 1.0));
        frame.fill(value);
    }
    if played > 0 {
        state.played.fetch_add(played, Ordering::Relaxed);
        if ran_out {
            state.gaps.fetch_add(1, Ordering::Relaxed);
        }
    }
    state.meter.record(peak);
}

/// Evaluate `$body` with `$t` standing for the sample type of `$format`, for the formats the app converts; any
/// other format returns `Err($unsupported(format))` from the enclosing function.
macro_rules! with_sample_type {
    ($format:expr, $t:ident => $body:expr, $unsupported:expr) => {
        match $format {
            cpal::SampleFormat::F32 => {
                type $t = f32;
                $body
            }
            cpal::SampleFormat::I16 => {
                type $t = i16;
                $body
            }
            cpal::SampleFormat::I32 => {
                type $t = i32;
                $body
            }
            cpal::SampleFormat::U16 => {
                type $t = u16;
                $body
            }
            other => return Err($unsupported(other)),
        }
    };
}

/// The default output device (or the one named), for speech playback. The stream is opened when there is
/// something to play and closed once it has been played ([`Playback::close_when_played`]): an idle app holds no
/// device and costs no CPU.
pub struct Playback {
    pub device: String,
    pub rate: u32,
    pub channels: u16,
    pub state: Arc<PlaybackState>,
    handle: cpal::Device,
    format: cpal::SampleFormat,
    stream: Option<OpenStream>,
    /// Bumped by every [`Playback::queue`], so a closer knows whether someone queued after it.
    generation: u64,
}

/// A running stream and the producer end of its queue.
struct OpenStream {
    queue: HeapProd<f32>,
    /// Keeps the stream alive; dropping it stops the sound.
    _stream: cpal::Stream,
    /// How long the device may still be playing after the queue empties (its own buffer).
    tail: Duration,
}

impl std::fmt::Debug for Playback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playback").field("device", &self.device).field("rate", &self.rate).finish()
    }
}

/// How much audio the playback queue holds ahead of the device.
const QUEUE_SECONDS: u32 = 2;

impl Playback {
    /// Find `device` (by name), or the default output device, and check it opens.
    pub fn open(device: Option<&str>) -> Result<Playback, String> {
        let host = cpal::default_host();
        let handle = find_device(&host, device, false)?;
        let name = device_name(&handle);
        let config = handle
            .default_output_config()
            .map_err(|e| format!("output device `{name}` offers no usable format: {e}"))?;
        let mut playback = Playback {
            device: name,
            rate: config.sample_rate(),
            channels: config.channels(),
            state: Arc::new(PlaybackState::default()),
            handle,
            format: config.sample_format(),
            stream: None,
            generation: 0,
        };
        // Open once to be sure it works (a device can be listed and still refuse to open); closed until needed.
        playback.start()?;
        playback.stream = None;
        Ok(playback)
    }

    fn start(&mut self) -> Result<&mut OpenStream, String> {
        if self.stream.is_none() {
            let name = &self.device;
            let (queue, consumer) = HeapRb::<f32>::new((self.rate * QUEUE_SECONDS) as usize).split();
            let config = cpal::StreamConfig {
                channels: self.channels,
                sample_rate: self.rate,
                buffer_size: cpal::BufferSize::Default,
            };
            let (device, state) = (&self.handle, self.state.clone());
            let stream = with_sample_type!(
                self.format,
                T => build_playback::<T>(device, config, consumer, state),
                |other| format!("output device `{name}` wants {other} samples, which are not supported")
            )
            .map_err(|e| format!("cannot open output device `{name}`: {e}"))?;
            stream.play().map_err(|e| format!("cannot start output device `{name}`: {e}"))?;
            let frames = stream.buffer_size().unwrap_or(self.rate / 10);
            let tail =
                Duration::from_secs_f64(f64::from(frames) * 2.0 / f64::from(self.rate)) + Duration::from_millis(20);
            self.stream = Some(OpenStream { queue, _stream: stream, tail });
        }
        self.stream.as_mut().ok_or_else(|| "the output stream did not open".to_string())
    }

    /// Queue `samples` (mono, at [`Playback::rate`]), opening the stream if needed and waiting while the queue is
    /// full. Ok(false) when `stop` was set meanwhile (the rest is not queued). [`Playback::generation`] afterwards
    /// tells a later closer whether anyone queued after this.
    pub fn queue(&mut self, samples: &[f32], stop: &AtomicBool) -> Result<bool, String> {
        self.generation += 1;
        // A flush asked for by an interrupt must not eat what comes after it: let the callback do it first (a
        // closed stream has nothing to flush).
        let asked = Instant::now();
        while self.stream.is_some()
            && self.state.flush.load(Ordering::Acquire)
            && asked.elapsed() < Duration::from_millis(200)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.state.flush.store(false, Ordering::Release);
        let queue = &mut self.start()?.queue;
        let mut rest = samples;
        while !rest.is_empty() {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let pushed = queue.push_slice(rest);
            rest = &rest[pushed..];
            if pushed == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(true)
    }

    /// Bumped by every [`Playback::queue`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Samples queued and not played yet.
    pub fn pending(&self) -> usize {
        self.stream.as_ref().map_or(0, |s| s.queue.occupied_len())
    }

    /// Close the stream now (an interrupt: what is queued is dropped).
    pub fn close(&mut self) {
        self.stream = None;
    }
}

/// Wait until everything queued on `playback` has been played (or `stop` is set), then close the stream, unless
/// someone queued after `mine` (the [`Playback::generation`] after this caller's last queue): the stream is theirs
/// then. Locks only briefly, so others can queue while this waits.
pub fn close_when_played(playback: &std::sync::Mutex<Option<Playback>>, stop: &AtomicBool, mine: u64) {
    let lock = || playback.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let mut guard = lock();
        let Some(out) = guard.as_mut() else { return };
        if out.generation != mine {
            return;
        }
        if stop.load(Ordering::Relaxed) {
            out.close();
            return;
        }
        if out.pending() > 0 {
            drop(guard);
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let Some(tail) = out.stream.as_ref().map(|s| s.tail) else { return };
        drop(guard);
        // The device's own buffer plays out; stopping meanwhile closes at once.
        let until = Instant::now() + tail;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut guard = lock();
        if let Some(out) = guard.as_mut().filter(|out| out.generation == mine && out.pending() == 0) {
            out.close();
        }
        return;
    }
}

pub(crate) fn build_playback<T: SizedSample + FromSample<f32>>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut queue: HeapCons<f32>,
    state: Arc<PlaybackState>,
) -> Result<cpal::Stream, cpal::Error> {
    let channels = usize::from(config.channels);
    device.build_output_stream::<T, _, _>(
        config,
        {
            let state = state.clone();
            move |data, _| fill_output(data, channels, &mut queue, &state)
        },
        move |error| state.device.report(&error),
        None,
    )
}

/// Keep ALSA's messages off stderr for this thread (they would tear the full-screen app, and our own one-line
/// errors already say what went wrong).
pub(crate) fn quiet_alsa() {
    #[cfg(target_os = "linux")]
    {
        thread_local! {
            static QUIET: std::cell::OnceCell<()> = const { std::cell::OnceCell::new() };
        }
        QUIET.with(|quiet| {
            quiet.get_or_init(|| {
                let _ = alsa::Output::local_error_handler();
            });
        });
    }
}

pub(crate) fn device_name(device: &cpal::Device) -> String {
    device.description().map(|d| d.name().to_string()).unwrap_or_else(|_| "(unnamed)".into())
}

pub(crate) fn find_device(host: &cpal::Host, name: Option<&str>, input: bool) -> Result<cpal::Device, String> {
    quiet_alsa();
    let kind = if input { "input" } else { "output" };
    match name {
        None => {
            let found = if input { host.default_input_device() } else { host.default_output_device() };
            found.ok_or_else(|| format!("no audio {kind} device"))
        }
        Some(wanted) => {
            let devices = if input { host.input_devices() } else { host.output_devices() }
                .map_err(|e| format!("cannot list audio {kind} devices: {e}"))?;
            let mut names = Vec::new();
            for device in devices {
                let found = device_name(&device);
                if found == wanted {
                    return Ok(device);
                }
                names.push(found);
            }
            Err(format!("no audio {kind} device named `{wanted}` (found: {})", names.join(", ")))
        }
    }
}

/// The output (or input) device `name` (None: the default) and its default format, without opening a stream: for
/// `health`.
pub fn describe(name: Option<&str>, input: bool) -> Result<String, String> {
    let host = cpal::default_host();
    let device = find_device(&host, name, input)?;
    let name = device_name(&device);
    let config = if input { device.default_input_config() } else { device.default_output_config() }
        .map_err(|e| format!("`{name}` offers no usable format: {e}"))?;
    Ok(format!("{name} ({} Hz, {} channel(s), {})", config.sample_rate(), config.channels(), config.sample_format()))
}

/// Names of the audio devices for input (or output), the default first.
pub fn device_names(input: bool) -> Vec<String> {
    quiet_alsa();
    let host = cpal::default_host();
    let default = if input { host.default_input_device() } else { host.default_output_device() };
    let mut names: Vec<String> = default.iter().map(device_name).collect();
    let devices = if input { host.input_devices() } else { host.output_devices() };
    if let Ok(devices) = devices {
        for device in devices {
            let name = device_name(&device);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

// Declared after `with_sample_type!`, which it uses.
mod live;

pub use live::*;

#[cfg(test)]
mod tests {
    use super::*;
    use demod_voice_core::convert::Passthrough;
    use demod_voice_core::realtime::{RtConfig, RtEngine};

    #[test]
    fn playback_spreads_queued_speech_to_every_channel_then_plays_silence() {
        let (mut producer, mut consumer) = HeapRb::<f32>::new(16).split();
        let state = PlaybackState::default();
        producer.push_slice(&[0.5, -0.25, 0.125]);
        let mut data = [1.0f32; 8];
        fill_output(&mut data, 2, &mut consumer, &state);
        assert_eq!(data, [0.5, 0.5, -0.25, -0.25, 0.125, 0.125, 0.0, 0.0]);
        assert_eq!(state.played.load(Ordering::Relaxed), 3);
        assert_eq!(state.gaps.load(Ordering::Relaxed), 1, "running out mid-callback is a gap");
        assert_eq!(state.meter.take(), 0.5);
        assert_eq!(state.meter.take(), 0.0, "reading the meter resets it");
        // Idle: silence, no gap counted, nothing played.
        fill_output(&mut data, 2, &mut consumer, &state);
        assert_eq!(data, [0.0; 8]);
        assert_eq!(state.played.load(Ordering::Relaxed), 3);
        assert_eq!(state.gaps.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn playback_converts_to_integer_samples_and_clamps() {
        let (mut producer, mut consumer) = HeapRb::<f32>::new(16).split();
        let state = PlaybackState::default();
        producer.push_slice(&[1.5, -1.0, 0.0]);
        let mut data = [7i16; 3];
        fill_output(&mut data, 1, &mut consumer, &state);
        assert_eq!(data, [i16::MAX, i16::MIN, 0]);
    }

    #[test]
    fn flush_drops_everything_queued_at_the_next_callback() {
        let (mut producer, mut consumer) = HeapRb::<f32>::new(64).split();
        let state = PlaybackState::default();
        producer.push_slice(&[0.3; 40]);
        state.flush.store(true, Ordering::Release);
        let mut data = [1.0f32; 4];
        fill_output(&mut data, 1, &mut consumer, &state);
        assert_eq!(data, [0.0; 4]);
        assert!(consumer.is_empty());
        assert!(!state.flush.load(Ordering::Acquire), "the flush request is consumed");
    }

    #[test]
    fn capture_mixes_channels_down_and_counts_what_does_not_fit() {
        let (mut producer, mut consumer) = HeapRb::<f32>::new(2).split();
        let live = LiveState::default();
        let data = [0.5f32, 0.1, -0.2, -0.4, 0.9, 0.9];
        capture_input(&data, 2, &mut producer, &live);
        let got: Vec<f32> = consumer.pop_iter().collect();
        assert_eq!(got.len(), 2);
        assert!((got[0] - 0.3).abs() < 1e-6 && (got[1] + 0.3).abs() < 1e-6, "{got:?}");
        assert_eq!(live.input_lost.load(Ordering::Relaxed), 1);
        assert!((live.input_meter.take() - 0.9).abs() < 1e-6);
    }

    fn live_output(block: usize) -> (LiveOutput, HeapProd<f32>) {
        let config = RtConfig {
            sample_rate_hz: 48_000,
            max_block: block,
            channels: 1,
            hop_ms: 10.0,
            crossfade_ms: 2.0,
            context_ms: 0.0,
            underrun: demod_voice_core::config::UnderrunMode::Dry,
            offline: true,
            min_latency: 0,
        };
        let (engine, worker) = RtEngine::build(&config, Box::new(Passthrough::default())).expect("engine");
        std::mem::forget(worker.spawn().expect("worker"));
        let (producer, consumer) = HeapRb::<f32>::new(block * 8).split();
        (LiveOutput::new(engine, consumer, Arc::new(LiveState::default()), block), producer)
    }

    #[test]
    fn live_output_passes_the_microphone_through_the_engine_delayed_by_its_latency() {
        let block = 128;
        let (mut out, mut mic) = live_output(block);
        let latency = out.engine.latency();
        let signal: Vec<f32> = (0..block * 40).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let mut heard: Vec<f32> = Vec::new();
        for chunk in signal.chunks(block) {
            mic.push_slice(chunk);
            let mut data = vec![0.0f32; block * 2];
            out.fill(&mut data, 2);
            assert!(data.chunks(2).all(|f| f[0] == f[1]), "both channels carry the same signal");
            heard.extend(data.iter().step_by(2));
        }
        assert!(latency < heard.len());
        for (i, s) in heard[latency..].iter().enumerate() {
            assert!((s - signal[i]).abs() < 1e-3, "sample {i}: {s} vs {}", signal[i]);
        }
        assert_eq!(out.state.input_starved.load(Ordering::Relaxed), 0);
        assert!(out.state.output_meter.take() > 0.4);
    }

    #[test]
    fn live_output_counts_a_starved_microphone_and_drops_drifted_excess() {
        let block = 64;
        let (mut out, mut mic) = live_output(block);
        let mut data = vec![0.0f32; block];
        out.fill(&mut data, 1);
        assert_eq!(out.state.input_starved.load(Ordering::Relaxed), 1, "no input at all is starvation");
        mic.push_slice(&vec![0.1; block * 6]);
        out.fill(&mut data, 1);
        // Slack is three blocks: of six queued, three were too old and went; one block was played.
        assert_eq!(out.state.input_lost.load(Ordering::Relaxed), (block * 3) as u64);
        assert_eq!(out.ring.occupied_len(), block * 2);
    }

    #[test]
    fn device_callbacks_never_allocate() {
        let block = 128;
        let (mut out, mut mic) = live_output(block);
        // The similarity monitor's tap is fed from the callback too (and may fill up: it then drops).
        let (tap, mut tapped) = demod_voice_core::monitor::tap(48_000);
        out.tap = Some(tap);
        let (mut producer, mut consumer) = HeapRb::<f32>::new(4096).split();
        let (mut ring_in, _ring_out) = HeapRb::<f32>::new(4096).split();
        let playback = PlaybackState::default();
        let live = LiveState::default();
        producer.push_slice(&[0.2; 1000]);
        let mut stereo = vec![0i16; block * 2];
        let mut mono = vec![0.0f32; block];
        let captured = vec![0.1f32; block * 2];
        mic.push_slice(&[0.1; 512]);
        assert_no_alloc::assert_no_alloc(|| {
            for _ in 0..10 {
                fill_output(&mut stereo, 2, &mut consumer, &playback);
                capture_input(&captured, 2, &mut ring_in, &live);
                out.fill(&mut mono, 1);
            }
        });
        assert_eq!(tapped.occupied_len(), block * 10, "every output sample reached the monitor's tap");
        tapped.clear();
    }
}
