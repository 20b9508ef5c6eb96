//! Piper plumbing on tiny committed graphs (see `tests/data/make_tiny_models.py`) run by the real ONNX Runtime:
//! ids reach the model in order, scales and speaker ids arrive where they should, and models of the wrong shape
//! are refused with a message naming the file.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use demod_voice_core::config::TtsSection;
use demod_voice_core::onnx::SessionOptions;
use demod_voice_core::piper::{PiperVoice, Sentence, SynthesisOptions, VoiceConfig};

const CONFIG: &str = r#"{
    "audio": {"sample_rate": 16000},
    "phoneme_type": "text",
    "inference": {"noise_scale": 0.5, "length_scale": 1.0, "noise_w": 0.5},
    "num_speakers": NUM,
    "speaker_id_map": SPEAKERS,
    "phoneme_id_map": {"^": [1], "_": [0], "$": [2], "a": [5], "b": [6], " ": [3], ",": [4]}
}"#;

fn voice(model: &str, num_speakers: u32, speakers: &str) -> demod_voice_core::Result<PiperVoice> {
    let path = common::data(model);
    let bytes = std::fs::read(&path).unwrap();
    let text = CONFIG.replace("NUM", &num_speakers.to_string()).replace("SPEAKERS", speakers);
    let config = VoiceConfig::parse(&text, Path::new("tiny.onnx.json"))?;
    let session = common::runtime().session_from_memory(&path, &bytes, &SessionOptions::default())?;
    PiperVoice::from_session("tiny".into(), &path, config, session, None)
}

fn raw(voice: &PiperVoice, text: &str, options: &SynthesisOptions) -> Vec<f32> {
    let sentence = Sentence { text: text.into(), phonemes: text.chars().map(String::from).collect() };
    voice.infer(&voice.ids(&sentence), options).unwrap()
}

#[test]
fn ids_reach_the_model_in_piper_order() {
    let voice = voice("tiny_piper.onnx", 1, "{}").unwrap();
    let out = raw(&voice, "ab", &SynthesisOptions::default());
    assert_eq!(out, vec![1.0, 0.0, 5.0, 0.0, 6.0, 0.0, 2.0]);
}

/// Live playback may speak the first sentence's first clause on its own (sooner first audio): the model sees the
/// clause with its comma, then the rest; the sentence silence follows only the rest, and later sentences and files
/// (the option off) are whole.
#[test]
fn the_first_clause_is_spoken_on_its_own_only_when_asked() {
    let voice = voice("tiny_piper.onnx", 1, "{}").unwrap();
    let text = "aaaaaa, bbbbbb";
    let pieces = |options: &SynthesisOptions| {
        let mut pieces = Vec::new();
        let count = voice
            .synthesize(text, options, |audio| {
                pieces.push((audio.samples, audio.continues));
                Ok::<(), demod_voice_core::Error>(())
            })
            .unwrap();
        (count, pieces)
    };
    // Each sample is the id it came from (over 8, so nothing clips): no peak normalisation.
    let tts = TtsSection { sentence_silence: 0.001, normalize: false, volume: 1.0 / 8.0, ..Default::default() };
    let silence = SynthesisOptions { tts, ..Default::default() };
    let (count, whole) = pieces(&silence);
    assert_eq!((count, whole.len()), (1, 1));
    let early = SynthesisOptions { early_first_clause: true, ..silence.clone() };
    let (count, split) = pieces(&early);
    assert_eq!((count, split.len()), (1, 2), "one sentence, in two pieces");
    let ids =
        |samples: &[f32]| samples.iter().filter(|v| **v != 0.0).map(|v| (*v * 8.0).round() as i64).collect::<Vec<_>>();
    assert_eq!(ids(&split[0].0), [1, 5, 5, 5, 5, 5, 5, 4, 2], "the clause with its comma: {:?}", split[0].0);
    assert_eq!(ids(&split[1].0), [1, 6, 6, 6, 6, 6, 6, 2], "the rest, without the space: {:?}", split[1].0);
    assert!(split[0].1 && !split[1].1);
    // 16 samples of silence (1 ms at 16 kHz) after the sentence only, not after its first clause.
    assert!(split[0].0.ends_with(&[0.0, 0.25]) && split[1].0.ends_with(&[0.0; 16]));
    // A first clause too short to be worth it ("a,") is not split.
    let mut short = 0;
    voice
        .synthesize("a, bbbbbb", &early, |_| {
            short += 1;
            Ok::<(), demod_voice_core::Error>(())
        })
        .unwrap();
    assert_eq!(short, 1);
}

#[test]
fn length_scale_flag_overrides_the_voice_config() {
    let voice = voice("tiny_piper.onnx", 1, "{}").unwrap();
    let options =
        SynthesisOptions { tts: TtsSection { length_scale: Some(2.0), ..Default::default() }, ..Default::default() };
    assert_eq!(raw(&voice, "a", &options), vec![2.0, 0.0, 10.0, 0.0, 4.0]);
}

#[test]
fn speakers_are_chosen_by_name_or_id() {
    let voice = voice("tiny_piper_sid.onnx", 3, r#"{"ann": 0, "bob": 2}"#).unwrap();
    let bob = voice.speaker_id("bob").unwrap();
    let out = raw(&voice, "a", &SynthesisOptions { speaker_id: Some(bob), ..Default::default() });
    assert_eq!(out[0], 2001.0);
    let one = voice.speaker_id("1").unwrap();
    assert_eq!(raw(&voice, "a", &SynthesisOptions { speaker_id: Some(one), ..Default::default() })[0], 1001.0);
    let err = voice.speaker_id("carol").unwrap_err().to_string();
    assert!(err.contains("carol") && err.contains("bob=2"), "{err}");
    assert!(voice.speaker_id("3").is_err(), "ids past num_speakers are refused");
}

#[test]
fn sentence_silence_and_normalisation_shape_the_output() {
    let voice = voice("tiny_piper.onnx", 1, "{}").unwrap();
    let options = SynthesisOptions {
        tts: TtsSection { sentence_silence: 0.5, volume: 0.5, ..Default::default() },
        ..Default::default()
    };
    let mut chunks = Vec::new();
    voice
        .synthesize("ab", &options, |audio| {
            chunks.push(audio.samples);
            Ok::<(), demod_voice_core::Error>(())
        })
        .unwrap();
    assert_eq!(chunks.len(), 1);
    let samples = &chunks[0];
    assert_eq!(samples.len(), 7 + 8000, "7 model samples then 0.5 s of silence at 16 kHz");
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.5).abs() < 1e-6, "peak {peak} should equal the volume after normalisation");
    assert!(samples[7..].iter().all(|&s| s == 0.0));
}

#[test]
fn multi_speaker_config_on_a_model_without_sid_is_refused() {
    let err = voice("tiny_piper.onnx", 2, "{}").unwrap_err().to_string();
    assert!(err.contains("tiny_piper.onnx") && err.contains("sid"), "{err}");
}

#[test]
fn a_model_without_piper_inputs_is_refused_by_name() {
    let path = common::data("not_piper.onnx");
    let bytes = std::fs::read(&path).unwrap();
    let session = common::runtime().session_from_memory(&path, &bytes, &SessionOptions::default()).unwrap();
    let config =
        VoiceConfig::parse(&CONFIG.replace("NUM", "1").replace("SPEAKERS", "{}"), Path::new("x.json")).unwrap();
    let err = PiperVoice::from_session("x".into(), &path, config, session, None).unwrap_err().to_string();
    assert!(err.contains("not_piper.onnx") && err.contains("not a Piper VITS model"), "{err}");
}
