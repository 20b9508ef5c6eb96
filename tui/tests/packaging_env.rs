//! The environment the Nix wrapper and the Docker image set is honoured: with only those variables (runtime and
//! espeak-ng paths, a data directory), the binary speaks without `setup`. Also checks that flake.nix names every
//! output the packaging promises (its syntax is checked with `nix-instantiate --parse` in `.ci/run`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn real_assets() -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    common::ensure_assets();
    let dirs = demod_voice_core::assets::Dirs::from_env();
    let runtime = demod_voice_core::onnx::find_versioned_library(&dirs.runtime_dir()).unwrap();
    let espeak =
        demod_voice_core::assets::find_espeak(&dirs, |k| std::env::var_os(k).map(PathBuf::from)).unwrap().unwrap();
    let model = demod_voice_core::assets::resolve_voice("en_US-joe-medium", &dirs.voices_dir()).unwrap();
    (runtime, espeak.paths.library, espeak.paths.data_dir, model)
}

/// The binary with a clean environment: only PATH and a fresh HOME, plus `vars`.
fn clean(home: &Path, vars: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demod-voice"));
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap()).env("HOME", home);
    for (key, value) in vars {
        cmd.env(key, value);
    }
    cmd
}

#[test]
fn the_wrappers_variables_are_enough_to_speak_without_setup() {
    let (runtime, espeak_lib, espeak_data, model) = real_assets();
    let home = tempfile::tempdir().unwrap();
    let wav = home.path().join("hello.wav");
    let out = clean(
        home.path(),
        &[
            ("ORT_DYLIB_PATH", &runtime),
            ("DEMOD_VOICE_ESPEAK_LIB", &espeak_lib),
            ("DEMOD_VOICE_ESPEAK_DATA", &espeak_data),
        ],
    )
    .args(["--offline", "speak", "Hello from the Nix package.", "--voice"])
    .arg(&model)
    .arg("-o")
    .arg(&wav)
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("installing"), "no setup ran");
    assert!(!home.path().join(".local/share/demod-voice/runtime").exists());
    let (samples, rate) = demod_voice_core::wav::read_wav_mono(&wav).unwrap();
    assert_eq!(rate, 22050);
    assert!(samples.len() > 22050);
    // health agrees: runtime and espeak-ng found through the environment.
    let out = clean(
        home.path(),
        &[
            ("ORT_DYLIB_PATH", &runtime),
            ("DEMOD_VOICE_ESPEAK_LIB", &espeak_lib),
            ("DEMOD_VOICE_ESPEAK_DATA", &espeak_data),
        ],
    )
    .args(["--offline", "health", "--json"])
    .output()
    .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |name: &str| report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    assert_eq!(check("runtime")["details"]["found_by"], "ORT_DYLIB_PATH");
    assert_eq!(check("espeak")["status"], "ok");
}

#[test]
fn the_docker_images_data_directory_variable_is_honoured() {
    let (_, _, _, model) = real_assets();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("workspace/.demod-voice");
    std::fs::create_dir_all(data.join("voices")).unwrap();
    std::os::unix::fs::symlink(&model, data.join("voices/docker-voice.onnx")).unwrap();
    std::os::unix::fs::symlink(model.with_extension("onnx.json"), data.join("voices/docker-voice.onnx.json")).unwrap();
    let out = clean(home.path(), &[("DEMOD_VOICE_DATA_DIR", &data)]).args(["voices", "list"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("docker-voice"));
}

#[test]
fn a_wrong_ort_dylib_path_is_named() {
    let (_, espeak_lib, espeak_data, model) = real_assets();
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("nope/libonnxruntime.so");
    let out = clean(
        home.path(),
        &[
            ("ORT_DYLIB_PATH", &missing),
            ("DEMOD_VOICE_ESPEAK_LIB", &espeak_lib),
            ("DEMOD_VOICE_ESPEAK_DATA", &espeak_data),
        ],
    )
    .args(["--offline", "speak", "Hi.", "--voice"])
    .arg(&model)
    .args(["-o", "x.wav"])
    .current_dir(home.path())
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ORT_DYLIB_PATH") && stderr.contains("nope/libonnxruntime.so"), "{stderr}");
}

#[test]
fn flake_nix_declares_every_promised_output() {
    let flake = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../flake.nix")).unwrap();
    for name in [
        "demod-voice = mkDemodVoice",
        "demod-voice-cuda = mkDemodVoice",
        "demod-voice-plugin = pkgs.rustPlatform.buildRustPackage",
        "inherit demod-voice demod-voice-cuda demod-voice-plugin dockerImage",
        "default = demod-voice",
        "apps = {",
        "default = self.apps",
        "cli-help =",
        "health-check =",
        "tests = cargoCheck",
        "clippy = cargoCheck",
        "rustfmt = cargoCheck",
        "devShells.default",
        "dockerTools.buildLayeredImage",
        "cudatoolkit",
        "ORT_DYLIB_PATH",
        "DEMOD_VOICE_ESPEAK_LIB",
        "DEMOD_VOICE_ESPEAK_DATA",
        "DEMOD_VOICE_DATA_DIR=/workspace",
        "HOME=/tmp",
        "lib/clap",
        "lib/vst3",
    ] {
        assert!(flake.contains(name), "flake.nix lacks {name:?}");
    }
}
