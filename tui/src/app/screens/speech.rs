//! What the Synthesize screen's Speak, Replay and Save do on job threads: the speech pipeline into the output
//! device (sentence by sentence) or into a WAV file; and the Speak-to-first-audio measurement `bench` runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use demod_voice_core::pipeline::Speech;
use demod_voice_core::wav::WavEncoding;

use super::synthesize::{OutputInfo, PlaySource};
use crate::app::app_from_context;
use crate::app::jobs::{guarded, lock, quiet_context, Shared};
use crate::app::messages::{Action, AppEvent, Job};
use crate::cli::{GlobalArgs, ScaleArgs};
use crate::context::Context;

/// Save: the speech pipeline into a WAV file, exactly as `demod-voice speak -o` does; the WAV's length in seconds.
pub(crate) fn save_job(
    global: &GlobalArgs,
    text: String,
    path: &std::path::Path,
    voice: Option<String>,
    scales: ScaleArgs,
) -> Result<f32> {
    let mut ctx = quiet_context(global)?;
    ctx.apply_speech_flags(&scales)?;
    ctx.set_voice(voice.as_deref(), "the voice picker");
    // With DEMOD_VOICE_SERVER set, a running `demod-voice serve` speaks (the same file as here).
    if let Some(server) = crate::commands::remote::server_from_env() {
        let mut samples = 0usize;
        let mut rate = 1u32;
        let encoding = WavEncoding::from(ctx.settings.config.output.format);
        let mut file: Option<demod_voice_core::wav::AtomicWav> = None;
        crate::commands::remote::stream(&ctx, &server, &text, |chunk, r| {
            if file.is_none() {
                rate = r;
                file = Some(demod_voice_core::wav::AtomicWav::create_with(path, r, encoding)?);
            }
            samples += chunk.len();
            if let Some(file) = file.as_mut() {
                file.write(chunk)?;
            }
            Ok(())
        })?;
        if let Some(file) = file {
            file.finish()?;
        }
        return Ok(samples as f32 / rate as f32);
    }
    let voice = ctx.settings.load_voice(None)?;
    let speech = Speech::new(&voice, &ctx.settings)?;
    let spoken = speech.to_file(&text, path, WavEncoding::from(ctx.settings.config.output.format))?;
    Ok(spoken.seconds() as f32)
}

/// The voice `name` (None: the configured one), loaded once and kept; the app keeps one voice loaded at a time.
pub(crate) fn kept_voice(
    shared: &Shared,
    ctx: &Context,
    name: Option<&str>,
) -> Result<Arc<demod_voice_core::piper::PiperVoice>> {
    let spec = name.unwrap_or(&ctx.settings.config.tts.voice);
    shared.voices.keep_only(spec);
    Ok(shared.voices.get(spec, |spec| ctx.settings.load_voice(Some(spec)))?)
}

/// Resample `samples` to the output rate, tell the app, and queue them for the device (waiting while the queue
/// is full; giving up when `stop` is set). The playback's generation after queuing.
pub(crate) fn queue_for_output(
    shared: &Shared,
    sender: &Sender<AppEvent>,
    id: u64,
    samples: Vec<f32>,
    rate: u32,
    stop: &AtomicBool,
) -> Result<u64> {
    let mut playback = lock(&shared.playback);
    let Some(playback) = playback.as_mut() else { anyhow::bail!("the audio output is closed") };
    let samples =
        if rate == playback.rate { samples } else { demod_voice_core::wav::resample(&samples, rate, playback.rate)? };
    // The app learns of the samples before the device can play them, so its progress never runs ahead.
    let _ = sender.send(AppEvent::Queued { id, samples: samples.clone() });
    playback.queue(&samples, stop).map_err(|problem| anyhow::anyhow!("{problem}"))?;
    Ok(playback.generation())
}

