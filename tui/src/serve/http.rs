//! The HTTP side: one thread per connection (at most `MAX_CONNECTIONS`), requests parsed with `httparse`, every
//! read and write under a timeout, bodies capped, one request per connection (`Connection: close`), speech
//! streamed sentence by sentence with chunked transfer.
//!
//! - `POST /v1/audio/speech`: OpenAI's body (`model` names the voice, `input`, `voice` a speaker, `speed`,
//!   `response_format` `wav`, `pcm` (16-bit) or `pcm_f32le`), plus `speaker`, `length_scale`, `noise_scale`,
//!   `noise_w`, `sentence_silence`, `volume`, `sample_rate`. The rate is in `X-Sample-Rate`.
//! - `GET /v1/voices` (and OpenAI's `GET /v1/models`), `GET /health` (the JSON of `health --json`),
//!   `GET /metrics` (Prometheus text).
//!
//! With `--token`, every endpoint but `/health` wants `Authorization: Bearer TOKEN`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use demod_voice_core::wav::{streaming_wav_header, write_s16le, WavEncoding};
use serde_json::{json, Value};

use super::pool::Pool;
use super::speech::{speak, Failure, SpeechRequest};
use super::Server;

/// The largest request body (a speech request's JSON).
pub const MAX_BODY: usize = 1 << 20;
/// The largest clone upload (a reference recording and the text).
pub const MAX_CLONE_BODY: usize = 32 << 20;
/// The largest request head.
const MAX_HEAD: usize = 16 << 10;
/// Connections handled at once; more are answered 503 at once.
pub const MAX_CONNECTIONS: usize = 256;
/// A client must take each write of the answer within this (and send its request within `--client-timeout`).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// OpenAI's model names: any of them means the server's own voice.
const OPENAI_MODELS: &[&str] = &["tts-1", "tts-1-hd", "gpt-4o-mini-tts"];
/// OpenAI's voice names: for a voice that has no speaker of that name they mean its default speaker.
const OPENAI_VOICES: &[&str] =
    &["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"];

