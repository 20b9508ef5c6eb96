//! Intelligibility: an independent speech recogniser (PocketSphinx, offline, its model carried by its wheel)
//! transcribes speech from `demod-voice speak`, and the word error rate over sentences that appear nowhere else
//! in the repository must stay low. The recogniser runs in a virtual environment this test creates (outside the
//! clone, so repeated runs are warm).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

const SENTENCES: &[&str] = &[
    "The weather is nice today and we will go to the park.",
    "Please call me back after lunch.",
    "My brother bought a new car last week.",
    "Open the window because it is very warm in here.",
    "We need more time to finish the project.",
    "The children played in the garden until dinner.",
];

/// Word error rate threshold. PocketSphinx makes about one error in ten words on this voice (measured: 10%), so this
/// bounds gross failures (mumbling, wrong phonemes, silence), not fine quality.
const MAX_WER: f64 = 0.25;

#[test]
fn an_independent_recogniser_understands_the_default_voice() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (idx, sentence) in SENTENCES.iter().enumerate() {
        let path = dir.path().join(format!("s{idx}.wav"));
        let out = Command::new(env!("CARGO_BIN_EXE_demod-voice"))
            .args(["speak", sentence, "-q", "-o"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        paths.push(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/intelligibility/transcribe.py");
    let out = Command::new(common::asr::recogniser()).arg(script).args(&paths).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut errors = 0;
    let mut total = 0;
    let mut report = String::new();
    for (line, sentence) in String::from_utf8(out.stdout).unwrap().lines().zip(SENTENCES) {
        let heard = serde_json::from_str::<serde_json::Value>(line).unwrap()["text"].as_str().unwrap().to_string();
        let expected = common::asr::words(sentence);
        errors += common::asr::edit_distance(&expected, &common::asr::words(&heard));
        total += expected.len();
        report.push_str(&format!("\n  said:  {sentence}\n  heard: {heard}"));
    }
    let wer = errors as f64 / total as f64;
    assert!(wer <= MAX_WER, "word error rate {:.0}% over {total} words:{report}", wer * 100.0);
}
