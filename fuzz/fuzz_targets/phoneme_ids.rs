#![no_main]
//! Any text through a text-phoneme voice: sentences within the phoneme cap, ids framed by BOS and EOS.

use libfuzzer_sys::fuzz_target;

const CONFIG: &str =
    r#"{"audio":{"sample_rate":22050},"phoneme_type":"text","phoneme_id_map":{"^":[1],"_":[0],"$":[2],"a":[3]}}"#;

fuzz_target!(|text: &str| {
    let config = demod_voice_core::piper::VoiceConfig::parse(CONFIG, std::path::Path::new("v.onnx.json"))
        .expect("the fixed config parses");
    if let Ok(sentences) = demod_voice_core::piper::phonemize(&config, None, text) {
        for sentence in sentences {
            assert!(sentence.phonemes.len() <= demod_voice_core::piper::MAX_SENTENCE_PHONEMES);
            let (ids, _) = demod_voice_core::piper::phonemes_to_ids(&sentence.phonemes, &config.phoneme_id_map);
            assert!(ids.len() >= 2);
        }
    }
});
