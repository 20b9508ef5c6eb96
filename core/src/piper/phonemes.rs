//! Text -> phonemes -> ids, following Piper's rules (see DESIGN.md, "Reference facts").
//!
//! Everything here is pure except [`phonemize`], which asks espeak-ng for each clause's phonemes.

use super::language_rules::{glides_for, respell, respelling_for, Glides, Respelling};
use std::collections::{BTreeMap, HashSet};

use unicode_normalization::UnicodeNormalization;

use super::config::{PhonemeType, VoiceConfig};
use crate::error::{Error, Result};
use crate::espeak::{Clause, Espeak};

/// Beginning of sentence, padding and end of sentence symbols of Piper's id map.
pub const BOS: &str = "^";
/// The padding id's phoneme, after BOS and after every phoneme.
pub const PAD: &str = "_";
/// The end-of-sentence phoneme.
pub const EOS: &str = "$";

/// The most phonemes one model call gets. A longer sentence (a paragraph joined by commas, a 20,000-letter
/// word, a text-phoneme voice given a book) is split at the best boundary below the cap, so a call's memory is
/// bounded by the cap, not by the input. Piper's own sentences are far shorter, so ordinary text is unaffected.
pub const MAX_SENTENCE_PHONEMES: usize = 400;

/// One sentence ready to synthesise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sentence {
    /// The source text of the sentence (trimmed).
    pub text: String,
    /// One entry per phoneme: a codepoint after NFD, or a merged vowel cluster.
    pub phonemes: Vec<String>,
}

impl Sentence {
    /// The phonemes joined into one string, as `phonemize` prints them.
    pub fn phoneme_string(&self) -> String {
        self.phonemes.concat()
    }
}

/// Turn `text` into sentences of phonemes for `config`'s voice. `espeak` is needed for espeak voices only.
///
/// `[[ ... ]]` blocks are taken as raw phonemes, as Piper does.
pub fn phonemize(config: &VoiceConfig, espeak: Option<&Espeak>, text: &str) -> Result<Vec<Sentence>> {
    let mut sentences = match config.phoneme_type {
        PhonemeType::Text => {
            vec![Sentence { text: text.trim().to_string(), phonemes: text.nfd().map(String::from).collect() }]
        }
        PhonemeType::Espeak => {
            let voice = config.espeak_voice().unwrap_or("en-us");
            let espeak = espeak.ok_or_else(|| Error::InvalidText {
                reason: "espeak-ng is needed for this voice but was not loaded".into(),
            })?;
            phonemize_espeak(espeak, voice, text)?
        }
        other => {
            return Err(Error::VoiceConfigField {
                path: "voice config".into(),
                field: "phoneme_type".into(),
                problem: format!("is `{other:?}`, which demod-voice cannot phonemise yet (supported: espeak, text)")
                    .to_lowercase(),
            })
        }
    };
    let clusters: HashSet<Vec<String>> = config.vowel_clusters.iter().cloned().collect();
    for sentence in &mut sentences {
        sentence.phonemes = apply_phoneme_map(std::mem::take(&mut sentence.phonemes), &config.phoneme_map);
        if !clusters.is_empty() {
            sentence.phonemes = merge_vowel_clusters(std::mem::take(&mut sentence.phonemes), &clusters);
        }
    }
    sentences.retain(|s| !s.phonemes.is_empty());
    Ok(sentences.into_iter().flat_map(|s| split_overlong(s, MAX_SENTENCE_PHONEMES)).collect())
}

