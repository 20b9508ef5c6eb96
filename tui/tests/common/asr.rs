//! The speech recogniser the intelligibility and cloning tests listen with: PocketSphinx in a virtual environment
//! this creates outside the clone (so repeated runs are warm), and word error counting.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

/// The Python of the recogniser's virtual environment, made (and PocketSphinx installed) on first use.
pub fn recogniser() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    let venv = base.join("demod-voice/test-asr-venv");
    let python = venv.join("bin/python");
    let ready = python.is_file()
        && Command::new(&python).args(["-c", "import pocketsphinx"]).output().is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap().success(),
            "python3 -m venv failed"
        );
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", "pocketsphinx==5.1.1"])
            .status()
            .unwrap();
        assert!(status.success(), "installing pocketsphinx failed");
    }
    python
}

/// Lower-case words, punctuation dropped.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word-level edit distance (substitutions, insertions, deletions).
pub fn edit_distance(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, wa) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, wb) in b.iter().enumerate() {
            row[j + 1] = (prev[j] + usize::from(wa != wb)).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()]
}
