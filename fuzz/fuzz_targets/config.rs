#![no_main]
//! Any text as a config file parses or gives a config error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = demod_voice_core::config::parse(text, std::path::Path::new("config.yaml"));
});
