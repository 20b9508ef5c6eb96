//! Phoneme-id conformance with the reference implementation (`piper-tts`), on the committed fixture that
//! `tests/conformance/generate.py` produced from `tests/conformance/sentences.txt`.
//!
//! Known sources of difference (none occurs in the current fixture, which matches 100%):
//! - The espeak-ng inside `piper-tts` prints a linking glide `ʲ` that stock espeak-ng 1.52.0 keeps silent (upstream
//!   espeak-ng issue #2367). We re-insert it with a phonetic rule (`insert_linking_glides`); espeak decides it from
//!   its internal phoneme identities, so on other text the rule is sometimes wrong.
//! - Dictionary entries changed between the two espeak-ng data versions (e.g. "has been").

#![allow(clippy::unwrap_used)]

mod common;

use demod_voice_core::piper::{phonemes_to_ids, phonemize, VoiceConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    sentences: Vec<Expected>,
}

#[derive(Deserialize, PartialEq, Debug)]
struct Expected {
    phonemes: String,
    phoneme_ids: Vec<i64>,
}

/// Differences that are allowed, each with its reason. Empty: every fixture sentence must match.
const EXPLAINED: &[(&str, &str)] = &[];

#[test]
fn phoneme_ids_match_piper_for_at_least_98_percent_of_fixture_sentences() {
    let fixture: Fixture =
        serde_json::from_str(&std::fs::read_to_string(common::repo("tests/conformance/fixture.json")).unwrap())
            .unwrap();
    assert!(fixture.cases.len() >= 60, "the fixture must hold at least 60 sentences");
    let model = common::default_voice_model();
    let config = VoiceConfig::load(&VoiceConfig::path_for_model(&model)).unwrap();
    let espeak = common::espeak();
    let mut mismatches = Vec::new();
    for case in &fixture.cases {
        let ours: Vec<Expected> = phonemize(&config, Some(espeak), &case.text)
            .unwrap()
            .iter()
            .map(|s| Expected {
                phonemes: s.phoneme_string(),
                phoneme_ids: phonemes_to_ids(&s.phonemes, &config.phoneme_id_map).0,
            })
            .collect();
        if ours != case.sentences {
            mismatches.push(format!("{:?}\n  piper: {:?}\n  ours:  {:?}", case.text, case.sentences, ours));
        }
    }
    let unexplained: Vec<&String> =
        mismatches.iter().filter(|m| !EXPLAINED.iter().any(|(text, _)| m.starts_with(&format!("{text:?}")))).collect();
    let matched = fixture.cases.len() - mismatches.len();
    let rate = matched as f64 / fixture.cases.len() as f64;
    assert!(
        rate >= 0.98 && unexplained.is_empty(),
        "{matched}/{} sentences match ({:.1}%); unexplained differences:\n{}",
        fixture.cases.len(),
        rate * 100.0,
        unexplained.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}