/// Speak `text` through the output device, sentence by sentence as each is synthesized (same pipeline as
/// `speak`). Stopping is not an error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn speak_job(
    global: &GlobalArgs,
    shared: &Shared,
    sender: &Sender<AppEvent>,
    id: u64,
    text: &str,
    voice: Option<String>,
    scales: &ScaleArgs,
    stop: &AtomicBool,
) -> Result<()> {
    let mut ctx = quiet_context(global)?;
    ctx.apply_speech_flags(scales)?;
    let device_rate = lock(&shared.playback).as_ref().map(|playback| playback.rate);
    // Each piece of audio goes to the device as it comes (the device's rate: one resampling step, not two).
    let mut mine = None;
    let mut deliver = |samples: &[f32], rate: u32| -> Result<()> {
        if !stop.load(Ordering::Relaxed) {
            mine = Some(queue_for_output(shared, sender, id, samples.to_vec(), rate, stop)?);
        }
        if stop.load(Ordering::Relaxed) {
            anyhow::bail!("stopped");
        }
        Ok(())
    };
    let spoken = match crate::commands::remote::server_from_env() {
        // With DEMOD_VOICE_SERVER set, a running `demod-voice serve` speaks; it resamples each sentence.
        Some(server) => {
            ctx.set_voice(voice.as_deref(), "the voice picker");
            if let Some(rate) = device_rate {
                ctx.settings.set(demod_voice_core::settings::Setting::SampleRate(rate), "the output device");
            }
            crate::commands::remote::stream(&ctx, &server, text, &mut deliver).map(|_| ())
        }
        None => {
            let voice = kept_voice(shared, &ctx, voice.as_deref())?;
            let mut speech = Speech::new(&voice, &ctx.settings)?;
            if let Some(rate) = device_rate {
                speech.output_rate_hz = rate;
            }
            // Heard, not saved: the first clause plays while the rest of its sentence is synthesised.
            speech.options.early_first_clause = true;
            let rate = speech.output_rate_hz;
            speech.run(text, |samples| deliver(samples, rate)).map(|_| ())
        }
    };
    if let Some(mine) = mine {
        crate::devices::close_when_played(&shared.playback, stop, mine);
    }
    match spoken {
        _ if stop.load(Ordering::Relaxed) => Ok(()),
        Err(error) => Err(error),
        Ok(()) => Ok(()),
    }
}

/// Play a history entry again.
pub(crate) fn play_job(
    shared: &Shared,
    sender: &Sender<AppEvent>,
    id: u64,
    source: PlaySource,
    stop: &AtomicBool,
) -> Result<()> {
    let (samples, rate) = match source {
        PlaySource::Samples(samples) => {
            let rate = lock(&shared.playback).as_ref().map_or(0, |p| p.rate);
            (samples.as_ref().clone(), rate)
        }
        PlaySource::File(path) => demod_voice_core::wav::read_wav_mono(&path)?,
    };
    let mine = queue_for_output(shared, sender, id, samples, rate, stop)?;
    crate::devices::close_when_played(&shared.playback, stop, mine);
    Ok(())
}

/// Seconds from pressing Speak (Ctrl-P) to the device taking the first sample, `runs` times, for
/// `bench --speak-first-audio`: the app's own Speak path (update -> job -> synthesis -> queue -> device callback) on
/// the default output device, with the voice preloaded as the app does at start.
pub fn speak_first_audio_times(ctx: &Context, text: &str, runs: usize) -> Result<(String, Vec<f64>)> {
    let mut app = app_from_context(ctx)?;
    let playback = crate::devices::Playback::open(None).map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let device = format!("{} ({} Hz)", playback.device, playback.rate);
    let state = playback.state.clone();
    app.output = Ok(OutputInfo { device: playback.device.clone(), rate: playback.rate, state: state.clone() });
    let shared = Shared::default();
    *lock(&shared.playback) = Some(playback);
    let voice = app.voices.first().map(|v| v.name.clone());
    drop(kept_voice(&shared, &quiet_context(&ctx.global)?, voice.as_deref())?);
    app.text = text.to_string();
    let (sender, receiver) = mpsc::channel();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let Some(Job::Speak { id, text, voice, scales, stop }) = app.update(Action::Speak) else {
            anyhow::bail!("Speak did not start: {}", app.status);
        };
        let (global, shared, sender) = (ctx.global.clone(), shared.clone(), sender.clone());
        let job = std::thread::spawn(move || {
            let outcome = guarded(|| speak_job(&global, &shared, &sender, id, &text, voice, &scales, &stop));
            let _ = sender.send(AppEvent::SpeakDone { id, outcome });
        });
        let before = state.played.load(Ordering::Relaxed);
        let heard = loop {
            if state.played.load(Ordering::Relaxed) > before {
                break Some(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > Duration::from_secs(10) {
                break None;
            }
            std::thread::sleep(Duration::from_micros(100));
        };
        app.update(Action::StopSpeaking);
        let _ = job.join();
        while let Ok(event) = receiver.try_recv() {
            if let AppEvent::SpeakDone { outcome: Err(problem), .. } = event {
                anyhow::bail!("speaking failed: {problem}");
            }
        }
        times.push(heard.ok_or_else(|| anyhow::anyhow!("the device took no audio within 10 s"))?);
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok((device, times))
}
