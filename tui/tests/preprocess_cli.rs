//! `preprocess` on a dataset this test builds: clips spoken by the default voice, plus silent, corrupt, too long,
//! too short, stereo, 44.1 kHz and 8-bit clips, and a metadata line pointing at a missing file.

#![allow(clippy::unwrap_used)]

mod common;

use common::ensure_assets;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin(config: Option<&Path>) -> Command {
    ensure_assets();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demod-voice"));
    cmd.arg("--offline").env("XDG_CONFIG_HOME", "/nonexistent-config");
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "failed: {stderr}");
    stderr
}

fn write_wav(path: &Path, samples: &[f32], rate: u32, channels: u16, bits: u16) {
    let spec =
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format: hound::SampleFormat::Int };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for s in samples {
        for _ in 0..channels {
            if bits == 8 {
                writer.write_sample((s * 127.0) as i8).unwrap();
            } else {
                writer.write_sample((s * 32767.0) as i16).unwrap();
            }
        }
    }
    writer.finalize().unwrap();
}

fn tone(rate: u32, seconds: f32, db: f32) -> Vec<f32> {
    let amp = 10f32.powf(db / 20.0) * std::f32::consts::SQRT_2;
    (0..(rate as f32 * seconds) as usize)
        .map(|i| amp * (2.0 * std::f32::consts::PI * 200.0 * i as f32 / rate as f32).sin())
        .collect()
}

/// RMS in dBFS over the 10 ms windows above `floor_db` (how preprocess measures loudness; its -40 dBFS silence
/// threshold applies before the gain, so after normalising to -20 the floor is -40 and after -30 it is -50).
fn speech_db(samples: &[f32], rate: u32, floor_db: f32) -> f32 {
    let window = rate as usize / 100;
    let threshold = 10f32.powf(floor_db / 20.0);
    let (mut energy, mut count) = (0.0f64, 0usize);
    for chunk in samples.chunks(window) {
        let rms = (chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32).sqrt();
        if rms >= threshold {
            energy += chunk.iter().map(|s| f64::from(s * s)).sum::<f64>();
            count += chunk.len();
        }
    }
    20.0 * ((energy / count as f64).sqrt() as f32).log10()
}

const LINES: &[(&str, &str)] = &[
    ("clip01", "The river ran quietly past the mill."),
    ("clip02", "She opened the window to let in the morning air."),
    ("clip03", "Two old friends met again after many years."),
];

/// Build the dataset; returns the input folder.
fn build_dataset(root: &Path) -> PathBuf {
    let input = root.join("input");
    let wavs = input.join("wavs");
    std::fs::create_dir_all(&wavs).unwrap();
    let mut metadata = String::new();
    for (id, text) in LINES {
        ok(&bin(None).args(["speak", text, "-q", "-o"]).arg(wavs.join(format!("{id}.wav"))).output().unwrap());
        metadata.push_str(&format!("{id}|{text}\n"));
    }
    let (speech, rate) = demod_voice_core::wav::read_wav_mono(&wavs.join("clip01.wav")).unwrap();
    // One second of silence before the speech: trimming must remove it.
    let mut padded = vec![0.0f32; rate as usize];
    padded.extend_from_slice(&speech);
    write_wav(&wavs.join("padded.wav"), &padded, rate, 1, 16);
    metadata.push_str("padded|The river ran quietly past the mill.\n");
    write_wav(&wavs.join("stereo.wav"), &speech, rate, 2, 16);
    metadata.push_str("stereo|The river ran quietly past the mill.\n");
    let resampled = demod_voice_core::wav::resample(&speech, rate, 44_100).unwrap();
    write_wav(&wavs.join("cd.wav"), &resampled, 44_100, 1, 16);
    metadata.push_str("cd|The river ran quietly past the mill.\n");
    write_wav(&wavs.join("eight.wav"), &speech, rate, 1, 8);
    metadata.push_str("eight|The river ran quietly past the mill.\n");
    write_wav(&wavs.join("silent.wav"), &vec![0.0; rate as usize * 2], rate, 1, 16);
    metadata.push_str("silent|Nothing to hear here.\n");
    std::fs::write(wavs.join("corrupt.wav"), b"RIFF\x24\x00\x00\x00WAVEjunkjunk").unwrap();
    metadata.push_str("corrupt|A broken file.\n");
    write_wav(&wavs.join("long.wav"), &tone(rate, 17.0, -25.0), rate, 1, 16);
    metadata.push_str("long|A very long recording.\n");
    write_wav(&wavs.join("short.wav"), &tone(rate, 0.2, -25.0), rate, 1, 16);
    metadata.push_str("short|Hi.\n");
    metadata.push_str("missing|This file is not there.\n");
    std::fs::write(input.join("metadata.csv"), metadata).unwrap();
    input
}

