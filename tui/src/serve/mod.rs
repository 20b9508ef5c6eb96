//! `demod-voice serve`: a speech service with warm voices, over HTTP (OpenAI-compatible `POST /v1/audio/speech`,
//! voices, health, metrics; see [`http`]) and Wyoming (Home Assistant; see [`wyoming`]), bound to 127.0.0.1
//! unless told otherwise.
//!
//! Every request takes a place in one queue ([`pool::Pool::admit`]; past `--max-queue` it is refused with 429 or
//! a Wyoming error), then a session of its voice from the pool (`--sessions` per voice, each with `--threads`
//! ONNX Runtime threads; voices load on first use and the least recently used idle one is unloaded when the
//! `--memory-mb` budget would be exceeded). SIGTERM or Ctrl-C drains: the listeners close, running requests
//! finish (up to `--timeout`), and the process exits 0; a second signal ends it at once.

pub mod http;
pub mod pool;
pub mod speech;
pub mod wyoming;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use crate::cli::ServeArgs;
use crate::context::Context;
use pool::Pool;

/// What every connection thread shares.
pub struct Server {
    pub pool: Pool,
    pub token: Option<String>,
    /// For `/health`.
    ctx: Context,
    /// The speaker encoder for `/v1/clone`, loaded by the first clone request.
    encoder: std::sync::Mutex<Option<Arc<demod_voice_core::speaker::SpeakerEncoder>>>,
}

impl Server {
    /// The speaker encoder (installed ones only: a request never starts a download).
    pub fn encoder(&self) -> Result<Arc<demod_voice_core::speaker::SpeakerEncoder>, speech::Failure> {
        let mut slot = self.encoder.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(encoder) = slot.as_ref() {
            return Ok(Arc::clone(encoder));
        }
        let loaded = self.pool.settings.installed_speaker_encoder().ok_or_else(|| {
            speech::Failure::new(
                503,
                "the speaker encoder is not installed on the server; run `demod-voice setup` there",
            )
        })?;
        let encoder = Arc::new(loaded.map_err(|e| speech::Failure::new(500, e.to_string()))?);
        *slot = Some(Arc::clone(&encoder));
        Ok(encoder)
    }

    /// `health --json`'s report.
    pub fn health(&self) -> Value {
        serde_json::to_value(crate::health::collect(&self.ctx, false, None)).unwrap_or(Value::Null)
    }

    /// The installed voices, the default one, and the sessions loaded.
    pub fn voices_json(&self) -> Value {
        let loaded = self.pool.loaded();
        let voices: Vec<Value> = demod_voice_core::library::voices(&self.pool.settings.dirs.voices_dir())
            .into_iter()
            .filter(|v| v.problem.is_none())
            .map(|v| {
                let sessions = loaded.iter().find(|(name, _)| *name == v.name).map_or(0, |(_, n)| *n);
                json!({
                    "name": v.name,
                    "language": v.language,
                    "quality": v.quality,
                    "sample_rate": v.sample_rate,
                    "speakers": v.speaker_names,
                    "sessions_loaded": sessions,
                })
            })
            .collect();
        json!({"default": self.pool.settings.config.tts.voice, "voices": voices})
    }

    /// Wyoming's `info`: this program as one TTS service with its voices.
    pub fn wyoming_info(&self) -> Value {
        let attribution = json!({"name": "DeMoD", "url": "https://github.com/demod/demod-voice"});
        let voices: Vec<Value> = demod_voice_core::library::voices(&self.pool.settings.dirs.voices_dir())
            .into_iter()
            .filter(|v| v.problem.is_none())
            .map(|v| {
                let speakers: Option<Vec<Value>> =
                    (!v.speaker_names.is_empty()).then(|| v.speaker_names.iter().map(|s| json!({"name": s})).collect());
                json!({
                    "name": v.name,
                    "description": format!("{} ({}, {})", v.name, v.language, v.quality),
                    "attribution": attribution,
                    "installed": true,
                    "version": null,
                    "languages": [v.language],
                    "speakers": speakers,
                })
            })
            .collect();
        json!({
            "tts": [{
                "name": "demod-voice",
                "description": "DeMoD Voice: Piper voices",
                "attribution": attribution,
                "installed": true,
                "version": env!("CARGO_PKG_VERSION"),
                "voices": voices,
                "supports_synthesize_streaming": true,
            }],
            "asr": [], "handle": [], "intent": [], "wake": [], "mic": [], "snd": [],
        })
    }
}

fn bind(address: &str, what: &str) -> Result<TcpListener> {
    TcpListener::bind(address).with_context(|| {
        format!("cannot listen on {address} for {what}; is another server there? pick another with --{what}")
    })
}

