//! One synthesis request, whichever protocol brought it: its settings laid over the server's (and checked), a
//! session leased from the pool, and the audio handed on sentence by sentence.

use std::sync::atomic::Ordering;
use std::time::Instant;

use demod_voice_core::pipeline::{SentenceConverter, Speech, Spoken};
use demod_voice_core::piper::PiperVoice;
use demod_voice_core::settings::{Setting, Settings};

use super::pool::Pool;

/// The longest text one request may carry (characters).
pub const MAX_TEXT_CHARS: usize = 100_000;

/// A request's failure, with the HTTP status that says what kind it is.
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

impl Failure {
    pub fn new(status: u16, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into() }
    }
}

/// What to say, and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpeechRequest {
    pub text: String,
    /// Installed voice name; `None`: the server's voice.
    pub voice: Option<String>,
    /// Speaker name or id (multi-speaker voices).
    pub speaker: Option<String>,
    pub length_scale: Option<f32>,
    pub noise_scale: Option<f32>,
    pub noise_w: Option<f32>,
    pub sentence_silence: Option<f32>,
    pub volume: Option<f32>,
    pub sample_rate: Option<u32>,
}

/// The voice and settings a request asks for, checked (a bad value is a 400 naming the field).
pub fn settings_for(pool: &Pool, request: &SpeechRequest) -> Result<(String, Settings), Failure> {
    if request.text.trim().is_empty() {
        return Err(Failure::new(400, "the input is empty: nothing to speak"));
    }
    if request.text.chars().count() > MAX_TEXT_CHARS {
        return Err(Failure::new(413, format!("the input is longer than {MAX_TEXT_CHARS} characters; split it")));
    }
    let mut settings = pool.settings.clone();
    let source = "request";
    let optional = [
        (request.length_scale.map(Setting::LengthScale)),
        (request.noise_scale.map(Setting::NoiseScale)),
        (request.noise_w.map(Setting::NoiseW)),
        (request.sentence_silence.map(Setting::SentenceSilence)),
        (request.volume.map(Setting::Volume)),
        (request.sample_rate.map(Setting::SampleRate)),
        (request.speaker.clone().map(Setting::Speaker)),
    ];
    for setting in optional.into_iter().flatten() {
        settings.set(setting, source);
    }
    settings.validate().map_err(|e| Failure::new(400, e.to_string()))?;
    let voice = match &request.voice {
        Some(name) => name.clone(),
        None => settings.config.tts.voice.clone(),
    };
    pool.model_path(&voice).map_err(|e| Failure::new(404, crate::one_line(&e)))?;
    Ok((voice, settings))
}

/// Speak `request`, handing each sentence's samples (at the rate given) to `each` as soon as it is ready; stops
/// at the first error from `each` (the client went away) or when the request's time is up.
pub fn speak(
    pool: &Pool,
    request: &SpeechRequest,
    start: impl FnMut(u32) -> std::io::Result<()>,
    each: impl FnMut(&[f32]) -> std::io::Result<()>,
) -> Result<Spoken, Failure> {
    speak_converted(pool, request, |_, _| Ok(None), start, each)
}

/// [`speak`], with the sentences converted by what `converter` makes for the leased voice (a clone's).
pub fn speak_converted(
    pool: &Pool,
    request: &SpeechRequest,
    converter: impl FnOnce(&PiperVoice, &Settings) -> Result<Option<SentenceConverter>, Failure>,
    mut start: impl FnMut(u32) -> std::io::Result<()>,
    mut each: impl FnMut(&[f32]) -> std::io::Result<()>,
) -> Result<Spoken, Failure> {
    let (voice_name, settings) = settings_for(pool, request)?;
    let lease = pool.lease(&voice_name).map_err(|e| Failure::new(503, crate::one_line(&e)))?;
    let mut speech = Speech::new(lease.voice(), &settings).map_err(|e| Failure::new(400, e.to_string()))?;
    if let Some(converter) = converter(lease.voice(), &settings)? {
        speech.converter = Some(converter);
    }
    let deadline = Instant::now() + pool.timeout;
    let started = Instant::now();
    let rate = speech.output_rate_hz;
    // The answer starts with the first sentence: a text with nothing to speak is still a clean 400.
    let mut begun = false;
    let outcome = speech.run(&request.text, |samples| -> anyhow::Result<()> {
        if !begun {
            start(rate).map_err(|e| anyhow::anyhow!("the client went away: {e}"))?;
            begun = true;
        }
        each(samples).map_err(|e| anyhow::anyhow!("the client went away: {e}"))?;
        if Instant::now() > deadline {
            anyhow::bail!("the request took longer than {:.0} s and was stopped", pool.timeout.as_secs_f32());
        }
        Ok(())
    });
    pool.metrics.synthesis_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    match outcome {
        Ok(spoken) => {
            pool.metrics.audio_ms.fetch_add((spoken.seconds() * 1000.0) as u64, Ordering::Relaxed);
            Ok(spoken)
        }
        Err(e) => {
            let message = crate::one_line(&e);
            let status = match e.downcast_ref::<demod_voice_core::error::Error>() {
                _ if message.contains("client went away") => 499,
                Some(demod_voice_core::error::Error::InvalidText { .. }) => 400,
                _ => 500,
            };
            Err(Failure::new(status, message))
        }
    }
}