#[derive(Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Accept connections until the server drains; each on a thread of its own.
pub fn accept(listener: TcpListener, server: Arc<Server>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if server.pool.draining.load(Ordering::Acquire) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        if open.load(Ordering::Acquire) >= MAX_CONNECTIONS {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = respond_json(&mut stream, 503, &error_body(503, "too many connections; try again"));
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        let (server, open) = (Arc::clone(&server), Arc::clone(&open));
        let spawned = std::thread::Builder::new().name("http".into()).spawn(move || {
            handle(stream, &server);
            open.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            tracing::error!("cannot start a connection thread");
        }
    }
}

fn error_kind(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

fn error_body(status: u16, message: &str) -> Value {
    json!({"error": {"message": message, "type": error_kind(status), "code": status}})
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn respond_json(stream: &mut TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    let extra: Vec<(&str, String)> = match status {
        401 => vec![("WWW-Authenticate", "Bearer".into())],
        429 | 503 => vec![("Retry-After", "1".into())],
        _ => Vec::new(),
    };
    respond(stream, status, "application/json", &extra, body.to_string().as_bytes())
}

/// Read one request: its head (at most `MAX_HEAD`), then a body of at most `MAX_BODY` by `Content-Length`.
fn read_request(stream: &mut TcpStream, read_timeout: Duration) -> Result<Request, Failure> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let started = Instant::now();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_HEAD {
            return Err(Failure::new(413, format!("the request head is larger than {MAX_HEAD} bytes")));
        }
        if started.elapsed() > read_timeout {
            return Err(Failure::new(408, "the request did not arrive in time"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(Failure::new(400, "the connection closed before a whole request arrived")),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            // A pause shorter than the client timeout is waited out (the loop checks the time).
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(Failure::new(400, format!("reading the request: {e}"))),
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(&buffer[..head_end]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Failure::new(400, "incomplete request head")),
        Err(e) => return Err(Failure::new(400, format!("not an HTTP request: {e}"))),
    }
    let target = parsed.path.unwrap_or("/");
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let request_headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect();
    let mut request = Request {
        method: parsed.method.unwrap_or("GET").to_string(),
        path: path.to_string(),
        headers: request_headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(Failure::new(411, "send the body with a Content-Length (chunked request bodies are not read)"));
    }
    let length: usize = match request.header("content-length") {
        None => 0,
        Some(value) => {
            value.parse().map_err(|_| Failure::new(400, format!("Content-Length `{value}` is not a number")))?
        }
    };
    let limit = if request.path == "/v1/clone" { MAX_CLONE_BODY } else { MAX_BODY };
    if length > limit {
        return Err(Failure::new(413, format!("the body is {length} bytes; at most {limit} are accepted here")));
    }
    let mut body = buffer[head_end..].to_vec();
    body.truncate(length);
    while body.len() < length {
        if started.elapsed() > read_timeout {
            return Err(Failure::new(408, "the body did not arrive in time"));
        }
        let want = (length - body.len()).min(chunk.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(Failure::new(400, "the connection closed before the whole body arrived")),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(Failure::new(400, format!("reading the body: {e}"))),
        }
    }
    request.body = body;
    Ok(request)
}

fn handle(mut stream: TcpStream, server: &Server) {
    let _ = stream.set_read_timeout(Some(server.pool.client_timeout.min(Duration::from_secs(2))));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let started = Instant::now();
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let (endpoint, status) = match read_request(&mut stream, server.pool.client_timeout) {
        Ok(request) => {
            let endpoint = format!("{} {}", request.method, request.path);
            let status = route(&mut stream, server, &request);
            (endpoint, status)
        }
        Err(failure) => {
            let _ = respond_json(&mut stream, failure.status, &error_body(failure.status, &failure.message));
            ("(unreadable)".to_string(), failure.status)
        }
    };
    let known =
        ["GET /health", "GET /metrics", "GET /v1/voices", "GET /v1/models", "POST /v1/audio/speech", "POST /v1/clone"];
    let label = if known.contains(&endpoint.as_str()) { endpoint.as_str() } else { "other" };
    server.pool.metrics.count(label, status);
    tracing::info!(
        target: "demod_voice::serve",
        peer = peer.as_str(),
        request = endpoint.as_str(),
        status,
        ms = started.elapsed().as_millis() as u64,
        "http"
    );
}

/// Answer `request`; the status sent.
fn route(stream: &mut TcpStream, server: &Server, request: &Request) -> u16 {
    let fail = |stream: &mut TcpStream, status: u16, message: &str| {
        let _ = respond_json(stream, status, &error_body(status, message));
        status
    };
    let open = request.method == "GET" && request.path == "/health";
    if let (Some(token), false) = (&server.token, open) {
        let given = request.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        if given != Some(token.as_str()) {
            return fail(stream, 401, "missing or wrong bearer token (Authorization: Bearer TOKEN)");
        }
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/health") => {
            let report = server.health();
            let status = if report["status"] == "error" { 503 } else { 200 };
            let _ = respond(stream, status, "application/json", &[], report.to_string().as_bytes());
            status
        }
        ("GET", "/metrics") => {
            let _ = respond(stream, 200, "text/plain; version=0.0.4", &[], server.pool.metrics_text().as_bytes());
            200
        }
        ("GET", "/v1/voices") => {
            let _ = respond(stream, 200, "application/json", &[], server.voices_json().to_string().as_bytes());
            200
        }
        ("GET", "/v1/models") => {
            let voices = server.voices_json();
            let data: Vec<Value> = voices["voices"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|voice| json!({"id": voice["name"], "object": "model", "owned_by": "demod-voice"}))
                        .collect()
                })
                .unwrap_or_default();
            let _ = respond(
                stream,
                200,
                "application/json",
                &[],
                json!({"object": "list", "data": data}).to_string().as_bytes(),
            );
            200
        }
        ("POST", "/v1/audio/speech") => speech(stream, server, request, None),
        ("POST", "/v1/clone") => clone(stream, server, request),
        (_, "/health" | "/metrics" | "/v1/voices" | "/v1/models" | "/v1/audio/speech" | "/v1/clone") => {
            fail(stream, 405, &format!("{} is not allowed on {}", request.method, request.path))
        }
        _ => fail(
            stream,
            404,
            &format!("no endpoint {}; see POST /v1/audio/speech, GET /v1/voices, /health, /metrics", request.path),
        ),
    }
}

/// The output format a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Wav,
    Pcm16,
    PcmF32,
}