/// Cut a sentence of more than `cap` phonemes into pieces of at most `cap`: after the last clause mark (`,` `;`
/// `:`, then `.` `?` `!`) in the second half of the window, else at the last space there, else at the cap. Every
/// piece keeps the sentence's text (the source cannot be cut at the same places reliably).
pub fn split_overlong(sentence: Sentence, cap: usize) -> Vec<Sentence> {
    let cap = cap.max(2);
    if sentence.phonemes.len() <= cap {
        return vec![sentence];
    }
    let mut pieces = Vec::new();
    let mut rest: &[String] = &sentence.phonemes;
    while rest.len() > cap {
        let window = &rest[..cap];
        let after_last = |marks: &[&str]| {
            window.iter().rposition(|p| marks.contains(&p.as_str())).map(|i| i + 1).filter(|&cut| cut > cap / 2)
        };
        let cut = after_last(&[",", ";", ":"])
            .or_else(|| after_last(&[".", "?", "!"]))
            .or_else(|| after_last(&[" "]))
            .unwrap_or(cap);
        pieces.push(Sentence { text: sentence.text.clone(), phonemes: window[..cut].to_vec() });
        rest = &rest[cut..];
        while rest.first().is_some_and(|p| p == " ") {
            rest = &rest[1..];
        }
    }
    if !rest.is_empty() {
        pieces.push(Sentence { text: sentence.text.clone(), phonemes: rest.to_vec() });
    }
    pieces
}

fn phonemize_espeak(espeak: &Espeak, voice: &str, text: &str) -> Result<Vec<Sentence>> {
    // Mirrors Piper: a raw block joins the last sentence so far, and the first sentence of text that follows a
    // raw block joins it too.
    let mut sentences: Vec<Sentence> = Vec::new();
    let mut prev_raw = false;
    for part in split_raw_blocks(text) {
        match part {
            Part::Raw { phonemes, space_before, space_after } => {
                if sentences.is_empty() {
                    sentences.push(Sentence::default());
                }
                let last = sentences.last_mut().expect("pushed above when empty");
                if space_before {
                    last.phonemes.push(" ".into());
                }
                last.phonemes.extend(phonemes.nfd().map(String::from));
                if space_after {
                    last.phonemes.push(" ".into());
                }
                last.text = format!("{} [[{phonemes}]]", last.text).trim().to_string();
                prev_raw = true;
            }
            Part::Text(part_text) => {
                let mut produced = sentences_from_clauses(
                    &espeak.clauses(voice, part_text)?,
                    glides_for(voice),
                    respelling_for(voice),
                )
                .into_iter();
                if prev_raw {
                    if let (Some(first), Some(last)) = (produced.next(), sentences.last_mut()) {
                        last.phonemes.extend(first.phonemes);
                        last.text = format!("{} {}", last.text, first.text).trim().to_string();
                    }
                }
                sentences.extend(produced);
                prev_raw = false;
            }
        }
    }
    Ok(sentences)
}

fn finish(mut sentence: Sentence) -> Sentence {
    sentence.text = sentence.text.trim().to_string();
    sentence
}

/// Split long text into pieces that phonemise exactly as the whole would: at blank lines (espeak ends a sentence
/// there anyway), and inside a paragraph longer than `max_bytes` only after `.`, `?` or `!` followed by a space
/// and a capital letter. Bounds the memory and the wait before the first sentence of a long text.
pub fn text_chunks(text: &str, max_bytes: usize) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut idx = 0;
    let mut last_sentence_end = None;
    while idx < bytes.len() {
        // Byte tests only: `idx` may sit inside a multi-byte character, and every cut lands after ASCII.
        let rest = &bytes[idx..];
        if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\n\r\n") {
            let skip = if rest.starts_with(b"\n\n") { 2 } else { 4 };
            chunks.push(&text[start..idx + skip]);
            idx += skip;
            start = idx;
            last_sentence_end = None;
            continue;
        }
        if matches!(bytes[idx], b'.' | b'?' | b'!')
            && bytes.get(idx + 1) == Some(&b' ')
            && bytes.get(idx + 2).is_some_and(|b| b.is_ascii_uppercase())
        {
            last_sentence_end = Some(idx + 2);
        }
        if idx.saturating_sub(start) >= max_bytes {
            if let Some(cut) = last_sentence_end.take() {
                chunks.push(&text[start..cut]);
                start = cut;
            }
        }
        idx += 1;
    }
    if start < text.len() {
        chunks.push(&text[start..]);
    }
    chunks.retain(|c| !c.trim().is_empty());
    chunks
}

