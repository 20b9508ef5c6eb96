//! Property tests (hardening): every parser a user's file reaches takes arbitrary bytes or text and answers with
//! a value or a structured error, never a panic. The case count is bounded for CI (`PROPTEST_CASES` raises it);
//! `fuzz/` has `cargo fuzz` targets for the same entry points, for long runs.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use demod_voice_core::batch::{Manifest, PathPolicy};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(192)
}

/// Text made of the pieces the formats are built from, so cases reach past the first syntax check.
fn structured(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![4 => prop::sample::select(tokens).prop_map(String::from), 1 => any::<String>()],
        0..64,
    )
    .prop_map(|parts| parts.concat())
}

const MANIFEST_TOKENS: &[&str] = &[
    "text",
    "output",
    "reference",
    "voice",
    "preset",
    "profile",
    "engine",
    "speaker",
    "language",
    "length_scale",
    "noise_scale",
    "noise_w",
    ",",
    "\n",
    "\r\n",
    "\"",
    "\"\"",
    ":",
    "{",
    "}",
    "[",
    "]",
    " ",
    "a.wav",
    "../x.wav",
    "/abs.wav",
    "Hello there.",
    "1.5",
    "-3",
    "nan",
    "1e40",
    "dsp",
    "jobs:",
    "defaults:",
    "- ",
    "  ",
    "\u{feff}",
    "\"text\":",
    "\"output\":",
    "null",
    "true",
    "é",
    "\t",
];

const CONFIG_TOKENS: &[&str] = &[
    "tts:",
    "realtime:",
    "output:",
    "paths:",
    "converter:",
    "audio:",
    "voice:",
    "length_scale:",
    "noise_scale:",
    "volume:",
    "hop_ms:",
    "crossfade_ms:",
    "underrun:",
    "pitch:",
    "formant:",
    "engine:",
    "format:",
    "name:",
    "schema_version:",
    "\n",
    "  ",
    " ",
    "-",
    "1",
    "0",
    "-1",
    "1e309",
    ".nan",
    ".inf",
    "~",
    "dry",
    "wav",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "&a",
    "*a",
    "!!str",
    "---",
    "#",
    "é",
];

fn load_manifest(ext: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("m.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    for policy in [PathPolicy::default(), PathPolicy { output_dir: None, allow_outside: true }] {
        if let Ok(manifest) = Manifest::load_with(&path, &policy) {
            // Every valid job's output stays inside the folder unless outside paths are allowed.
            if !policy.allow_outside {
                for job in &manifest.jobs {
                    assert!(job.output.starts_with(dir.path()), "{} escaped", job.output.display());
                }
            }
        }
    }
}

fn wav_header(format: u16, channels: u16, rate: u32, bits: u16, data: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&data.wrapping_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&format.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    let block = u32::from(channels) * u32::from(bits).div_ceil(8);
    h.extend_from_slice(&rate.wrapping_mul(block).to_le_bytes());
    h.extend_from_slice(&(block as u16).to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn manifests_of_any_bytes_load_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        for ext in ["csv", "jsonl", "yaml", "txt"] {
            load_manifest(ext, &bytes);
        }
    }

    #[test]
    fn manifests_of_structured_text_load_or_fail_cleanly(text in structured(MANIFEST_TOKENS)) {
        for ext in ["csv", "jsonl", "yaml", "txt"] {
            load_manifest(ext, text.as_bytes());
        }
    }

    #[test]
    fn config_files_parse_or_fail_cleanly(text in prop_oneof![structured(CONFIG_TOKENS), any::<String>()]) {
        let _ = demod_voice_core::config::parse(&text, Path::new("config.yaml"));
        let _ = demod_voice_core::presets::parse(&text, Path::new("preset.yaml"));
    }

    #[test]
    fn voice_configs_parse_or_fail_cleanly(text in prop_oneof![
        structured(&["{", "}", "[", "]", ":", ",", "\"audio\"", "\"sample_rate\"", "\"phoneme_id_map\"", "\"espeak\"",
            "\"voice\"", "\"num_speakers\"", "\"speaker_id_map\"", "\"phoneme_type\"", "\"text\"", "22050", "-1",
            "1e99", "0", "\"^\"", "\"_\"", "\"$\"", "null"]),
        any::<String>(),
    ]) {
        let _ = demod_voice_core::piper::VoiceConfig::parse(&text, Path::new("voice.onnx.json"));
    }

    #[test]
    fn wav_files_of_any_bytes_read_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        std::fs::write(&path, &bytes).unwrap();
        let _ = demod_voice_core::wav::read_wav_mono(&path);
    }

    #[test]
    fn wav_headers_with_any_fields_read_or_fail_cleanly(
        format in prop::sample::select(vec![0u16, 1, 3, 0xfffe, 7]),
        channels in any::<u16>(),
        rate in any::<u32>(),
        bits in any::<u16>(),
        data in any::<u32>(),
        body in prop::collection::vec(any::<u8>(), 0..256),
        limit in prop::option::of(0.0f64..100.0),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.wav");
        let mut bytes = wav_header(format, channels, rate, bits, data);
        bytes.extend_from_slice(&body);
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(audio) = demod_voice_core::wav::read_wav_mono_capped(&path, limit) {
            prop_assert!(audio.samples.iter().all(|s| s.is_finite()));
            prop_assert!(audio.samples.len() <= body.len());
        }
    }

    #[test]
    fn phoneme_ids_map_any_phonemes(
        phonemes in prop::collection::vec(any::<String>(), 0..64),
        keys in prop::collection::vec((any::<String>(), prop::collection::vec(any::<i64>(), 0..3)), 0..16),
    ) {
        let map: BTreeMap<String, Vec<i64>> = keys.into_iter().collect();
        let (ids, _unknown) = demod_voice_core::piper::phonemes_to_ids(&phonemes, &map);
        // BOS first, EOS last, whatever came in.
        prop_assert!(ids.len() >= 2);
    }

    #[test]
    fn text_voices_phonemise_any_text_into_capped_sentences(text in any::<String>()) {
        let config = demod_voice_core::piper::VoiceConfig::parse(
            r#"{"audio":{"sample_rate":22050},"phoneme_type":"text","phoneme_id_map":{"^":[1],"_":[0],"$":[2],"a":[3]}}"#,
            Path::new("text.onnx.json"),
        ).unwrap();
        let long = text.repeat(1 + 2000 / (text.len() + 1));
        for input in [&text, &long] {
            let sentences = demod_voice_core::piper::phonemize(&config, None, input).unwrap();
            for sentence in &sentences {
                prop_assert!(sentence.phonemes.len() <= demod_voice_core::piper::MAX_SENTENCE_PHONEMES);
                let _ = demod_voice_core::piper::phonemes_to_ids(&sentence.phonemes, &config.phoneme_id_map);
            }
        }
    }
}