/// The OpenAI body as a [`SpeechRequest`] and a format; a bad field is a 400 naming it.
fn parse_speech(pool: &Pool, body: &[u8]) -> Result<(SpeechRequest, Format), Failure> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Failure::new(400, format!("the body is not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(Failure::new(400, "the body must be a JSON object with at least `input`"));
    };
    let text_field = |name: &str| -> Result<Option<String>, Failure> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if name == "speaker" || name == "voice" => Ok(Some(n.to_string())),
            Some(other) => Err(Failure::new(400, format!("`{name}` must be a string, not {other}"))),
        }
    };
    let number = |name: &str| -> Result<Option<f32>, Failure> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|v| v.is_finite())
                .map(|v| Some(v as f32))
                .ok_or_else(|| Failure::new(400, format!("`{name}` must be a finite number"))),
            Some(other) => Err(Failure::new(400, format!("`{name}` must be a number, not {other}"))),
        }
    };
    let text = text_field("input")?.ok_or_else(|| Failure::new(400, "`input` is missing: the text to speak"))?;
    let voice = match text_field("model")? {
        Some(model) if !OPENAI_MODELS.contains(&model.as_str()) => Some(model),
        _ => None,
    };
    // `voice` is a speaker of the voice; OpenAI's own names mean the default speaker.
    let speaker = match (text_field("speaker")?, text_field("voice")?) {
        (Some(speaker), _) => Some(speaker),
        (None, Some(name)) if OPENAI_VOICES.contains(&name.to_lowercase().as_str()) => None,
        (None, other) => other,
    };
    let mut length_scale = number("length_scale")?;
    if let Some(speed) = number("speed")? {
        if !(0.25..=4.0).contains(&speed) {
            return Err(Failure::new(400, format!("`speed` is {speed}; expected 0.25..4.0")));
        }
        length_scale = length_scale.or(Some(1.0 / speed));
    }
    let format = match text_field("response_format")?.as_deref() {
        None | Some("wav") => Format::Wav,
        Some("pcm") => Format::Pcm16,
        Some("pcm_f32le") => Format::PcmF32,
        Some(other) => {
            return Err(Failure::new(
                400,
                format!("response_format `{other}` is not supported; use wav, pcm or pcm_f32le"),
            ))
        }
    };
    let sample_rate = match number("sample_rate")? {
        Some(rate) if rate.fract() == 0.0 && rate > 0.0 => Some(rate as u32),
        Some(rate) => return Err(Failure::new(400, format!("`sample_rate` {rate} is not a whole number of Hz"))),
        None => None,
    };
    let request = SpeechRequest {
        text,
        voice,
        speaker,
        length_scale,
        noise_scale: number("noise_scale")?,
        noise_w: number("noise_w")?,
        sentence_silence: number("sentence_silence")?,
        volume: number("volume")?,
        sample_rate,
    };
    // Checked now, so a bad request is answered before any audio is promised.
    super::speech::settings_for(pool, &request)?;
    Ok((request, format))
}

/// Write `bytes` as one chunk of a chunked body.
fn chunk(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    stream.write_all(format!("{:x}\r\n", bytes.len()).as_bytes())?;
    stream.write_all(bytes)?;
    stream.write_all(b"\r\n")?;
    stream.flush()
}

/// A clone request's reference recording, saved for the cloning code (which reads files); removed when dropped.
struct Upload(std::path::PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        demod_voice_core::durable::discard(&self.0);
    }
}

/// The parts of a `multipart/form-data` body: (name, bytes).
fn multipart(content_type: &str, body: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .ok_or_else(|| {
            Failure::new(400, "send the reference as multipart/form-data (curl -F reference=@me.wav -F input=...)")
        })?;
    let delimiter = format!("--{boundary}").into_bytes();
    let find = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).position(|w| w == needle);
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, &delimiter) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(head_end) = find(rest, b"\r\n\r\n") else { break };
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let content = &rest[head_end + 4..];
        let end = find(content, &[b"\r\n".as_slice(), &delimiter].concat()).unwrap_or(content.len());
        let name = head
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string())
            .unwrap_or_default();
        parts.push((name, content[..end].to_vec()));
        rest = &content[end..];
    }
    Ok(parts)
}

