//! `models add|list|show|remove` through the real binary, on the tiny graphs with the real model signatures.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data").join(name)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    common::ensure_assets();
    let private = common::private_data(dir);
    Command::new(env!("CARGO_BIN_EXE_demod-voice"))
        .args(["--offline", "--ort-lib"])
        .arg(&private.ort_lib)
        .arg("--config")
        .arg(&private.config)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn models_are_installed_by_kind_listed_shown_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let okada = fixture("neural/rvc_okada.onnx");
    let out = run(dir.path(), &["models", "add", okada.to_str().unwrap(), "--name", "alto"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rvc engine: RVC voice model (w-okada export, 768 channels, pitch, 40000 Hz)"), "{stderr}");
    let pair = [fixture("neural/tone_converter.onnx"), fixture("neural/tone_extractor.onnx")];
    let out =
        run(dir.path(), &["models", "add", pair[0].to_str().unwrap(), pair[1].to_str().unwrap(), "--name", "tone"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let list = String::from_utf8(run(dir.path(), &["models", "list"]).stdout).unwrap();
    assert!(list.contains("alto") && list.contains("tone-color"), "{list}");
    let json: serde_json::Value =
        serde_json::from_slice(&run(dir.path(), &["models", "list", "--json"]).stdout).unwrap();
    assert_eq!(json["models"][0]["files"][0]["kind"]["kind"], "rvc-okada");
    let show = String::from_utf8(run(dir.path(), &["models", "show", "tone"]).stdout).unwrap();
    assert!(show.contains("tone colour converter") && show.contains("sha256"), "{show}");

    // A Piper voice is no conversion model: exit 2, one line naming its inputs and what each kind needs.
    let out = run(dir.path(), &["models", "add", fixture("tiny_piper.onnx").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("input_lengths") && stderr.contains("expected one of"), "{stderr}");

    assert!(run(dir.path(), &["models", "remove", "alto"]).status.success());
    let out = run(dir.path(), &["models", "show", "alto"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model named `alto` (installed: tone)"));
}
