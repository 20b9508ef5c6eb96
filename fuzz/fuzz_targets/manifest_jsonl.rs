#![no_main]
//! A manifest of any bytes (as .jsonl) loads or fails with a row or file error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("/fuzz/manifest.jsonl");
    let _ = demod_voice_core::batch::Manifest::from_reader(path, data, &Default::default());
});