pub fn serve(ctx: &mut Context, args: ServeArgs) -> Result<()> {
    ctx.apply_speech_flags(&args.scales)?;
    ctx.set_voice_args(&args.voice)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Threads per session: `--threads` / `runtime.intra_threads` when given (then as many sessions as fit the
    // cores), else ONNX Runtime's default (the physical cores, as a local `speak` uses) in one session: measured
    // on 2 cores (README), one session of both cores answers a lone request as fast as piper's server and a
    // queue in front of it beats that server's p99 at 4 and 16 clients; `--threads 1 --sessions 2` serves 9%
    // more under heavy load but answers a lone request 40% slower.
    let given = ctx.settings.source_of("runtime.intra_threads") != "default";
    let threads = if given { ctx.settings.config.runtime.intra_threads.max(1) } else { 0 };
    let sessions = args.sessions.unwrap_or(if given { (cores / threads).max(1) } else { 1 });
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut settings = ctx.settings.clone();
    // The server's own voice: what `--language`/`tts.language` choose, installed now if need be (never later,
    // on a client's request).
    let default_voice = settings.chosen_voice()?;
    settings.voice_path(Some(&default_voice))?;
    settings.set(demod_voice_core::settings::Setting::Voice(default_voice.clone()), "serve");
    let mut pool = Pool::new(settings, sessions, args.memory_mb.saturating_mul(1 << 20), args.max_queue, timeout);
    pool.client_timeout = Duration::from_secs_f64(args.client_timeout);
    let health_ctx = Context::new(crate::cli::GlobalArgs { quiet: true, verbose: 0, ..ctx.global.clone() })?;
    let server = Arc::new(Server {
        pool,
        token: args.token.filter(|t| !t.is_empty()),
        ctx: health_ctx,
        encoder: std::sync::Mutex::new(None),
    });

    // Warm: the default voice (and any named) gets one session before the first request.
    let started = Instant::now();
    let mut warm: Vec<String> = vec![default_voice.clone()];
    warm.extend(args.voices.iter().filter(|v| **v != default_voice).cloned());
    for voice in &warm {
        drop(server.pool.lease(voice).with_context(|| format!("loading voice {voice}"))?);
    }
    let http = args.http.as_deref().filter(|a| *a != "off").map(|a| bind(a, "http")).transpose()?;
    let wyoming = args.wyoming.as_deref().map(|a| bind(a, "wyoming")).transpose()?;
    if http.is_none() && wyoming.is_none() {
        return Err(crate::error::usage("nothing to serve: give --http ADDR and/or --wyoming ADDR"));
    }
    let mut addresses = Vec::new();
    let mut threads_handles = Vec::new();
    if let Some(listener) = http {
        let address = listener.local_addr()?;
        eprintln!(
            "demod-voice: http://{address}  (POST /v1/audio/speech, /v1/clone; GET /v1/voices, /health, /metrics)"
        );
        addresses.push(address);
        let server = Arc::clone(&server);
        threads_handles.push(
            std::thread::Builder::new().name("http-accept".into()).spawn(move || http::accept(listener, server))?,
        );
    }
    if let Some(listener) = wyoming {
        let address = listener.local_addr()?;
        eprintln!("demod-voice: tcp://{address}  (Wyoming: describe, synthesize, synthesize-start/chunk/stop)");
        addresses.push(address);
        let server = Arc::clone(&server);
        threads_handles.push(
            std::thread::Builder::new()
                .name("wyoming-accept".into())
                .spawn(move || wyoming::accept(listener, server))?,
        );
    }
    eprintln!(
        "demod-voice: serving {} ({} session(s) of {} thread(s) per voice, queue {}, warm in {:.1} s){}",
        default_voice,
        server.pool.sessions,
        if threads == 0 { "the default".to_string() } else { threads.to_string() },
        server.pool.max_queue,
        started.elapsed().as_secs_f32(),
        if server.token.is_some() { ", bearer token required" } else { "" }
    );
    let drain_server = Arc::clone(&server);
    crate::interrupt::on_terminate_drain(move || {
        drain_server.pool.draining.store(true, Ordering::Release);
        // Wake the accept loops so they see the flag.
        for address in &addresses {
            let _ = std::net::TcpStream::connect_timeout(address, Duration::from_millis(200));
        }
    });
    for handle in threads_handles {
        let _ = handle.join();
    }
    // Draining: what runs finishes (bounded by the request timeout).
    let deadline = Instant::now() + server.pool.timeout + Duration::from_secs(1);
    while server.pool.queue_depth() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("demod-voice: stopped ({} request(s) still running were cut)", server.pool.queue_depth());
    Ok(())
}
