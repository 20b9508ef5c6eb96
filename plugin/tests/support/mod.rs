pub mod host;

use std::path::{Path, PathBuf};

/// The test build of the plugin (with the allocation checks) as a CLAP bundle in `dir`: on Linux, the shared
/// library renamed.
pub fn clap_bundle(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("libdemod_voice_plugin.so");
    assert!(lib.is_file(), "{} is missing: cargo builds it with the tests", lib.display());
    let bundle = dir.join("DeMoD Voice.clap");
    std::fs::copy(lib, &bundle).unwrap();
    bundle
}
