#![no_main]
//! Any text as a voice's .onnx.json parses or gives a voice-config error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = demod_voice_core::piper::VoiceConfig::parse(text, std::path::Path::new("voice.onnx.json"));
});
