#![no_main]
//! Any bytes as a WAV file read back as finite samples or give a WAV error, never a panic or a huge allocation.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("demod-voice-fuzz-{}.wav", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        if let Ok(audio) = demod_voice_core::wav::read_wav_mono_capped(&path, Some(60.0)) {
            assert!(audio.samples.iter().all(|s| s.is_finite()));
        }
    }
});
