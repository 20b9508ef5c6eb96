//! The plugin in real hosts. The test build of this crate's cdylib has nice-plug's `assert_process_allocs` on
//! (see the dev-dependency in Cargo.toml), so any allocation in `process` aborts the host and fails the test.
//! The cdylib is laid out as the bundles `cargo xtask bundle` makes (`DeMoD Voice.vst3/Contents/x86_64-linux/
//! DeMoD Voice.so`, `DeMoD Voice.clap`), in a temporary folder.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cdylib cargo built for this test run: `target/<profile>/deps/libdemod_voice_plugin.so`, beside this test
/// binary. (The copy in `target/<profile>/` comes from plain builds, without the allocation checks.)
fn built_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("libdemod_voice_plugin.so");
    assert!(lib.is_file(), "{} is missing: cargo builds it with the tests", lib.display());
    lib
}

fn vst3_bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join("DeMoD Voice.vst3");
    let arch = format!("{}-linux", std::env::consts::ARCH);
    let contents = bundle.join("Contents").join(arch);
    std::fs::create_dir_all(&contents).unwrap();
    std::fs::copy(built_library(), contents.join("DeMoD Voice.so")).unwrap();
    bundle
}

/// A virtual environment with the host, outside the clone so repeated runs are warm.
fn venv(name: &str, packages: &[&str]) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    let venv = base.join("demod-voice").join(name);
    let python = venv.join("bin/python");
    let marker = venv.join(".installed");
    let wanted = packages.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let status = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap();
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(packages)
            .status()
            .unwrap();
        assert!(status.success(), "installing {packages:?} failed");
        std::fs::write(&marker, &wanted).unwrap();
    }
    python
}

#[test]
fn vst3_in_pedalboard() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = vst3_bundle(dir.path());
    let python = venv("test-vst3-host-venv", &["pedalboard==0.9.26", "numpy==2.4.6"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hosts/vst3_pedalboard.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&bundle)
        // Keep the plugin's own log quiet; failures are in the script's output.
        .env("NICE_LOG", "/dev/null")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "VST3 host checks failed (status {:?}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("all VST3 host checks passed"), "{stdout}");
}