/// Group clauses into sentences exactly as Piper does: strip language-switch marks, append the terminator (and a
/// space after `,` `:` `;`), NFD-decompose, and close the sentence at `.`, `?` or `!`.
pub fn sentences_from_clauses(clauses: &[Clause], glides: Glides, respelling: Respelling) -> Vec<Sentence> {
    let mut sentences = Vec::new();
    let mut current = Sentence::default();
    for clause in clauses {
        let mut phonemes = glides.apply(&respell(&strip_language_switches(&clause.phonemes), respelling), &clause.text);
        let terminator = clause.terminator;
        phonemes.push_str(terminator.as_str());
        if matches!(terminator.as_str(), "," | ":" | ";") {
            phonemes.push(' ');
        }
        let clause_phonemes: Vec<String> = phonemes.nfd().map(String::from).collect();
        // A sentence that would pass the cap ends at this clause boundary instead (text and phonemes cut together).
        if !current.phonemes.is_empty() && current.phonemes.len() + clause_phonemes.len() > MAX_SENTENCE_PHONEMES {
            sentences.push(finish(std::mem::take(&mut current)));
        }
        current.phonemes.extend(clause_phonemes);
        current.text.push_str(&clause.text);
        if terminator.ends_sentence() {
            sentences.push(finish(std::mem::take(&mut current)));
        }
    }
    if !current.phonemes.is_empty() {
        sentences.push(finish(current));
    }
    sentences
}

