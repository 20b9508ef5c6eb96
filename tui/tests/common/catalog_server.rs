//! A voice-catalogue server on 127.0.0.1 for the tests: serves a catalogue and the real default voice's files,
//! and misbehaves on purpose where a route says so (a connection dropped half way, a server too slow to answer).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server answers one path.
#[derive(Clone)]
pub enum Route {
    /// The bytes, with range requests honoured.
    File(Arc<Vec<u8>>),
    /// The first request gets the first `at` bytes and a closed connection; later ones resume.
    DropOnce(Arc<Vec<u8>>, usize),
    /// Waits this long before answering.
    Slow(Duration),
}

/// Each request's path and the Range header it carried.
pub type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

pub struct Server {
    pub base: String,
    pub routes: Arc<Mutex<HashMap<String, Route>>>,
    /// Requests per path, and the Range header each carried.
    log: RequestLog,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let log: RequestLog = Arc::default();
        let drops = Arc::new(AtomicUsize::new(0));
        let (r, l, d) = (routes.clone(), log.clone(), drops.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, l, d) = (r.clone(), l.clone(), d.clone());
                std::thread::spawn(move || {
                    let _ = answer(stream, &r, &l, &d);
                });
            }
        });
        Server { base, routes, log }
    }

    pub fn route(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.to_string(), route);
    }

    pub fn requests(&self, path: &str) -> Vec<Option<String>> {
        self.log.lock().unwrap().iter().filter(|(p, _)| p == path).map(|(_, r)| r.clone()).collect()
    }
}

fn answer(
    stream: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    log: &Mutex<Vec<(String, Option<String>)>>,
    drops: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut tunnelled = false;
    let (path, range) = loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut words = line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
        // As a proxy, the request names the whole URL (`GET http://host/path`) or opens a tunnel first
        // (`CONNECT host:80`); either way it is logged as `proxy:` + the path.
        let path = match target.strip_prefix("http://").and_then(|rest| rest.find('/').map(|at| &rest[at..])) {
            Some(path) => format!("proxy:{path}"),
            None if tunnelled => format!("proxy:{target}"),
            None => target.to_string(),
        };
        let mut range = None;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("range") {
                    range = Some(value.trim().to_string());
                }
            }
        }
        if method == "CONNECT" {
            let mut out = stream.try_clone()?;
            write!(out, "HTTP/1.1 200 Connection established\r\n\r\n")?;
            out.flush()?;
            tunnelled = true;
            continue;
        }
        break (path, range);
    };
    log.lock().unwrap().push((path.clone(), range.clone()));
    let route = routes.lock().unwrap().get(path.trim_start_matches("proxy:")).cloned();
    let mut out = stream;
    let bytes = match route {
        None => {
            write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")?;
            return Ok(());
        }
        Some(Route::Slow(wait)) => {
            std::thread::sleep(wait);
            write!(out, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        }
        Some(Route::DropOnce(bytes, at)) if drops.fetch_add(1, Ordering::SeqCst) == 0 => {
            write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", bytes.len())?;
            out.write_all(&bytes[..at])?;
            out.flush()?;
            return Ok(()); // the connection closes here, half way
        }
        Some(Route::DropOnce(bytes, _) | Route::File(bytes)) => bytes,
    };
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if start > 0 {
        write!(
            out,
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len() - 1,
            bytes.len(),
            bytes.len() - start
        )?;
    } else {
        write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", bytes.len())?;
    }
    out.write_all(&bytes[start..])?;
    out.flush()
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The real default voice, as bytes.
pub fn real_voice() -> (Arc<Vec<u8>>, Arc<Vec<u8>>) {
    super::ensure_assets();
    let dirs = demod_voice_core::assets::Dirs::from_env();
    let model = demod_voice_core::assets::resolve_voice("en_US-joe-medium", &dirs.voices_dir()).unwrap();
    let config = demod_voice_core::piper::VoiceConfig::path_for_model(&model);
    (Arc::new(std::fs::read(model).unwrap()), Arc::new(std::fs::read(config).unwrap()))
}

/// A catalogue entry whose files are `model` and `config` as the catalogue describes them (which need not be
/// what the server sends).
pub fn entry(
    key: &str,
    language: &str,
    quality: &str,
    model: &[u8],
    config: &[u8],
    aliases: &[&str],
) -> serde_json::Value {
    let (family, region) = language.split_once('_').unwrap();
    let dir = format!("{family}/{language}/{key}");
    serde_json::json!({
        "key": key,
        "name": key.split('-').nth(1).unwrap(),
        "language": {"code": language, "family": family, "region": region,
                     "name_native": format!("{family}-native"), "name_english": format!("{family}-english"),
                     "country_english": region},
        "quality": quality,
        "num_speakers": 1,
        "speaker_id_map": {},
        "files": {
            format!("{dir}/{key}.onnx"): {"size_bytes": model.len(), "md5_digest": md5_hex(model)},
            format!("{dir}/{key}.onnx.json"): {"size_bytes": config.len(), "md5_digest": md5_hex(config)},
            format!("{dir}/MODEL_CARD"): {"size_bytes": 3, "md5_digest": md5_hex(b"card")},
        },
        "aliases": aliases,
    })
}
