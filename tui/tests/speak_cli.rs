//! End-to-end tests of the `demod-voice` binary with the real runtime, espeak-ng and default voice. Missing assets
//! are installed once, as `demod-voice setup` does; the binary itself then runs `--offline`, so a command that
//! would download fails loudly instead. Nothing here skips.

#![allow(clippy::unwrap_used)]

mod common;

use common::ensure_assets;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    ensure_assets();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demod-voice"));
    // Never download during tests: a missing asset must fail loudly, not fetch.
    cmd.arg("--offline");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("demod-voice runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn default_model() -> PathBuf {
    let dirs = demod_voice_core::assets::Dirs::from_env();
    demod_voice_core::assets::resolve_voice(demod_voice_core::assets::DEFAULT_VOICE, &dirs.voices_dir())
        .unwrap_or_else(|e| panic!("the default voice is needed ({e}); run `demod-voice setup` first"))
}

fn wav_info(path: &Path) -> (hound::WavSpec, usize, f32) {
    let reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{} is not a WAV: {e}", path.display()));
    let spec = reader.spec();
    let samples: Vec<i16> = reader.into_samples::<i16>().map(|s| s.unwrap()).collect();
    let rms = (samples.iter().map(|&s| (s as f32 / 32768.0).powi(2)).sum::<f32>() / samples.len().max(1) as f32).sqrt();
    (spec, samples.len(), rms)
}

/// Only the expected files are in `dir`: no temporary or half-written output.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn speak_writes_16_bit_mono_22050_hz_wav_of_plausible_length() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("hello.wav");
    let out = run(bin().args(["speak", "Hello from DeMoD. This is a test of the default voice.", "-o"]).arg(&out_path));
    assert!(out.status.success(), "{}", stderr(&out));
    let (spec, frames, rms) = wav_info(&out_path);
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 22050, 16));
    let seconds = frames as f32 / 22050.0;
    assert!((2.0..8.0).contains(&seconds), "{seconds} s for two short sentences");
    assert!(rms > 0.02, "the audio is not silent (rms {rms})");
    assert_eq!(files_in(dir.path()), ["hello.wav"]);
}

