//! The Wyoming side (Home Assistant's protocol for voice services): events of one JSON header line
//! (`type`, `data_length`, `payload_length`), then that many bytes of JSON data and of binary payload.
//!
//! - `describe` -> `info`: this program as a TTS service, its installed voices with their languages and
//!   speakers, and `supports_synthesize_streaming`.
//! - `synthesize` {text, voice: {name, speaker}} -> `audio-start`, `audio-chunk`s (16-bit mono PCM, 1024 samples
//!   each), `audio-stop`.
//! - Streaming, as Home Assistant sends long answers: `synthesize-start` {voice}, `synthesize-chunk` {text}...,
//!   `synthesize-stop`; each sentence is spoken as soon as it is complete (its own `audio-start` ... `audio-stop`),
//!   then `synthesize-stopped`. A `synthesize` sent inside a stream (for older servers) is ignored.
//! - Failures are an `error` event {text, code}; the connection stays usable.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::speech::{speak, Failure, SpeechRequest};
use super::Server;

/// The largest header line, data and payload accepted from a client.
const MAX_LINE: usize = 64 << 10;
const MAX_DATA: usize = 1 << 20;
/// Samples per `audio-chunk`.
pub const SAMPLES_PER_CHUNK: usize = 1024;
/// A client idle this long is disconnected.
const IDLE: Duration = Duration::from_secs(300);

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: String,
    pub data: Map<String, Value>,
    pub payload: Vec<u8>,
}

impl Event {
    pub fn new(kind: &str, data: Value) -> Event {
        Event { kind: kind.into(), data: data.as_object().cloned().unwrap_or_default(), payload: Vec::new() }
    }
}

/// Read one event; `None` at the end of the stream.
pub fn read_event(reader: &mut impl BufRead) -> std::io::Result<Option<Event>> {
    let bad = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let mut line = Vec::new();
    let n = reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(bad(format!("an event header is longer than {MAX_LINE} bytes")));
    }
    let header: Value = serde_json::from_slice(&line).map_err(|e| bad(format!("the event header is not JSON: {e}")))?;
    let kind = header["type"].as_str().ok_or_else(|| bad("the event header has no `type`".into()))?.to_string();
    let mut data = header["data"].as_object().cloned().unwrap_or_default();
    let length = |name: &str| header[name].as_u64().unwrap_or(0) as usize;
    let (data_length, payload_length) = (length("data_length"), length("payload_length"));
    if data_length > MAX_DATA || payload_length > MAX_DATA {
        return Err(bad(format!("an event's data or payload is larger than {MAX_DATA} bytes")));
    }
    if data_length > 0 {
        let mut bytes = vec![0u8; data_length];
        reader.read_exact(&mut bytes)?;
        let extra: Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("the event data is not JSON: {e}")))?;
        if let Some(extra) = extra.as_object() {
            data.extend(extra.clone());
        }
    }
    let mut payload = vec![0u8; payload_length];
    reader.read_exact(&mut payload)?;
    Ok(Some(Event { kind, data, payload }))
}

/// Write one event (data as its own JSON bytes, as current Wyoming peers do).
pub fn write_event(out: &mut impl Write, event: &Event) -> std::io::Result<()> {
    let data = if event.data.is_empty() { Vec::new() } else { serde_json::to_vec(&event.data)? };
    let mut header = json!({"type": event.kind, "version": "1.5.2"});
    if !data.is_empty() {
        header["data_length"] = data.len().into();
    }
    if !event.payload.is_empty() {
        header["payload_length"] = event.payload.len().into();
    }
    let mut bytes = serde_json::to_vec(&header)?;
    bytes.push(b'\n');
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&event.payload);
    out.write_all(&bytes)?;
    out.flush()
}

/// Accept connections until the server drains; each on a thread of its own.
pub fn accept(listener: TcpListener, server: Arc<Server>) {
    for stream in listener.incoming() {
        if server.pool.draining.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let server = Arc::clone(&server);
        let _ = std::thread::Builder::new().name("wyoming".into()).spawn(move || {
            let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            if let Err(e) = Connection::new(stream, server).run() {
                tracing::info!(peer = peer.as_str(), "wyoming connection ended: {e}");
            }
        });
    }
}

/// One client: its stream of events, and the text stream it is sending, if any.
struct Connection {
    reader: BufReader<TcpStream>,
    out: TcpStream,
    server: Arc<Server>,
    /// Inside `synthesize-start` .. `synthesize-stop`: the voice and the text not yet spoken.
    stream: Option<(Value, String)>,
}

impl Connection {
    fn new(stream: TcpStream, server: Arc<Server>) -> Connection {
        let _ = stream.set_read_timeout(Some(IDLE));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
        let out = stream.try_clone().expect("a TCP stream clones");
        Connection { reader: BufReader::new(stream), out, server, stream: None }
    }

    fn run(mut self) -> std::io::Result<()> {
        while let Some(event) = read_event(&mut self.reader)? {
            let started = std::time::Instant::now();
            let outcome = self.handle(&event);
            let status = match &outcome {
                Ok(()) => 200,
                Err(failure) => {
                    write_event(
                        &mut self.out,
                        &Event::new("error", json!({"text": failure.message, "code": failure.status.to_string()})),
                    )?;
                    failure.status
                }
            };
            if !matches!(event.kind.as_str(), "describe" | "ping") {
                self.server.pool.metrics.count(&format!("wyoming {}", event.kind), status);
            }
            tracing::info!(target: "demod_voice::serve", event = event.kind.as_str(), status, ms = started.elapsed().as_millis() as u64, "wyoming");
        }
        Ok(())
    }

