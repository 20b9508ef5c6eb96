#![no_main]
//! Any text as a preset parses or gives a preset error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = demod_voice_core::presets::parse(text, std::path::Path::new("preset.yaml"));
});
