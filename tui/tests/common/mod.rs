//! Shared by the binary's end-to-end tests.
#![allow(dead_code, clippy::unwrap_used)]

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
