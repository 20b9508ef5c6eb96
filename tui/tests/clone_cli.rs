//! Cloning as a user runs it, measured: for each reference recording with enough voiced speech, `clone` must move
//! the default voice toward it (speaker-encoder similarity up by at least 0.25 on average, every reference
//! improving), land the output's median F0 within a semitone of the reference's, and keep the speech as intelligible
//! as the base voice's (PocketSphinx word error rate; see [`MAX_WER_LOSS`]). A reference that is too short gets a clear
//! refusal; a second clone from the same reference reuses the fit.
//!
//! The table of results prints with `cargo test -p demod-voice --test clone_cli -- --nocapture` (the README's table
//! comes from it).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// How much worse the recogniser may do on a clone than on the base voice (a fraction of words): three points.
const MAX_WER_LOSS: f64 = 0.03;

const REFERENCES: &[&str] = &["librivox_male_two_cities.wav", "jfk_male.wav", "june_fr_female.wav"];

/// Sentences heard by the recogniser (they appear nowhere else in the repository).
const SENTENCES: &[&str] = &[
    "The garden gate was painted green last spring.",
    "Please bring two cups of coffee to the meeting room.",
    "Our train leaves from the second platform at noon.",
    "She wrote a long letter to her oldest friend.",
    "The doctor said I should drink more water every day.",
    "We watched the boats sail across the lake.",
    "He forgot his keys on the kitchen table again.",
    "The museum opens at nine and closes at five.",
    "A small dog was sleeping under the bench.",
    "They planted three apple trees behind the house.",
];

fn voices(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices").join(name)
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    common::ensure_assets();
    Command::new(env!("CARGO_BIN_EXE_demod-voice")).current_dir(dir).args(args).output().unwrap()
}

/// Word error rate of the recogniser over `files`, which say [`SENTENCES`] in order.
fn word_error_rate(files: &[PathBuf]) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/intelligibility/transcribe.py");
    let out = Command::new(common::asr::recogniser()).arg(script).args(files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (mut errors, mut total) = (0, 0);
    for (line, sentence) in String::from_utf8(out.stdout).unwrap().lines().zip(SENTENCES) {
        let heard = serde_json::from_str::<serde_json::Value>(line).unwrap()["text"].as_str().unwrap().to_string();
        errors += common::asr::edit_distance(&common::asr::words(sentence), &common::asr::words(&heard));
        total += common::asr::words(sentence).len();
    }
    errors as f64 / total as f64
}

