//! `demod-voice serve` through the real binary on 127.0.0.1: every endpoint and event, bad requests answered with
//! the right status and message (the server healthy after each), audio equal to `speak`'s, the queue's limit and
//! a graceful SIGTERM.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; killed when dropped.
struct Serve {
    child: Child,
    http: String,
    wyoming: Option<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

fn base_command() -> Command {
    common::ensure_assets();
    let dirs = demod_voice_core::assets::Dirs::from_env();
    let ort = demod_voice_core::onnx::find_versioned_library(&dirs.runtime_dir()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demod-voice"));
    cmd.env("DEMOD_VOICE_ESPEAK_LIB", common::find_espeak_lib(&dirs))
        .env("DEMOD_VOICE_ESPEAK_DATA", dirs.espeak_dir().join("espeak-ng-data"))
        .args(["--offline", "--ort-lib"])
        .arg(ort);
    cmd
}

impl Serve {
    fn start(extra: &[&str]) -> Serve {
        let mut child = base_command()
            .args(["serve", "--http", "127.0.0.1:0", "--wyoming", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (sender, receiver) = std::sync::mpsc::channel();
        let sink = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving ") {
                    let _ = sender.send(());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        receiver.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no server: {}", log.lock().unwrap()));
        let text = log.lock().unwrap().clone();
        let find = |prefix: &str| text.split_whitespace().find_map(|w| w.strip_prefix(prefix)).map(str::to_string);
        Serve { child, http: find("http://").unwrap(), wyoming: find("tcp://"), stderr: log }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP exchange on a fresh connection: (status, headers, body with chunked transfer decoded).
fn http(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.to_lowercase().contains("transfer-encoding: chunked") {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = decoded;
    }
    (status, head, body)
}

fn json_body(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// What local `speak` writes for `text` with deterministic noise: the PCM data of its WAV.
fn local_speak_pcm(text: &str, extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("local.wav");
    let status = base_command()
        // The server's sessions and a local speak both run ONNX Runtime's default threads (sums over other thread
        // counts would round differently in the last bit).
        .args(["-q", "speak", text, "--noise-scale", "0", "--noise-w", "0", "-o"])
        .arg(&out)
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&out).unwrap();
    (bytes[44..].to_vec(), bytes)
}

/// Equal audio, or where they part (never a dump of both).
fn same_audio(got: &[u8], want: &[u8], what: &str) {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first.is_none(),
        "{what}: {} bytes vs {} expected, first difference at byte {first:?}",
        got.len(),
        want.len()
    );
}

const TEXT: &str = "The server speaks. It streams sentence by sentence.";

#[test]
fn speech_is_streamed_and_equals_local_speak_in_every_format() {
    let server = Serve::start(&[]);
    let body = format!(r#"{{"model":"tts-1","input":"{TEXT}","voice":"alloy","noise_scale":0,"noise_w":0}}"#);
    let (status, head, wav) = http(&server.http, "POST", "/v1/audio/speech", &[], body.as_bytes());
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("audio/wav") && head.to_lowercase().contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("X-Sample-Rate: 22050"), "{head}");
    let (local_pcm, _) = local_speak_pcm(TEXT, &[]);
    assert_eq!(&wav[..4], b"RIFF");
    same_audio(&wav[44..], &local_pcm, "the served WAV's PCM");

    let body = format!(r#"{{"input":"{TEXT}","response_format":"pcm","noise_scale":0,"noise_w":0}}"#);
    let (status, _, pcm) = http(&server.http, "POST", "/v1/audio/speech", &[], body.as_bytes());
    assert_eq!(status, 200);
    same_audio(&pcm, &local_pcm, "pcm");

    // speed maps to the length scale, as `--length-scale 0.5` does locally.
    let body = format!(r#"{{"input":"{TEXT}","response_format":"pcm","speed":2.0,"noise_scale":0,"noise_w":0}}"#);
    let (_, _, fast) = http(&server.http, "POST", "/v1/audio/speech", &[], body.as_bytes());
    let (local_fast, _) = local_speak_pcm(TEXT, &["--length-scale", "0.5"]);
    same_audio(&fast, &local_fast, "speed 2");
    assert!(fast.len() < pcm.len() * 7 / 10, "twice the speed is much shorter");
}

#[test]
fn bad_requests_get_the_right_status_and_leave_the_server_healthy() {
    let server = Serve::start(&["--client-timeout", "1"]);
    let post = |body: &[u8]| http(&server.http, "POST", "/v1/audio/speech", &[], body);
    let cases: [(&[u8], u16, &str); 7] = [
        (b"{bad json", 400, "not JSON"),
        (br#"{"input":"   "}"#, 400, "empty"),
        (br#"{"voice":"alloy"}"#, 400, "`input` is missing"),
        (br#"{"input":"Hi.","model":"no-such-voice"}"#, 404, "no voice named `no-such-voice`"),
        (br#"{"input":"Hi.","model":"../../x.onnx"}"#, 404, "not a voice name"),
        (br#"{"input":"Hi.","response_format":"mp3"}"#, 400, "use wav, pcm"),
        (br#"{"input":"Hi.","speed":9}"#, 400, "`speed` is 9"),
    ];
    for (body, status, message) in cases {
        let (got, _, answer) = post(body);
        let answer = json_body(&answer);
        assert_eq!(got, status, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{answer}");
    }
    // A 10 MB body is refused without being read.
    let mut stream = TcpStream::connect(&server.http).unwrap();
    stream.write_all(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_response(&raw).0, 413);
    // A slow client (half a request head, then nothing) is answered 408 after the client timeout.
    let mut slow = TcpStream::connect(&server.http).unwrap();
    slow.write_all(b"POST /v1/audio/speech HTTP/1.1\r\nHost").unwrap();
    let mut raw = Vec::new();
    slow.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_response(&raw).0, 408);
    // A client that goes away in the middle of the audio.
    let mut gone = TcpStream::connect(&server.http).unwrap();
    let long = format!(r#"{{"input":"{}"}}"#, TEXT.repeat(20));
    write!(gone, "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{long}", long.len()).unwrap();
    let mut first = [0u8; 2048];
    let _ = gone.read(&mut first).unwrap();
    drop(gone);
    // Still healthy, still speaking; unknown paths and methods are told apart.
    let (status, _, health) = http(&server.http, "GET", "/health", &[], b"");
    assert!(status == 200 || status == 503, "{status}");
    assert_eq!(json_body(&health)["schema_version"], 1);
    let (status, _, _) = post(br#"{"input":"Still here."}"#);
    assert_eq!(status, 200);
    assert_eq!(http(&server.http, "GET", "/v1/nothing", &[], b"").0, 404);
    assert_eq!(http(&server.http, "GET", "/v1/audio/speech", &[], b"").0, 405);
    let (_, _, metrics) = http(&server.http, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(r#"demod_voice_requests_total{endpoint="POST /v1/audio/speech",status="400"} 5"#),
        "{metrics}"
    );
    assert!(metrics.contains("demod_voice_queue_depth"), "{metrics}");
    let (_, _, voices) = http(&server.http, "GET", "/v1/voices", &[], b"");
    assert_eq!(json_body(&voices)["default"], "en_US-joe-medium");
}

#[test]
fn a_token_guards_everything_but_health() {
    let server = Serve::start(&["--token", "s3cret"]);
    let body = br#"{"input":"Hi."}"#;
    let (status, head, _) = http(&server.http, "POST", "/v1/audio/speech", &[], body);
    assert_eq!(status, 401);
    assert!(head.contains("WWW-Authenticate: Bearer"), "{head}");
    assert_eq!(http(&server.http, "POST", "/v1/audio/speech", &[("Authorization", "Bearer wrong")], body).0, 401);
    assert_eq!(http(&server.http, "POST", "/v1/audio/speech", &[("Authorization", "Bearer s3cret")], body).0, 200);
    assert_eq!(http(&server.http, "GET", "/v1/voices", &[], b"").0, 401);
    assert_ne!(http(&server.http, "GET", "/health", &[], b"").0, 401);
}

#[test]
fn a_full_queue_answers_429_and_sigterm_lets_running_requests_finish() {
    let server = Serve::start(&["--max-queue", "1", "--sessions", "1"]);
    let long = format!(r#"{{"input":"{}","response_format":"pcm"}}"#, TEXT.repeat(12));
    let address = server.http.clone();
    let running = std::thread::spawn(move || http(&address, "POST", "/v1/audio/speech", &[], long.as_bytes()));
    // Wait until it holds the one place.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, metrics) = http(&server.http, "GET", "/metrics", &[], b"");
        if String::from_utf8_lossy(&metrics).contains("demod_voice_queue_depth 1") {
            break;
        }
        assert!(Instant::now() < deadline, "the long request never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, head, body) = http(&server.http, "POST", "/v1/audio/speech", &[], br#"{"input":"Me too."}"#);
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert!(head.contains("Retry-After"), "{head}");
    // SIGTERM: the running request still gets all its audio; the server exits 0 and takes nothing new.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let (status, _, audio) = running.join().unwrap();
    assert_eq!(status, 200);
    let seconds = audio.len() as f64 / 2.0 / 22050.0;
    assert!(seconds > 20.0, "all twelve repeats were spoken: {seconds:.1} s");
    let mut server = server;
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}: {}", server.stderr.lock().unwrap());
    assert!(TcpStream::connect(&server.http).is_err(), "nothing listens after the drain");
}

/// Wyoming events as a test client sends and reads them.
fn send(stream: &mut TcpStream, kind: &str, data: serde_json::Value) {
    let data = serde_json::to_vec(&data).unwrap();
    let header = serde_json::json!({"type": kind, "data_length": data.len()});
    stream.write_all(format!("{header}\n").as_bytes()).unwrap();
    stream.write_all(&data).unwrap();
}

fn receive(reader: &mut BufReader<TcpStream>) -> (String, serde_json::Value, Vec<u8>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let header: serde_json::Value = serde_json::from_str(&line).unwrap();
    let mut data = header.get("data").cloned().unwrap_or(serde_json::json!({}));
    let data_length = header["data_length"].as_u64().unwrap_or(0) as usize;
    if data_length > 0 {
        let mut bytes = vec![0u8; data_length];
        reader.read_exact(&mut bytes).unwrap();
        data = serde_json::from_slice(&bytes).unwrap();
    }
    let mut payload = vec![0u8; header["payload_length"].as_u64().unwrap_or(0) as usize];
    reader.read_exact(&mut payload).unwrap();
    (header["type"].as_str().unwrap().to_string(), data, payload)
}

/// Read audio-start .. audio-stop; the PCM.
fn receive_audio(reader: &mut BufReader<TcpStream>) -> Vec<u8> {
    let (kind, data, _) = receive(reader);
    assert_eq!(kind, "audio-start", "{data}");
    assert_eq!(
        (data["rate"].as_u64(), data["width"].as_u64(), data["channels"].as_u64()),
        (Some(22050), Some(2), Some(1))
    );
    let mut pcm = Vec::new();
    loop {
        let (kind, _, payload) = receive(reader);
        match kind.as_str() {
            "audio-chunk" => {
                assert!(payload.len() <= 2048);
                pcm.extend_from_slice(&payload);
            }
            "audio-stop" => return pcm,
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn wyoming_describes_itself_and_speaks_as_speak_does_whole_or_streamed() {
    let server = Serve::start(&["--noise-scale", "0", "--noise-w", "0"]);
    let stream = TcpStream::connect(server.wyoming.as_deref().unwrap()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);

    send(&mut out, "describe", serde_json::json!({}));
    let (kind, info, _) = receive(&mut reader);
    assert_eq!(kind, "info");
    let tts = &info["tts"][0];
    assert_eq!(tts["supports_synthesize_streaming"], true);
    assert_eq!(tts["voices"][0]["name"], "en_US-joe-medium");
    assert_eq!(tts["voices"][0]["languages"][0], "en_US");

    send(&mut out, "synthesize", serde_json::json!({"text": TEXT, "voice": {"name": "en_US-joe-medium"}}));
    let pcm = receive_audio(&mut reader);
    let (local_pcm, _) = local_speak_pcm(TEXT, &[]);
    same_audio(&pcm, &local_pcm, "Wyoming audio");

    // Home Assistant's streaming: text in pieces, each sentence spoken once it is complete.
    send(&mut out, "synthesize-start", serde_json::json!({"voice": {"name": "en_US-joe-medium"}}));
    send(&mut out, "synthesize-chunk", serde_json::json!({"text": "The server speaks. It str"}));
    send(&mut out, "synthesize", serde_json::json!({"text": "ignored inside a stream"}));
    send(&mut out, "synthesize-chunk", serde_json::json!({"text": "eams sentence by sentence."}));
    send(&mut out, "synthesize-stop", serde_json::json!({}));
    let first = receive_audio(&mut reader);
    let second = receive_audio(&mut reader);
    let (kind, _, _) = receive(&mut reader);
    assert_eq!(kind, "synthesize-stopped");
    let (first_local, _) = local_speak_pcm("The server speaks.", &[]);
    let (second_local, _) = local_speak_pcm("It streams sentence by sentence.", &[]);
    same_audio(&first, &first_local, "first streamed sentence");
    same_audio(&second, &second_local, "second streamed sentence");

    // Errors are events, and the connection goes on.
    send(&mut out, "synthesize", serde_json::json!({"text": "Hi.", "voice": {"name": "nobody"}}));
    let (kind, data, _) = receive(&mut reader);
    assert_eq!(kind, "error");
    assert!(data["text"].as_str().unwrap().contains("no voice named `nobody`"), "{data}");
    send(&mut out, "synthesize", serde_json::json!({"text": "Still here."}));
    assert!(!receive_audio(&mut reader).is_empty());
}

#[test]
fn speak_with_server_writes_the_same_file_as_local_speak() {
    let server = Serve::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.wav");
    let flags = ["--noise-scale", "0", "--noise-w", "0", "--length-scale", "1.2", "--sentence-silence", "0.3"];
    let out = base_command()
        .args(["speak", TEXT, "--server", &format!("http://{}", server.http), "-o"])
        .arg(&remote)
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, local) = local_speak_pcm(TEXT, &flags[4..]);
    same_audio(&std::fs::read(&remote).unwrap(), &local, "speak --server file");

    // The server named by the environment; a server that is not there is one clear line.
    drop(server);
    let out = base_command()
        .args(["speak", "Hi.", "-o"])
        .arg(dir.path().join("gone.wav"))
        .env("DEMOD_VOICE_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach the speech server at http://127.0.0.1:9"), "{stderr}");
    assert!(!dir.path().join("gone.wav").exists());
}

fn multipart_body(boundary: &str, fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        let file = if *name == "reference" { "; filename=\"ref.wav\"\r\nContent-Type: audio/wav" } else { "" };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[test]
fn clone_uploads_a_reference_and_speaks_as_the_clone_command_does() {
    let server = Serve::start(&[]);
    let reference_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
    let reference = std::fs::read(&reference_path).unwrap();
    let text = "A cloned voice from the server.";
    let boundary = "demodboundary42";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let body = multipart_body(
        boundary,
        &[
            ("reference", &reference),
            ("input", text.as_bytes()),
            ("noise_scale", b"0"),
            ("noise_w", b"0"),
            ("response_format", b"pcm"),
        ],
    );
    let (status, head, pcm) = http(&server.http, "POST", "/v1/clone", &[("Content-Type", &content_type)], &body);
    assert_eq!(status, 200, "{head} {}", String::from_utf8_lossy(&pcm));

    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("clone.wav");
    let out = base_command()
        .args(["-q", "clone"])
        .arg(&reference_path)
        .args([text, "--noise-scale", "0", "--noise-w", "0", "-o"])
        .arg(&local)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    same_audio(&pcm, &std::fs::read(&local).unwrap()[44..], "served clone");

    // No reference, not multipart, a reference too short to clone: one clear 400 each.
    let body = multipart_body(boundary, &[("input", b"Hi.")]);
    let (status, _, answer) = http(&server.http, "POST", "/v1/clone", &[("Content-Type", &content_type)], &body);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&answer).contains("`reference` is missing"));
    let (status, _, answer) = http(&server.http, "POST", "/v1/clone", &[("Content-Type", "application/json")], b"{}");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&answer).contains("multipart/form-data"));
    let short = &reference[..44 + 2 * 4000];
    let mut short = short.to_vec();
    short[40..44].copy_from_slice(&8000u32.to_le_bytes());
    let body = multipart_body(boundary, &[("reference", &short), ("input", b"Hi.")]);
    let (status, _, answer) = http(&server.http, "POST", "/v1/clone", &[("Content-Type", &content_type)], &body);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
    let (status, _, _) = http(&server.http, "POST", "/v1/audio/speech", &[], br#"{"input":"Still serving."}"#);
    assert_eq!(status, 200, "the server is healthy after the bad uploads");
}

#[test]
fn voices_load_on_first_use_and_the_least_recently_used_goes_past_the_memory_budget() {
    common::ensure_assets();
    let dirs = demod_voice_core::assets::Dirs::from_env();
    let model = demod_voice_core::assets::resolve_voice("en_US-joe-medium", &dirs.voices_dir()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let voices = dir.path().join("voices");
    std::fs::create_dir_all(&voices).unwrap();
    for name in ["en_US-joe-medium", "en_GB-twin-medium"] {
        std::os::unix::fs::symlink(&model, voices.join(format!("{name}.onnx"))).unwrap();
        std::fs::copy(model.with_extension("onnx.json"), voices.join(format!("{name}.onnx.json"))).unwrap();
    }
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!("paths:\n  voices: {}\n", voices.display())).unwrap();
    // Room for one voice's session (the model is about 60 MB).
    let server = Serve::start(&["--memory-mb", "100", "--config", config.to_str().unwrap()]);
    let loaded = |server: &Serve| {
        let (_, _, metrics) = http(&server.http, "GET", "/metrics", &[], b"");
        String::from_utf8(metrics).unwrap()
    };
    assert!(loaded(&server).contains(r#"demod_voice_sessions{voice="en_US-joe-medium"} 1"#));
    let (status, _, _) =
        http(&server.http, "POST", "/v1/audio/speech", &[], br#"{"input":"Twin.","model":"en_GB-twin-medium"}"#);
    assert_eq!(status, 200);
    let metrics = loaded(&server);
    assert!(metrics.contains(r#"demod_voice_sessions{voice="en_GB-twin-medium"} 1"#), "{metrics}");
    assert!(!metrics.contains(r#"voice="en_US-joe-medium""#), "the idle voice was unloaded: {metrics}");
    assert!(metrics.contains("demod_voice_evictions_total 1"), "{metrics}");
    let (_, _, voices_json) = http(&server.http, "GET", "/v1/voices", &[], b"");
    assert_eq!(json_body(&voices_json)["voices"].as_array().unwrap().len(), 2);
}
