//! Phoneme-id conformance with the reference implementation (`piper-tts`), on the committed fixture that
//! `tests/conformance/generate.py` produced from `tests/conformance/sentences.txt`, and per language on
//! `tests/conformance/languages/` (de, fr, es, it, pt-br, nl, ru, cmn). espeak-ng's data is Piper's own (from the
//! piper-tts wheel); the library is stock 1.52.0, whose printing differences are respelled per language
//! (`core/src/piper/language_rules.rs`).
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

#[derive(Deserialize)]
struct LanguagesFixture {
    languages: std::collections::BTreeMap<String, Vec<LanguageCase>>,
}

#[derive(Deserialize)]
struct LanguageCase {
    text: String,
    sentences: Vec<String>,
}

/// Language-fixture differences that are understood and left: (text, why). A language below 98% passes only when
/// every one of its differences is listed here; anything else fails.
const LANGUAGE_EXPLAINED: &[(&str, &str)] = &[];

/// The languages the catalogue's voices speak through espeak-ng, each against `piper-tts` on its own sentences
/// (`tests/conformance/languages/generate.py`). Phoneme ids use the default voice's map, which Piper's espeak
/// voices share; a phoneme that map lacks would show here as a missing id.
#[test]
fn every_fixture_language_phonemises_as_piper_does_for_at_least_98_percent_of_sentences() {
    let fixture: LanguagesFixture = serde_json::from_str(
        &std::fs::read_to_string(common::repo("tests/conformance/languages/fixture.json")).unwrap(),
    )
    .unwrap();
    for wanted in ["de", "fr", "es", "it", "pt-br", "nl", "ru", "cmn"] {
        let cases = fixture.languages.get(wanted).map_or(0, Vec::len);
        assert!(cases >= 10, "{wanted}: the fixture must hold at least 10 sentences, has {cases}");
    }
    let model = common::default_voice_model();
    let base = VoiceConfig::load(&VoiceConfig::path_for_model(&model)).unwrap();
    let espeak = common::espeak();
    let mut report = Vec::new();
    let mut failed = false;
    for (voice, cases) in &fixture.languages {
        let mut config = base.clone();
        config.espeak.as_mut().unwrap().voice = voice.clone();
        let mut differences = Vec::new();
        for case in cases {
            // Piper gives an empty last sentence for a closing quote after the final stop; it has no phonemes to
            // speak and demod-voice does not emit it.
            let expected: Vec<String> = case.sentences.iter().filter(|p| !p.is_empty()).cloned().collect();
            let sentences = phonemize(&config, Some(espeak), &case.text).unwrap();
            let ours: Vec<String> = sentences.iter().map(|s| s.phoneme_string()).collect();
            let expected_ids: Vec<Vec<i64>> = expected
                .iter()
                .map(|p| {
                    let phonemes: Vec<String> = p.chars().map(String::from).collect();
                    phonemes_to_ids(&phonemes, &config.phoneme_id_map).0
                })
                .collect();
            let our_ids: Vec<Vec<i64>> =
                sentences.iter().map(|s| phonemes_to_ids(&s.phonemes, &config.phoneme_id_map).0).collect();
            if ours != expected || our_ids != expected_ids {
                differences.push(format!("  {:?}\n    piper: {:?}\n    ours:  {:?}", case.text, expected, ours));
            }
        }
        let rate = 1.0 - differences.len() as f64 / cases.len() as f64;
        let all_explained = differences
            .iter()
            .all(|d| LANGUAGE_EXPLAINED.iter().any(|(text, _)| d.starts_with(&format!("  {text:?}"))));
        failed |= !all_explained;
        report.push(format!(
            "{voice}: {}/{} match ({:.0}%)",
            cases.len() - differences.len(),
            cases.len(),
            rate * 100.0
        ));
        report.extend(differences);
    }
    assert!(!failed, "a language has unexplained differences:\n{}", report.join("\n"));
    eprintln!("{}", report.join("\n"));
}