#[test]
fn clone_moves_the_voice_toward_each_reference_and_keeps_the_words() {
    let dir = tempfile::tempdir().unwrap();
    // Every sentence by the base voice and cloned toward each reference, in one batch (clone rows run exactly what
    // `clone` runs; each reference is fitted once).
    let mut manifest = String::from("reference,text,output\n");
    for (i, sentence) in SENTENCES.iter().enumerate() {
        manifest.push_str(&format!(",{sentence:?},base-{i}.wav\n"));
        for reference in REFERENCES {
            let name = reference.trim_end_matches(".wav");
            manifest.push_str(&format!("{},{sentence:?},{name}-{i}.wav\n", voices(reference).display()));
        }
    }
    std::fs::write(dir.path().join("sentences.csv"), manifest).unwrap();
    // Zero noise: the base rows and the clone rows start from the same speech, so the recogniser compares the
    // conversion alone.
    let out = run(
        dir.path(),
        &[
            "batch",
            "sentences.csv",
            "--headless",
            "-q",
            // The references live in the shared data folder, outside the manifest's.
            "--allow-outside-paths",
            "--noise-scale",
            "0",
            "--noise-w",
            "0",
            "--report",
            "report.json",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The run's report has each clone row's similarity to its reference (and none for the base rows).
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    let similarity = report["similarity"].as_object().unwrap();
    assert_eq!(similarity.len(), SENTENCES.len() * REFERENCES.len());
    assert!(similarity.values().all(|v| (0.0..=1.0).contains(&v.as_f64().unwrap())), "{similarity:?}");
    let files = |prefix: &str| -> Vec<PathBuf> {
        (0..SENTENCES.len()).map(|i| dir.path().join(format!("{prefix}-{i}.wav"))).collect()
    };
    let base_wer = word_error_rate(&files("base"));

    let mut table = String::from(
        "| reference | before | after | F0 error (semitones) | WER base -> clone |\n|---|---|---|---|---|\n",
    );
    let mut gains = Vec::new();
    let mut results: Vec<(&str, f64, f64, f64, f64)> = Vec::new();
    for reference in REFERENCES {
        let name = reference.trim_end_matches(".wav");
        let out_path = dir.path().join(format!("{name}.wav"));
        let text = SENTENCES.join(" ");
        let out = run(
            dir.path(),
            &[
                "clone",
                voices(reference).to_str().unwrap(),
                &text,
                "-o",
                out_path.to_str().unwrap(),
                "--json",
                "--noise-scale",
                "0",
                "--noise-w",
                "0",
            ],
        );
        assert!(out.status.success(), "{reference}: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (before, after) =
            (report["similarity_before"].as_f64().unwrap(), report["similarity_after"].as_f64().unwrap());
        let f0_error = 12.0
            * (report["output_median_f0_hz"].as_f64().unwrap() / report["reference_median_f0_hz"].as_f64().unwrap())
                .log2();
        // A second clone from the same reference starts from the cached fit.
        let out = run(
            dir.path(),
            &[
                "clone",
                voices(reference).to_str().unwrap(),
                SENTENCES[0],
                "-o",
                "again.wav",
                "--json",
                "--noise-scale",
                "0",
                "--noise-w",
                "0",
            ],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(again["fit_cached"], true, "a second clone from {reference} reuses the fit");
        let cloned = files(name);
        let wer = word_error_rate(&cloned);
        table.push_str(&format!(
            "| {reference} | {before:.2} | {after:.2} | {f0_error:+.2} | {:.0}% -> {:.0}% |\n",
            base_wer * 100.0,
            wer * 100.0
        ));
        results.push((reference, before, after, f0_error, wer));
        gains.push(after - before);
    }
    println!("{table}");
    for (reference, before, after, f0_error, wer) in results {
        assert!(after > before, "{reference}: similarity {before:.3} -> {after:.3}\n{table}");
        assert!(f0_error.abs() <= 1.0, "{reference}: median F0 off by {f0_error:.2} semitones\n{table}");
        assert!(
            wer <= base_wer + MAX_WER_LOSS,
            "{reference}: WER {:.1}% vs the base voice's {:.1}%\n{table}",
            wer * 100.0,
            base_wer * 100.0
        );
    }
    let mean_gain = gains.iter().sum::<f64>() / gains.len() as f64;
    assert!(mean_gain >= 0.25, "similarity rose by {mean_gain:.3} on average:\n{table}");
}

#[test]
fn a_reference_too_short_to_clone_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["clone", voices("arctic_slt_female.wav").to_str().unwrap(), "Hello.", "-o", "x.wav"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("voiced speech") && stderr.contains("at least 3 s"), "{stderr}");
    assert!(!dir.path().join("x.wav").exists());
}

#[test]
fn similarity_tells_one_speaker_from_two() {
    let dir = tempfile::tempdir().unwrap();
    // Two halves of one recording are one speaker; another recording is another.
    let (samples, rate) = demod_voice_core::wav::read_wav_mono(&voices("librivox_male_two_cities.wav")).unwrap();
    let half = samples.len() / 2;
    for (name, part) in [("first.wav", &samples[..half]), ("second.wav", &samples[half..])] {
        let mut wav = demod_voice_core::wav::AtomicWav::create(&dir.path().join(name), rate).unwrap();
        wav.write(part).unwrap();
        wav.finish().unwrap();
    }
    let other = voices("arctic_slt_female.wav");
    let out = run(dir.path(), &["similarity", "first.wav", "second.wav", other.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    let threshold = report["threshold"].as_f64().unwrap();
    assert!(files[0]["similarity"].as_f64().unwrap() > threshold && files[0]["same_speaker"] == true);
    assert!(files[1]["similarity"].as_f64().unwrap() < threshold && files[1]["same_speaker"] == false);
    let text = run(dir.path(), &["similarity", "first.wav", "second.wav"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("verdict: 1 of 1"));
    let missing = run(dir.path(), &["similarity", "first.wav", "nope.wav"]);
    assert_eq!(missing.status.code(), Some(2));
    // An empty recording is refused rather than scored.
    demod_voice_core::wav::AtomicWav::create(&dir.path().join("empty.wav"), 16_000).unwrap().finish().unwrap();
    let empty = run(dir.path(), &["similarity", "first.wav", "empty.wav"]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("half a second"));
}