/// `POST /v1/clone`: multipart `reference` (a WAV) and `input`, plus any field `/v1/audio/speech` takes; the text
/// spoken by the voice moved toward the reference (as `demod-voice clone` does; fits are cached per recording).
fn clone(stream: &mut TcpStream, server: &Server, request: &Request) -> u16 {
    let fail = |stream: &mut TcpStream, failure: Failure| {
        let _ = respond_json(stream, failure.status, &error_body(failure.status, &failure.message));
        failure.status
    };
    let parts = match multipart(request.header("content-type").unwrap_or(""), &request.body) {
        Ok(parts) => parts,
        Err(failure) => return fail(stream, failure),
    };
    let numeric = ["speed", "length_scale", "noise_scale", "noise_w", "sentence_silence", "volume", "sample_rate"];
    let mut fields = serde_json::Map::new();
    let mut reference = None;
    for (name, bytes) in parts {
        if name == "reference" {
            reference = Some(bytes);
            continue;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let value = match text.trim().parse::<f64>() {
            Ok(number) if numeric.contains(&name.as_str()) => json!(number),
            _ => json!(text),
        };
        fields.insert(name, value);
    }
    let Some(reference) = reference.filter(|r| !r.is_empty()) else {
        return fail(stream, Failure::new(400, "`reference` is missing: the WAV recording of the voice to clone"));
    };
    let target = server.pool.settings.dirs.cache.join("uploads").join("reference.wav");
    let _ = std::fs::create_dir_all(demod_voice_core::durable::folder_of(&target));
    let saved = demod_voice_core::durable::create_temp_beside(&target).and_then(|(mut file, path)| {
        file.write_all(&reference)?;
        Ok(Upload(path))
    });
    let upload = match saved {
        Ok(upload) => upload,
        Err(e) => return fail(stream, Failure::new(500, format!("cannot keep the upload: {e}"))),
    };
    let encoder = match server.encoder() {
        Ok(encoder) => encoder,
        Err(failure) => return fail(stream, failure),
    };
    let body = serde_json::Value::Object(fields).to_string();
    let converter = |voice: &demod_voice_core::piper::PiperVoice, settings: &demod_voice_core::settings::Settings| {
        let fitted = demod_voice_core::clone::prepare(&upload.0, voice, settings, &encoder)
            .map_err(|e| Failure::new(400, format!("the reference: {e}")))?;
        Ok(Some(demod_voice_core::pipeline::SentenceConverter::cloning(
            std::sync::Arc::new(fitted),
            &settings.config.realtime,
        )))
    };
    let request = Request { body: body.into_bytes(), ..request.clone() };
    speech(stream, server, &request, Some(&converter))
}

type Converter<'a> = &'a dyn Fn(
    &demod_voice_core::piper::PiperVoice,
    &demod_voice_core::settings::Settings,
) -> Result<Option<demod_voice_core::pipeline::SentenceConverter>, Failure>;

fn speech(stream: &mut TcpStream, server: &Server, request: &Request, converter: Option<Converter>) -> u16 {
    let fail = |stream: &mut TcpStream, failure: Failure| {
        let _ = respond_json(stream, failure.status, &error_body(failure.status, &failure.message));
        failure.status
    };
    let (speech_request, format) = match parse_speech(&server.pool, &request.body) {
        Ok(parsed) => parsed,
        Err(failure) => return fail(stream, failure),
    };
    let Some(_place) = server.pool.admit() else {
        let message = if server.pool.draining.load(Ordering::Acquire) {
            "the server is shutting down".to_string()
        } else {
            format!("{} requests are queued or running; try again shortly", server.pool.max_queue)
        };
        let status = if server.pool.draining.load(Ordering::Acquire) { 503 } else { 429 };
        return fail(stream, Failure::new(status, message));
    };
    let writer = stream.try_clone();
    let Ok(mut out) = writer else { return fail(stream, Failure::new(500, "cannot write the answer")) };
    let begun = std::cell::Cell::new(false);
    let start = |rate: u32| -> std::io::Result<()> {
        begun.set(true);
        let content_type = match format {
            Format::Wav => "audio/wav",
            Format::Pcm16 | Format::PcmF32 => "audio/pcm",
        };
        let encoding = match format {
            Format::PcmF32 => "f32le",
            _ => "s16le",
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\
             X-Sample-Rate: {rate}\r\nX-Channels: 1\r\nX-Sample-Format: {encoding}\r\n\r\n"
        );
        out.write_all(head.as_bytes())?;
        if format == Format::Wav {
            chunk(&mut out, &streaming_wav_header(rate, WavEncoding::Pcm16))?;
        }
        Ok(())
    };
    let mut body_out = match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return fail(stream, Failure::new(500, "cannot write the answer")),
    };
    let each = |samples: &[f32]| -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(samples.len() * 4);
        match format {
            Format::PcmF32 => samples.iter().for_each(|s| bytes.extend_from_slice(&s.to_le_bytes())),
            Format::Wav | Format::Pcm16 => write_s16le(&mut bytes, samples)?,
        }
        chunk(&mut body_out, &bytes)
    };
    let outcome = match converter {
        Some(converter) => {
            super::speech::speak_converted(&server.pool, &speech_request, |v, s| converter(v, s), start, each)
        }
        None => speak(&server.pool, &speech_request, start, each),
    };
    match outcome {
        Ok(_) => {
            let _ = stream.write_all(b"0\r\n\r\n").and_then(|()| stream.flush());
            200
        }
        // Nothing was sent yet: a proper error answer. Once audio is on its way, the connection is just closed.
        Err(failure) if failure.status == 499 => {
            tracing::info!("client went away: {}", failure.message);
            499
        }
        Err(failure) if begun.get() => {
            // The answer is under way: it ends without its last chunk, which tells the client it is incomplete.
            tracing::warn!("speech stopped after the answer began: {}", failure.message);
            failure.status
        }
        Err(failure) => fail(stream, failure),
    }
}