#[test]
fn text_from_file_and_stdin_give_the_same_length_as_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let text = "One small sentence.";
    std::fs::write(dir.path().join("in.txt"), text).unwrap();
    let from_file = dir.path().join("file.wav");
    let out = run(bin().args(["speak", "-i"]).arg(dir.path().join("in.txt")).arg("-o").arg(&from_file).args([
        "--noise-scale",
        "0",
        "--noise-w",
        "0",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let from_arg = dir.path().join("arg.wav");
    let out = run(bin().args(["speak", text, "--noise-scale", "0", "--noise-w", "0", "-o"]).arg(&from_arg));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut child = bin()
        .args(["speak", "-i", "-", "--noise-scale", "0", "--noise-w", "0", "-o", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // WAV on stdout: a 44-byte streaming header then s16le samples.
    assert_eq!(&out.stdout[0..4], b"RIFF");
    let stdout_frames = (out.stdout.len() - 44) / 2;
    let (_, file_frames, _) = wav_info(&from_file);
    let (_, arg_frames, _) = wav_info(&from_arg);
    // With the noise scales at 0 the model is deterministic: identical lengths.
    assert_eq!(file_frames, arg_frames);
    assert_eq!(stdout_frames, arg_frames);
}

#[test]
fn raw_output_streams_pcm_sentence_by_sentence() {
    let mut child = bin()
        .args(["speak", "--output-raw", "First sentence here. Second one follows. And a third."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4096];
    stdout.read_exact(&mut first).unwrap();
    // The first sentence has arrived; the process is still working on the rest (or just finished).
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    let total = first.len() + rest.len();
    assert_eq!(total % 2, 0, "whole s16 samples");
    assert!(total / 2 > 22050 * 2, "three sentences last more than 2 s");
}

#[test]
fn piper_infer_alias_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("old.wav");
    let model = default_model();
    let out = run(bin()
        .arg("piper-infer")
        .arg(&model)
        .arg("The old command still works.")
        .arg("--output")
        .arg(&out_path)
        .args(["--speaker", "0"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let (spec, frames, _) = wav_info(&out_path);
    assert_eq!(spec.sample_rate, 22050);
    assert!(frames > 22050);
}

#[test]
fn phonemize_json_has_one_entry_per_sentence() {
    let out = run(bin().args(["phonemize", "--json", "Hello there. How are you?"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sentences = json["sentences"].as_array().unwrap();
    assert_eq!(sentences.len(), 2);
    assert_eq!(sentences[1]["text"], "How are you?");
    assert!(sentences[1]["phonemes"].as_str().unwrap().ends_with('?'));
    let ids: Vec<i64> = sentences[0]["phoneme_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(&ids[..2], &[1, 0], "BOS then PAD");
    assert_eq!(ids.last(), Some(&2), "EOS last");
}

/// Hardening: a paragraph joined only by commas used to become one model call of unbounded size (it failed
/// inside ONNX Runtime); now sentences end at clause boundaries under the phoneme cap.
#[test]
fn a_comma_paragraph_is_split_at_clauses_under_the_phoneme_cap() {
    let text = vec!["the quick brown fox jumps over the lazy dog"; 150].join(", ");
    let out = run(bin().args(["phonemize", "--json", &text]));
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sentences = json["sentences"].as_array().unwrap();
    assert!(sentences.len() >= 10, "{} sentences", sentences.len());
    for sentence in sentences {
        let phonemes = sentence["phonemes"].as_str().unwrap();
        assert!(phonemes.chars().count() <= demod_voice_core::piper::MAX_SENTENCE_PHONEMES, "{phonemes}");
        assert!(sentence["text"].as_str().unwrap().starts_with("the quick"), "{sentence}");
    }
}

/// Hardening: a single 20,000-letter word used to abort on an allocation.
#[test]
fn a_twenty_thousand_letter_word_is_spoken_in_bounded_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("word.wav");
    let out = run(bin().args(["speak", &"a".repeat(20_000), "-o"]).arg(&out_path));
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, frames, rms) = wav_info(&out_path);
    assert!(frames > 22050 * 10 && rms > 0.01, "{frames} frames, rms {rms}");
    assert_eq!(files_in(dir.path()), ["word.wav"]);
}

/// Hardening: Ctrl-C (or `kill`) in the middle of `speak` used to leave the `.partial` file behind.
#[test]
fn an_interrupted_speak_leaves_no_partial_file_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("long.txt");
    std::fs::write(&text, "This sentence keeps the voice busy for a good while longer. ".repeat(300)).unwrap();
    let child = bin()
        .args(["speak", "-i"])
        .arg(&text)
        .arg("-o")
        .arg(dir.path().join("out.wav"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until synthesis is writing its temporary file.
    let started = std::time::Instant::now();
    while !files_in(dir.path()).iter().any(|f| f.ends_with(".partial")) {
        assert!(started.elapsed().as_secs() < 60, "no temporary file appeared: {:?}", files_in(dir.path()));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert_eq!(files_in(dir.path()), ["long.txt"]);
}

/// Hardening: `speak -o -` declared a data size that was not a whole number of samples, so `convert` and
/// `voices add-profile` refused the program's own output.
#[test]
fn a_wav_streamed_to_stdout_is_read_back_by_convert() {
    let dir = tempfile::tempdir().unwrap();
    let streamed = dir.path().join("streamed.wav");
    let out = run(bin()
        .args(["speak", "Hello there. This file was streamed to standard output and saved by the shell.", "-o", "-"])
        .stdout(std::fs::File::create(&streamed).unwrap()));
    assert!(out.status.success(), "{}", stderr(&out));
    let converted = dir.path().join("converted.wav");
    let out = run(bin().arg("convert").arg(&streamed).arg("-o").arg(&converted).args(["--pitch", "2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, frames, rms) = wav_info(&converted);
    assert!(frames > 22050 * 2 && rms > 0.01, "{frames} {rms}");
}

#[test]
fn voices_list_shows_the_default_voice() {
    let out = run(bin().args(["voices", "list"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("en_US-joe-medium")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("en_US") && line.contains("medium") && line.contains("22050"), "{line}");
}

#[test]
fn a_hundred_kilobytes_of_text_stream_with_bounded_memory() {
    // An audiobook-sized input. A short length scale keeps the test quick; the pipeline is the same.
    let sentences = [
        "The committee met on Tuesday to discuss the budget for the coming year.",
        "Nobody expected the storm to arrive so early, but the harbor was ready.",
        "She counted 27 boxes, 14 crates and 3 barrels in the old warehouse!",
        "Would the train leave on time, or would they wait another hour?",
    ];
    let mut text = String::new();
    let mut idx = 0;
    while text.len() < 100_000 {
        text.push_str(sentences[idx % sentences.len()]);
        text.push(if idx % 9 == 8 { '\n' } else { ' ' });
        idx += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("book.txt");
    std::fs::write(&input, &text).unwrap();
    let mut child = bin()
        .args(["speak", "--length-scale", "0.1", "--output-raw", "-i"])
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    let mut peak_rss_kib = 0u64;
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(hwm) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
                peak_rss_kib = peak_rss_kib.max(hwm.trim().trim_end_matches("kB").trim().parse().unwrap_or(0));
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    let audio_seconds = total as f64 / 2.0 / 22050.0;
    assert!(audio_seconds > 300.0, "100 kB of text gave only {audio_seconds:.0} s of audio");
    // Holding the whole output as f32 would add ~4 bytes per sample on top of the model's ~250 MB.
    let whole_output_kib = (total * 2 / 1024) as u64;
    assert!(peak_rss_kib > 0, "peak memory was read");
    assert!(
        peak_rss_kib < 450 * 1024,
        "peak memory {peak_rss_kib} KiB for {whole_output_kib} KiB of audio: output is being held in memory"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: one line on stderr saying what and where, non-zero exit, no panic, no output file.

fn assert_clean_failure(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let error_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "exactly one error line: {err}");
    for needle in needles {
        assert!(error_lines[0].contains(needle), "{needle:?} missing from {:?}", error_lines[0]);
    }
}

#[test]
fn empty_text_is_a_usage_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bin().args(["speak", "   ", "-o"]).arg(dir.path().join("x.wav")));
    assert_clean_failure(&out, 2, &["empty"]);
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn invalid_utf8_on_stdin_is_reported_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["speak", "-o"])
        .arg(dir.path().join("x.wav"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Hello \xff\xfe world").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_clean_failure(&out, 2, &["standard input", "UTF-8", "offset 6"]);
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn unwritable_output_fails_before_synthesis_and_names_the_path() {
    let out = run(bin().args(["speak", "Hello.", "-o", "/nonexistent-folder/out.wav"]));
    assert_clean_failure(&out, 1, &["/nonexistent-folder/out.wav"]);
}

#[test]
fn missing_voice_file_is_named() {
    let out = run(bin().args(["speak", "Hello.", "--voice", "/nonexistent/voice.onnx", "-o", "/tmp/never.wav"]));
    assert_clean_failure(&out, 1, &["/nonexistent/voice.onnx"]);
    assert!(!Path::new("/tmp/never.wav").exists());
}

#[test]
fn unknown_voice_name_lists_installed_voices() {
    let out = run(bin().args(["speak", "Hello.", "--voice", "no-such-voice", "-o", "-"]).stdout(Stdio::piped()));
    assert_clean_failure(&out, 1, &["no-such-voice", "en_US-joe-medium"]);
}

#[test]
fn malformed_voice_config_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("broken.onnx");
    std::os::unix::fs::symlink(default_model(), &model).unwrap();
    // A syntax error: the message gives the file, line and column.
    std::fs::write(dir.path().join("broken.onnx.json"), "{\n  \"audio\": {\"sample_rate\": 22050,\n}").unwrap();
    let wav = dir.path().join("x.wav");
    let out = run(bin().args(["speak", "Hello.", "--voice"]).arg(&model).arg("-o").arg(&wav));
    assert_clean_failure(&out, 1, &["broken.onnx.json", "line 3"]);
    // A missing field: the message names it.
    std::fs::write(
        dir.path().join("broken.onnx.json"),
        r#"{"audio": {"sample_rate": 22050}, "espeak": {"voice": "en-us"}}"#,
    )
    .unwrap();
    let out = run(bin().args(["speak", "Hello.", "--voice"]).arg(&model).arg("-o").arg(&wav));
    assert_clean_failure(&out, 1, &["broken.onnx.json", "phoneme_id_map"]);
    assert!(!wav.exists());
}

#[test]
fn missing_or_incompatible_runtime_library_is_explained() {
    let out = run(bin().args(["--ort-lib", "/nonexistent/libonnxruntime.so", "speak", "Hi.", "-o", "/tmp/never.wav"]));
    assert_clean_failure(&out, 1, &["/nonexistent/libonnxruntime.so", "setup"]);
    // A real shared library that is not ONNX Runtime.
    let not_ort =
        ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libm.so.6"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("some system library exists");
    let out = run(bin().args(["--ort-lib", not_ort, "speak", "Hi.", "-o", "/tmp/never.wav"]));
    assert_clean_failure(&out, 1, &[not_ort, "OrtGetApiBase"]);
    assert!(!Path::new("/tmp/never.wav").exists());
}

#[test]
fn missing_espeak_data_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bin()
        .env("DEMOD_VOICE_ESPEAK_DATA", dir.path())
        .args(["speak", "Hello.", "-o"])
        .arg(dir.path().join("x.wav")));
    assert_clean_failure(&out, 1, &["espeak-ng data", "phontab"]);
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn text_of_only_punctuation_errors_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bin().args(["speak", "?!... ,;", "-o"]).arg(dir.path().join("x.wav")));
    assert_clean_failure(&out, 2, &["nothing to speak"]);
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn out_of_range_scale_is_a_usage_error() {
    let out = run(bin().args(["speak", "Hello.", "--length-scale", "0", "-o", "/tmp/never.wav"]));
    assert_clean_failure(&out, 2, &["length-scale"]);
}

#[test]
fn audio_is_not_written_to_a_terminal_or_nowhere() {
    let out = run(bin().args(["speak", "Hello."]));
    assert_clean_failure(&out, 2, &["-o FILE.wav"]);
}
