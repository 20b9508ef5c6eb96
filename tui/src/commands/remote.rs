//! `speak --server URL`: the job goes to a running `demod-voice serve`, which sends the samples as 32-bit floats
//! (`response_format: pcm_f32le`); they are written here exactly as a local `speak` writes its own, so the files
//! are the same (when both run ONNX Runtime with the same number of threads, as they do by default: sums over
//! other thread counts round differently in the last bit).

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use demod_voice_core::pipeline::Sink;
use demod_voice_core::wav::{AtomicWav, WavEncoding};
use serde_json::{json, Value};

use crate::context::Context;
use crate::error::usage;

/// The request body for the settings as they stand: every value a local `speak` would use.
fn body(ctx: &Context, text: &str) -> Result<Value> {
    let settings = &ctx.settings;
    if settings.converter.is_some() {
        return Err(usage("conversion (--preset with a converter, --to) runs locally only; drop --server or it"));
    }
    let voice = settings.chosen_voice()?;
    if voice.contains('/') || voice.ends_with(".onnx") {
        return Err(usage(format!("--server takes voice names, not files (`{voice}`); name a voice the server has")));
    }
    let tts = &settings.config.tts;
    let mut body = json!({
        "model": voice,
        "input": text,
        "response_format": "pcm_f32le",
        "sentence_silence": tts.sentence_silence,
        "volume": tts.volume,
    });
    let optional = [("length_scale", tts.length_scale), ("noise_scale", tts.noise_scale), ("noise_w", tts.noise_w)];
    for (name, value) in optional {
        if let Some(value) = value {
            body[name] = json!(value);
        }
    }
    if let Some(speaker) = &tts.speaker {
        body["speaker"] = json!(speaker);
    }
    if let Some(rate) = settings.config.output.sample_rate {
        body["sample_rate"] = json!(rate);
    }
    if !tts.normalize {
        bail!("tts.normalize false is not sent to a server yet; run locally or set it true");
    }
    Ok(body)
}

/// The server `DEMOD_VOICE_SERVER` names, if any (the app's Speak and Save use it as `speak` does).
pub fn server_from_env() -> Option<String> {
    std::env::var("DEMOD_VOICE_SERVER").ok().filter(|s| !s.trim().is_empty())
}

/// Ask `server` to speak `text` with the settings as they stand; `each` gets the samples as they arrive, with
/// their rate. The samples in all.
pub fn stream(
    ctx: &Context,
    server: &str,
    text: &str,
    mut each: impl FnMut(&[f32], u32) -> Result<()>,
) -> Result<usize> {
    let url = format!("{}/v1/audio/speech", server.trim_end_matches('/'));
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(usage(format!("--server {server}: expected http://HOST:PORT")));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut request = agent.post(&url).header("Content-Type", "application/json");
    if let Some(token) = std::env::var("DEMOD_VOICE_TOKEN").ok().filter(|t| !t.is_empty()) {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let response = request.send(body(ctx, text)?.to_string()).with_context(|| {
        format!("cannot reach the speech server at {server}; is `demod-voice serve` running there?")
    })?;
    let status = response.status().as_u16();
    let rate: Option<u32> =
        response.headers().get("x-sample-rate").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let mut reader = response.into_body().into_reader();
    if status != 200 {
        let mut answer = String::new();
        let _ = reader.take(64 << 10).read_to_string(&mut answer);
        let message = serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(answer);
        bail!("the speech server at {server} answered {status}: {message}");
    }
    let Some(rate) = rate else { bail!("the speech server at {server} sent no X-Sample-Rate; is it demod-voice?") };
    // Samples arrive as they are synthesised; each whole one is handed on.
    let mut buffer = vec![0u8; 64 << 10];
    let mut carry: Vec<u8> = Vec::new();
    let mut total = 0usize;
    loop {
        let n = reader.read(&mut buffer).with_context(|| format!("the speech server at {server} broke off"))?;
        if n == 0 {
            break;
        }
        carry.extend_from_slice(&buffer[..n]);
        let whole = carry.len() / 4 * 4;
        let samples: Vec<f32> =
            carry[..whole].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        carry.drain(..whole);
        if !samples.is_empty() {
            each(&samples, rate)?;
            total += samples.len();
        }
    }
    if !carry.is_empty() || total == 0 {
        bail!("the speech server at {server} sent an incomplete answer");
    }
    Ok(total)
}

/// `speak --server`: the server's samples into the file (or standard output) a local `speak` would write.
pub fn speak_remote(ctx: &Context, server: &str, text: &str, file: Option<&Path>, raw: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let encoding = WavEncoding::from(ctx.settings.config.output.format);
    let mut sink: Option<Sink> = None;
    let mut rate_seen = 0;
    let total = stream(ctx, server, text, |samples, rate| {
        if sink.is_none() {
            rate_seen = rate;
            sink = Some(match file {
                Some(path) => Sink::File(AtomicWav::create_with(path, rate, encoding)?),
                None if raw => Sink::Raw(Box::new(std::io::stdout())),
                None => Sink::wav_stream(Box::new(std::io::BufWriter::new(std::io::stdout())), rate, encoding)?,
            });
        }
        if let Some(sink) = sink.as_mut() {
            sink.write(samples)?;
        }
        Ok(())
    })?;
    let Some(sink) = sink else { bail!("the speech server at {server} sent no audio") };
    let path = sink.finish()?;
    if !ctx.global.quiet {
        let seconds = total as f64 / f64::from(rate_seen.max(1));
        if let Some(path) = path {
            eprintln!(
                "wrote {} ({seconds:.2} s of audio at {rate_seen} Hz from {server}, {:.2}x real time)",
                path.display(),
                seconds / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    Ok(())
}
