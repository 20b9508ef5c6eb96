//! The speaker encoder against the wheel's own code: embeddings of committed clips made by
//! `tests/encoder/generate.py` (librosa front-end, the same ONNX model) must be matched by the Rust front-end.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use demod_voice_core::onnx::SessionOptions;
use demod_voice_core::speaker::{Embedding, SpeakerEncoder, SAME_SPEAKER_THRESHOLD};

fn encoder() -> SpeakerEncoder {
    let dirs = common::dirs();
    SpeakerEncoder::load(common::runtime(), &dirs.encoder_path(), &SessionOptions::default()).unwrap()
}

fn clip(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices").join(name)
}

#[test]
fn rust_embeddings_equal_the_reference_implementations() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/encoder/reference.json"))
            .unwrap(),
    )
    .unwrap();
    let encoder = encoder();
    let clips = reference["clips"].as_object().unwrap();
    assert_eq!(clips.len(), 3);
    let mut scores = Vec::new();
    for (name, values) in clips {
        let expected = Embedding::new(values.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect());
        let actual = encoder.embed_file(&clip(name)).unwrap();
        scores.push((name.clone(), actual.cosine(&expected)));
    }
    assert!(scores.iter().all(|(_, c)| *c >= 0.999), "cosine with the reference embeddings: {scores:?}");
}

#[test]
fn one_speaker_scores_above_the_threshold_and_two_below() {
    let encoder = encoder();
    let (samples, rate) = demod_voice_core::wav::read_wav_mono(&clip("librivox_male_two_cities.wav")).unwrap();
    let half = samples.len() / 2;
    let first = encoder.embed(&samples[..half], rate).unwrap();
    let second = encoder.embed(&samples[half..], rate).unwrap();
    let other = encoder.embed_file(&clip("arctic_slt_female.wav")).unwrap();
    let same = first.cosine(&second);
    let different = first.cosine(&other);
    assert!(same > SAME_SPEAKER_THRESHOLD, "two halves of one recording: {same:.3}");
    assert!(different < SAME_SPEAKER_THRESHOLD, "two speakers: {different:.3}");
}

/// The live monitor: output pushed through the tap (as the audio callback does) is scored about once a second
/// against the target; the same speaker scores above the threshold, another speaker below it.
#[test]
fn the_rolling_monitor_scores_live_output_against_the_target() {
    use demod_voice_core::monitor::{tap, SimilarityMonitor};
    let (samples, rate) = demod_voice_core::wav::read_wav_mono(&clip("jfk_male.wav")).unwrap();
    let (other, other_rate) = demod_voice_core::wav::read_wav_mono(&clip("june_fr_female.wav")).unwrap();
    let target = encoder().embed(&samples, rate).unwrap();
    let score_of = |audio: &[f32], audio_rate: u32| {
        let (mut push, pull) = tap(audio_rate);
        let wanted = std::sync::Arc::new(std::sync::Mutex::new(Some(target.clone())));
        let monitor = SimilarityMonitor::spawn(pull, audio_rate, wanted, encoder()).unwrap();
        assert_eq!(monitor.score(), None, "nothing scored before audio arrives");
        // Blocks of 512 at four times real time (the ring never fills).
        for block in audio.chunks(512).take(audio_rate as usize * 4 / 512) {
            push.push(block);
            std::thread::sleep(std::time::Duration::from_secs_f64(512.0 / f64::from(audio_rate) / 4.0));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while monitor.score().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        monitor.score().expect("a score within seconds")
    };
    let same = score_of(&samples, rate);
    let different = score_of(&other, other_rate);
    assert!(same > SAME_SPEAKER_THRESHOLD, "same speaker {same}");
    assert!(different < SAME_SPEAKER_THRESHOLD && different < same, "other speaker {different} vs {same}");
}

/// Nearest speaker, on a tiny four-speaker "voice" whose speakers are tones (110, 220, 330 and 440 Hz): a reference
/// made by one speaker finds that speaker, and the embeddings are cached per voice.
/// (No real multi-speaker Piper voice can be installed here; the search is the same for one.)
#[test]
fn the_nearest_speaker_of_a_multi_speaker_voice_is_found_and_cached() {
    use demod_voice_core::piper::{PiperVoice, SynthesisOptions, VoiceConfig};
    let model = common::data("tiny_tone_sid.onnx");
    let config = VoiceConfig::load(&VoiceConfig::path_for_model(&model)).unwrap();
    let bytes = std::fs::read(&model).unwrap();
    let session = common::runtime().session_from_memory(&model, &bytes, &SessionOptions::default()).unwrap();
    let voice = PiperVoice::from_session("tiny-tones".into(), &model, config, session, None).unwrap();
    let encoder = encoder();
    let cache = tempfile::tempdir().unwrap();
    // The reference: speaker "high" saying something else.
    let mut reference = Vec::new();
    let options = SynthesisOptions { speaker_id: Some(2), ..Default::default() };
    voice
        .synthesize("a tie to the oat hat at the tea", &options, |audio| -> demod_voice_core::Result<()> {
            reference.extend_from_slice(&audio.samples);
            Ok(())
        })
        .unwrap();
    let target = encoder.embed(&reference, voice.sample_rate()).unwrap();
    let mut steps = Vec::new();
    let found = demod_voice_core::speakers::nearest(
        &voice,
        &SynthesisOptions::default(),
        &encoder,
        cache.path(),
        &target,
        &mut |done, total| steps.push((done, total)),
    )
    .unwrap()
    .unwrap();
    assert_eq!(found.speaker, "high", "{found:?}");
    assert_eq!((found.compared, found.cached), (4, false));
    assert_eq!(steps.last(), Some(&(4, 4)));
    let again = demod_voice_core::speakers::nearest(
        &voice,
        &SynthesisOptions::default(),
        &encoder,
        cache.path(),
        &target,
        &mut |_, _| panic!("cached: nothing is synthesised"),
    )
    .unwrap()
    .unwrap();
    assert_eq!((again.speaker.as_str(), again.cached), ("high", true));
    assert!((again.similarity - found.similarity).abs() < 1e-6);
}