fn report(output: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(output.join("report.json")).unwrap()).unwrap()
}

#[test]
fn a_mixed_dataset_becomes_a_piper_training_set() {
    let root = tempfile::tempdir().unwrap();
    let input = build_dataset(root.path());
    let output = root.path().join("dataset");
    let out =
        bin(None).args(["preprocess", "--input-dir"]).arg(&input).arg("--output-dir").arg(&output).output().unwrap();
    ok(&out);
    let report = report(&output);
    let valid = ["clip01", "clip02", "clip03", "padded", "stereo", "cd", "eight"];
    assert_eq!(report["utterances"], valid.len(), "{report}");
    for id in valid {
        let (samples, rate) = demod_voice_core::wav::read_wav_mono(&output.join(format!("wavs/{id}.wav"))).unwrap();
        assert_eq!(rate, 22_050, "{id}");
        let spec = hound::WavReader::open(output.join(format!("wavs/{id}.wav"))).unwrap().spec();
        assert_eq!((spec.channels, spec.bits_per_sample), (1, 16), "{id}");
        let db = speech_db(&samples, rate, -40.0);
        assert!((db + 20.0).abs() <= 0.5, "{id}: loudness {db:.2} dBFS, wanted -20 within 0.5 dB");
    }
    // The leading second of silence is gone (at most the 50 ms pad remains).
    let (padded, _) = demod_voice_core::wav::read_wav_mono(&output.join("wavs/padded.wav")).unwrap();
    let (plain, _) = demod_voice_core::wav::read_wav_mono(&output.join("wavs/clip01.wav")).unwrap();
    assert!((padded.len() as i64 - plain.len() as i64).abs() < 2205, "{} vs {}", padded.len(), plain.len());
    let reasons: std::collections::HashMap<String, String> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["reason"].as_str().unwrap().to_string()))
        .collect();
    for (id, needle) in [
        ("silent", "silent"),
        ("corrupt", "unreadable"),
        ("long", "too long"),
        ("short", "too short"),
        ("missing", "missing"),
    ] {
        assert!(reasons.get(id).is_some_and(|r| r.contains(needle)), "{id}: {:?}", reasons.get(id));
        assert!(!output.join(format!("wavs/{id}.wav")).exists());
    }
    // The trainer's files.
    let metadata = std::fs::read_to_string(output.join("metadata.csv")).unwrap();
    assert_eq!(metadata.lines().count(), valid.len());
    assert!(metadata.starts_with("clip01|The river ran quietly past the mill.\n"));
    let jsonl = std::fs::read_to_string(output.join("dataset.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["audio_path"], "wavs/clip01.wav");
    assert!(first["phonemes"].as_str().unwrap().contains('ˈ'));
    assert_eq!(first["phoneme_ids"][0], 1);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(output.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["audio"]["sample_rate"], 22050);
    assert_eq!(config["espeak"]["voice"], "en-us");
    assert_eq!(config["num_speakers"], 1);
    assert!(config["phoneme_id_map"]["ə"].is_array());

    // Rerunning gives the same dataset, byte for byte.
    let before: Vec<Vec<u8>> = ["metadata.csv", "dataset.jsonl", "config.json", "wavs/stereo.wav"]
        .iter()
        .map(|f| std::fs::read(output.join(f)).unwrap())
        .collect();
    ok(&bin(None)
        .args(["piper-preprocess", "--input-dir"])
        .arg(&input)
        .arg("--output-dir")
        .arg(&output)
        .output()
        .unwrap());
    let after: Vec<Vec<u8>> = ["metadata.csv", "dataset.jsonl", "config.json", "wavs/stereo.wav"]
        .iter()
        .map(|f| std::fs::read(output.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn preprocessing_config_keys_change_the_result() {
    let root = tempfile::tempdir().unwrap();
    let input = build_dataset(root.path());
    let run = |name: &str, config: &str| -> (PathBuf, serde_json::Value) {
        let path = root.path().join(format!("{name}.yaml"));
        std::fs::write(&path, config).unwrap();
        let output = root.path().join(name);
        ok(&bin(Some(&path))
            .args(["preprocess", "--input-dir"])
            .arg(&input)
            .arg("--output-dir")
            .arg(&output)
            .output()
            .unwrap());
        let report = report(&output);
        (output, report)
    };
    let skipped =
        |report: &serde_json::Value, id: &str| report["skipped"].as_array().unwrap().iter().any(|s| s["id"] == id);
    // sample_rate
    let (out, _) = run("rate", "preprocessing:\n  sample_rate: 16000\n");
    assert_eq!(demod_voice_core::wav::read_wav_mono(&out.join("wavs/clip02.wav")).unwrap().1, 16_000);
    // normalize_db
    let (out, _) = run("quiet", "preprocessing:\n  normalize_db: -30\n");
    let (samples, rate) = demod_voice_core::wav::read_wav_mono(&out.join("wavs/clip02.wav")).unwrap();
    let db = speech_db(&samples, rate, -50.0);
    assert!((db + 30.0).abs() <= 0.5, "{db}");
    // trim_silence
    let (out, _) = run("untrimmed", "preprocessing:\n  trim_silence: false\n");
    let (padded, _) = demod_voice_core::wav::read_wav_mono(&out.join("wavs/padded.wav")).unwrap();
    let (plain, _) = demod_voice_core::wav::read_wav_mono(&out.join("wavs/clip01.wav")).unwrap();
    assert!(padded.len() >= plain.len() + 20_000, "the leading second stays");
    // silence_threshold_db: at -20 dBFS the -25 dBFS tones count as silence.
    let (_, report) = run("deaf", "preprocessing:\n  silence_threshold_db: -20\n  max_duration: 30\n");
    assert!(skipped(&report, "long"), "{report}");
    assert!(report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == "long" && s["reason"].as_str().unwrap().contains("silent")));
    // min_duration and max_duration
    let (_, report) = run("strict", "preprocessing:\n  min_duration: 3.0\n  max_duration: 20\n");
    assert!(skipped(&report, "clip03") && !skipped(&report, "long"), "{report}");
}

#[test]
fn bad_input_stops_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    std::fs::create_dir_all(input.join("wavs")).unwrap();
    let output = root.path().join("out");
    let check = |needle: &str, output: &Path| {
        let out =
            bin(None).args(["preprocess", "--input-dir"]).arg(&input).arg("--output-dir").arg(output).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(!output.exists(), "nothing written");
    };
    check("metadata.csv", &output);
    std::fs::write(input.join("metadata.csv"), "a,Hello there.\n").unwrap();
    check("'|'", &output);
    std::fs::write(input.join("metadata.csv"), "a|Hello there.\nb| \n").unwrap();
    check("empty text", &output);
    std::fs::write(input.join("metadata.csv"), "a|Hello there.\n").unwrap();
    check("inside the input folder", &input.join("dataset"));
}

#[test]
fn a_thousand_clips_in_bounded_memory() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    let wavs = input.join("wavs");
    std::fs::create_dir_all(&wavs).unwrap();
    let base = root.path().join("base.wav");
    ok(&bin(None).args(["speak", "A short line for a big dataset.", "-q", "-o"]).arg(&base).output().unwrap());
    let mut metadata = String::new();
    for idx in 0..1000 {
        std::os::unix::fs::symlink(&base, wavs.join(format!("u{idx:04}.wav"))).unwrap();
        metadata.push_str(&format!("u{idx:04}|A short line for a big dataset.\n"));
    }
    std::fs::write(input.join("metadata.csv"), metadata).unwrap();
    let output = root.path().join("out");
    let mut child = bin(None)
        .args(["preprocess", "-q", "--input-dir"])
        .arg(&input)
        .arg("--output-dir")
        .arg(&output)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(hwm) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
                peak_kib = peak_kib.max(hwm.trim().trim_end_matches("kB").trim().parse().unwrap_or(0));
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(report(&output)["utterances"], 1000);
    // Each clip is processed and written on its own: memory does not grow with the dataset (the whole
    // dataset's audio would be about 60 MB as f32).
    assert!(peak_kib > 0 && peak_kib < 60 * 1024, "peak memory {peak_kib} KiB");
}
