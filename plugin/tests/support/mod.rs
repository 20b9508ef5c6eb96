#![allow(dead_code)]
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

/// nice-plug's CLAP state is an 8-byte length and JSON whose persisted fields are JSON strings; set the field
/// `field` to `value`.
pub fn with_persisted(state: &[u8], field: &str, value: &str) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(&state[8..]).unwrap();
    let fields = json.get_mut("fields").and_then(|f| f.as_object_mut());
    let slot = fields.and_then(|f| f.get_mut(field)).unwrap_or_else(|| panic!("state layout changed: no {field}"));
    *slot = serde_json::Value::String(serde_json::to_string(value).unwrap());
    let edited = serde_json::to_string(&json).unwrap();
    let mut bytes = (edited.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(edited.as_bytes());
    bytes
}
