//! Shared by the binary's end-to-end tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod asr;
pub mod catalog_server;

/// Install the real runtime, espeak-ng and default voice once per test binary when they are missing, exactly as
/// `demod-voice setup` does. Tests then run the binary `--offline`, so nothing downloads behind their back, and
/// they fail (never skip) when the assets cannot be had.
pub fn ensure_assets() {
    static SETUP: std::sync::Once = std::sync::Once::new();
    SETUP.call_once(|| {
        let dirs = demod_voice_core::assets::Dirs::from_env();
        if !demod_voice_core::assets::missing_assets(&dirs).is_empty() {
            let options = demod_voice_core::assets::SetupOptions::default();
            demod_voice_core::assets::setup(&dirs, &options, &mut |line| eprintln!("test setup: {line}"))
                .unwrap_or_else(|e| panic!("cannot install the test assets: {e}"));
        }
    });
}

/// The espeak-ng library the installed assets (or the environment) provide.
pub fn find_espeak_lib(dirs: &demod_voice_core::assets::Dirs) -> std::path::PathBuf {
    let found = demod_voice_core::assets::find_espeak(dirs, |k| std::env::var_os(k).map(std::path::PathBuf::from))
        .unwrap()
        .unwrap();
    found.paths.library
}

/// What a test needs to run the binary with a private data folder in `dir` (profiles land there) while using the
/// real runtime, espeak-ng and voices: the config file it writes, and the libraries to name.
pub struct PrivateData {
    pub config: std::path::PathBuf,
    pub ort_lib: std::path::PathBuf,
    pub espeak_lib: std::path::PathBuf,
    pub espeak_data: std::path::PathBuf,
}

pub fn private_data(dir: &std::path::Path) -> PrivateData {
    private_data_with(dir, "")
}

/// The paths [`private_data`] gives, without writing the config file again.
pub fn private_data_paths(dir: &std::path::Path) -> PrivateData {
    let real = demod_voice_core::assets::Dirs::from_env();
    PrivateData {
        config: dir.join("config.yaml"),
        ort_lib: demod_voice_core::onnx::find_versioned_library(&real.runtime_dir()).unwrap(),
        espeak_lib: find_espeak_lib(&real),
        espeak_data: real.espeak_dir().join("espeak-ng-data"),
    }
}

/// As [`private_data`], with `extra` (more YAML sections) in the config file.
pub fn private_data_with(dir: &std::path::Path, extra: &str) -> PrivateData {
    let real = demod_voice_core::assets::Dirs::from_env();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "paths:\n  data: {}\n  voices: {}\n  cache: {}\n{extra}",
            dir.join("data").display(),
            real.voices_dir().display(),
            real.cache.display()
        ),
    )
    .unwrap();
    PrivateData {
        config,
        ort_lib: demod_voice_core::onnx::find_versioned_library(&real.runtime_dir()).unwrap(),
        espeak_lib: find_espeak_lib(&real),
        espeak_data: real.espeak_dir().join("espeak-ng-data"),
    }
}