/// Remove espeak's language-switch marks such as `(en)` or `(fr)`: any parenthesised run.
pub fn strip_language_switches(phonemes: &str) -> String {
    let mut out = String::with_capacity(phonemes.len());
    let mut rest = phonemes;
    while let Some(open) = rest.find('(') {
        match rest[open + 1..].find(')') {
            // Piper's pattern `\([^)]+\)` needs at least one character inside.
            Some(close) if close > 0 => {
                out.push_str(&rest[..open]);
                rest = &rest[open + 1 + close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

enum Part<'a> {
    Text(&'a str),
    Raw { phonemes: &'a str, space_before: bool, space_after: bool },
}

fn split_raw_blocks(text: &str) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("[[") {
        let Some(close_rel) = rest[open + 2..].find("]]") else {
            break;
        };
        let before = &rest[..open];
        let inner = &rest[open + 2..open + 2 + close_rel];
        let after = &rest[open + 2 + close_rel + 2..];
        if !before.is_empty() {
            parts.push(Part::Text(before));
        }
        parts.push(Part::Raw {
            phonemes: inner.trim(),
            space_before: before.ends_with(' '),
            space_after: after.starts_with(' '),
        });
        rest = after;
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    parts
}

/// Replace phonemes per the voice's `phoneme_map` (one phoneme may become several).
pub fn apply_phoneme_map(phonemes: Vec<String>, map: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    if map.is_empty() {
        return phonemes;
    }
    let mut out = Vec::with_capacity(phonemes.len());
    for phoneme in phonemes {
        match map.get(&phoneme) {
            Some(replacement) => out.extend(replacement.iter().cloned()),
            None => out.push(phoneme),
        }
    }
    out
}

/// Merge runs of phonemes listed in `clusters` into one phoneme, longest match first.
pub fn merge_vowel_clusters(phonemes: Vec<String>, clusters: &HashSet<Vec<String>>) -> Vec<String> {
    let max_len = clusters.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::with_capacity(phonemes.len());
    let mut idx = 0;
    while idx < phonemes.len() {
        let longest =
            (2..=max_len.min(phonemes.len() - idx)).rev().find(|&n| clusters.contains(&phonemes[idx..idx + n]));
        match longest {
            Some(n) => {
                out.push(phonemes[idx..idx + n].concat());
                idx += n;
            }
            None => {
                out.push(phonemes[idx].clone());
                idx += 1;
            }
        }
    }
    out
}

/// Phonemes that were not in the id map and so were skipped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unknown(pub Vec<String>);

/// Piper ids: `^ _ p1 _ p2 _ ... pn _ $`. Every id of a phoneme's list is emitted; phonemes missing from the map
/// are skipped and returned so the caller can warn.
pub fn phonemes_to_ids(phonemes: &[String], id_map: &BTreeMap<String, Vec<i64>>) -> (Vec<i64>, Unknown) {
    let mut ids = Vec::with_capacity(phonemes.len() * 2 + 3);
    let mut unknown = Unknown::default();
    let pad = id_map.get(PAD).map(Vec::as_slice).unwrap_or(&[0]);
    ids.extend(id_map.get(BOS).map(Vec::as_slice).unwrap_or(&[1]));
    ids.extend(pad);
    for phoneme in phonemes {
        match id_map.get(phoneme) {
            Some(phoneme_ids) => {
                ids.extend(phoneme_ids);
                ids.extend(pad);
            }
            None => {
                if !unknown.0.contains(phoneme) {
                    unknown.0.push(phoneme.clone());
                }
            }
        }
    }
    ids.extend(id_map.get(EOS).map(Vec::as_slice).unwrap_or(&[2]));
    (ids, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::espeak::Terminator;

    fn id_map() -> BTreeMap<String, Vec<i64>> {
        [("^", vec![1]), ("_", vec![0]), ("$", vec![2]), ("a", vec![5]), ("b", vec![6, 7])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ids_pad_after_bos_and_every_phoneme_but_not_eos() {
        let (ids, unknown) = phonemes_to_ids(&strings(&["a", "b"]), &id_map());
        assert_eq!(ids, vec![1, 0, 5, 0, 6, 7, 0, 2]);
        assert!(unknown.0.is_empty());
    }

    #[test]
    fn unknown_phonemes_are_skipped_and_reported_once() {
        let (ids, unknown) = phonemes_to_ids(&strings(&["a", "ʘ", "ʘ"]), &id_map());
        assert_eq!(ids, vec![1, 0, 5, 0, 2]);
        assert_eq!(unknown.0, strings(&["ʘ"]));
    }

    #[test]
    fn long_text_splits_only_at_paragraphs_and_clear_sentence_ends() {
        let text = "One. Two e.g. three.\n\nFour. Five. Six.";
        assert_eq!(text_chunks(text, 1000), vec!["One. Two e.g. three.\n\n", "Four. Five. Six."]);
        assert_eq!(text_chunks(text, 3), vec!["One. ", "Two e.g. three.\n\n", "Four. ", "Five. ", "Six."]);
        assert_eq!(text_chunks(text, 3).concat(), text);
    }

    #[test]
    fn language_switch_marks_are_removed() {
        assert_eq!(strip_language_switches("hˈɛloʊ (fr)bɔ̃ʒuʁ(en) wˈɜːld"), "hˈɛloʊ bɔ̃ʒuʁ wˈɜːld");
        assert_eq!(strip_language_switches("a()b"), "a()b");
    }

    fn clause(phonemes: &str, terminator: Terminator, text: &str) -> Clause {
        Clause { phonemes: phonemes.into(), terminator, text: text.into() }
    }

    #[test]
    fn clauses_group_into_sentences_with_punctuation() {
        let clauses = vec![
            clause("həlˈoʊ", Terminator::Comma, "Hello, "),
            clause("wˈɜːld", Terminator::Period, "world. "),
            clause("ˈoʊkeɪ", Terminator::Question, "Okay?"),
        ];
        let sentences = sentences_from_clauses(&clauses, Glides::AfterI, Respelling::AsIs);
        assert_eq!(sentences.len(), 2);
        assert_eq!(sentences[0].phoneme_string(), "həlˈoʊ, wˈɜːld.");
        assert_eq!(sentences[0].text, "Hello, world.");
        assert_eq!(sentences[1].phoneme_string(), "ˈoʊkeɪ?");
    }

    #[test]
    fn nfd_splits_combining_marks_into_their_own_phonemes() {
        let clauses = vec![clause("ɔ̃", Terminator::None, "on")];
        let sentences = sentences_from_clauses(&clauses, Glides::AfterI, Respelling::AsIs);
        assert_eq!(sentences[0].phonemes, strings(&["ɔ", "\u{303}"]));
    }

    #[test]
    fn vowel_clusters_merge_longest_first() {
        let clusters: HashSet<Vec<String>> = [strings(&["a", "ɪ"]), strings(&["a", "ɪ", "ə"])].into_iter().collect();
        let merged = merge_vowel_clusters(strings(&["a", "ɪ", "ə", "a", "ɪ", "x"]), &clusters);
        assert_eq!(merged, strings(&["aɪə", "aɪ", "x"]));
    }

    #[test]
    fn phoneme_map_replaces_one_with_many() {
        let map: BTreeMap<String, Vec<String>> = [("r".to_string(), strings(&["ɹ", "ː"]))].into_iter().collect();
        assert_eq!(apply_phoneme_map(strings(&["a", "r"]), &map), strings(&["a", "ɹ", "ː"]));
    }

    #[test]
    fn a_comma_paragraph_ends_sentences_at_clause_boundaries_under_the_cap() {
        let clauses: Vec<Clause> =
            (0..300).map(|i| clause("wˈʌn tˈuː θɹˈiː", Terminator::Comma, &format!("one two three {i},"))).collect();
        let sentences = sentences_from_clauses(&clauses, Glides::AfterI, Respelling::AsIs);
        assert!(sentences.len() > 10, "{}", sentences.len());
        assert!(sentences.iter().all(|s| s.phonemes.len() <= MAX_SENTENCE_PHONEMES));
        // Every piece ends after a comma, and the text is cut with it: nothing lost, nothing repeated.
        assert!(sentences[..sentences.len() - 1].iter().all(|s| s.phonemes.concat().trim_end().ends_with(',')));
        let phonemes: usize = sentences.iter().map(|s| s.phonemes.len()).sum();
        let expected: usize =
            sentences_from_clauses(&clauses[..1], Glides::AfterI, Respelling::AsIs)[0].phonemes.len() * 300;
        assert_eq!(phonemes, expected);
        assert!(sentences[1].text.starts_with("one two three"), "{}", sentences[1].text);
    }

    #[test]
    fn an_overlong_piece_is_cut_at_a_clause_mark_then_a_space_then_the_cap() {
        let sentence = |s: &str| Sentence { text: "t".into(), phonemes: s.chars().map(String::from).collect() };
        let pieces = split_overlong(sentence("aaaa, bbbb cc"), 8);
        assert_eq!(pieces.iter().map(Sentence::phoneme_string).collect::<Vec<_>>(), ["aaaa,", "bbbb cc"]);
        let pieces = split_overlong(sentence("aaaaa bbbbbbbb"), 8);
        assert_eq!(pieces.iter().map(Sentence::phoneme_string).collect::<Vec<_>>(), ["aaaaa ", "bbbbbbbb"]);
        let word = "x".repeat(20_000);
        let pieces = split_overlong(sentence(&word), MAX_SENTENCE_PHONEMES);
        assert_eq!(pieces.len(), 50);
        assert!(pieces.iter().all(|p| p.phonemes.len() == MAX_SENTENCE_PHONEMES && p.text == "t"));
        assert_eq!(split_overlong(sentence("short"), 8).len(), 1);
    }
}