    fn handle(&mut self, event: &Event) -> Result<(), Failure> {
        let io = |e: std::io::Error| Failure::new(499, format!("the client went away: {e}"));
        match event.kind.as_str() {
            "describe" => write_event(&mut self.out, &Event::new("info", self.server.wyoming_info())).map_err(io),
            "ping" => write_event(&mut self.out, &Event::new("pong", json!({}))).map_err(io),
            "synthesize" if self.stream.is_some() => Ok(()),
            "synthesize" => {
                let text = event.data.get("text").and_then(Value::as_str).unwrap_or("").to_string();
                let voice = event.data.get("voice").cloned().unwrap_or(Value::Null);
                self.say(&text, &voice)
            }
            "synthesize-start" => {
                self.stream = Some((event.data.get("voice").cloned().unwrap_or(Value::Null), String::new()));
                Ok(())
            }
            "synthesize-chunk" => {
                let Some((voice, pending)) = self.stream.as_mut() else {
                    return Err(Failure::new(400, "synthesize-chunk outside synthesize-start .. synthesize-stop"));
                };
                pending.push_str(event.data.get("text").and_then(Value::as_str).unwrap_or(""));
                if pending.len() > super::speech::MAX_TEXT_CHARS * 4 {
                    self.stream = None;
                    return Err(Failure::new(
                        413,
                        "the streamed text has no sentence end in 400 kB; the stream was dropped".to_string(),
                    ));
                }
                // Speak what is complete: up to the last sentence end followed by a space.
                let cut = last_sentence_end(pending);
                if cut > 0 {
                    let ready: String = pending.drain(..cut).collect();
                    let voice = voice.clone();
                    self.say(&ready, &voice)?;
                }
                Ok(())
            }
            "synthesize-stop" => {
                let Some((voice, pending)) = self.stream.take() else {
                    return Err(Failure::new(400, "synthesize-stop without synthesize-start"));
                };
                if !pending.trim().is_empty() {
                    self.say(&pending, &voice)?;
                }
                write_event(&mut self.out, &Event::new("synthesize-stopped", json!({}))).map_err(io)
            }
            other => {
                tracing::debug!("ignoring wyoming event {other}");
                Ok(())
            }
        }
    }

    /// Speak `text` in `voice` ({name, speaker}) as audio-start, chunks, audio-stop.
    fn say(&mut self, text: &str, voice: &Value) -> Result<(), Failure> {
        if text.trim().is_empty() {
            return Ok(());
        }
        let request = SpeechRequest {
            text: text.to_string(),
            voice: voice.get("name").and_then(Value::as_str).map(str::to_string),
            speaker: voice
                .get("speaker")
                .and_then(|s| s.as_str().map(str::to_string).or_else(|| s.as_u64().map(|n| n.to_string()))),
            ..Default::default()
        };
        let Some(_place) = self.server.pool.admit() else {
            return Err(Failure::new(
                429,
                format!("{} requests are queued or running; try again shortly", self.server.pool.max_queue),
            ));
        };
        let out = &mut self.out;
        let rate = std::cell::Cell::new(0u32);
        let format = |rate: u32| json!({"rate": rate, "width": 2, "channels": 1});
        let start = |r: u32| {
            rate.set(r);
            write_event(&mut out.try_clone()?, &Event::new("audio-start", format(r)))
        };
        let mut chunk_out = out.try_clone().map_err(|e| Failure::new(500, e.to_string()))?;
        let each = |samples: &[f32]| -> std::io::Result<()> {
            for piece in samples.chunks(SAMPLES_PER_CHUNK) {
                let mut payload = Vec::with_capacity(piece.len() * 2);
                demod_voice_core::wav::write_s16le(&mut payload, piece)?;
                let mut event = Event::new("audio-chunk", format(rate.get()));
                event.payload = payload;
                write_event(&mut chunk_out, &event)?;
            }
            Ok(())
        };
        speak(&self.server.pool, &request, start, each)?;
        write_event(&mut self.out, &Event::new("audio-stop", json!({})))
            .map_err(|e| Failure::new(499, format!("the client went away: {e}")))
    }
}

/// The byte index just after the last sentence end (`.`, `!`, `?`, `…` and CJK stops) that is followed by
/// whitespace; 0 when there is none yet.
pub fn last_sentence_end(text: &str) -> usize {
    let mut cut = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let ends = matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？');
        let spaced = chars.peek().is_some_and(|(_, next)| next.is_whitespace());
        let cjk = matches!(c, '。' | '！' | '？');
        if ends && (spaced || cjk) {
            cut = at + c.len_utf8();
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_data_and_payload() {
        let mut event = Event::new("audio-chunk", json!({"rate": 22050, "width": 2, "channels": 1}));
        event.payload = vec![1, 2, 3, 4];
        let mut bytes = Vec::new();
        write_event(&mut bytes, &event).unwrap();
        let back = read_event(&mut std::io::Cursor::new(bytes)).unwrap().unwrap();
        assert_eq!(back, event);
        // Inline data (older peers) is read too.
        let inline = b"{\"type\":\"synthesize\",\"data\":{\"text\":\"Hi.\"}}\n".to_vec();
        let back = read_event(&mut std::io::Cursor::new(inline)).unwrap().unwrap();
        assert_eq!(back.data["text"], "Hi.");
        assert!(read_event(&mut std::io::Cursor::new(Vec::new())).unwrap().is_none());
        assert!(read_event(&mut std::io::Cursor::new(b"not json\n".to_vec())).is_err());
    }

    #[test]
    fn sentences_are_cut_where_they_are_complete() {
        assert_eq!(last_sentence_end("Hello there. How are"), "Hello there.".len());
        assert_eq!(last_sentence_end("Version 1.5 is"), 0);
        assert_eq!(last_sentence_end("No end yet"), 0);
        assert_eq!(last_sentence_end("你好。我"), "你好。".len());
    }
}
