//! The `dsp` converter on real speech from the default Piper voice: the output's median F0 lands within 25 cents
//! of the input's median times the requested ratio, and the speech stays aligned and as long as the input.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use demod_voice_core::analysis::pitch::{cents, median_f0, track};
use demod_voice_core::config::RealtimeSection;
use demod_voice_core::config::TtsSection;
use demod_voice_core::convert::dsp::{DspConverter, DspParams};
use demod_voice_core::onnx::SessionOptions;
use demod_voice_core::piper::{PiperVoice, SynthesisOptions};

/// Speech from the default voice with the noise scales at zero (the same every run), and its sample rate.
fn piper_speech(text: &str) -> (Vec<f32>, u32) {
    let runtime = common::runtime();
    let voice =
        PiperVoice::load(runtime, &common::default_voice_model(), Some(common::espeak()), &SessionOptions::default())
            .unwrap();
    let mut speech = Vec::new();
    let options = SynthesisOptions {
        tts: TtsSection { noise_scale: Some(0.0), noise_w: Some(0.0), ..Default::default() },
        ..Default::default()
    };
    voice
        .synthesize(text, &options, |audio| {
            speech.extend_from_slice(&audio.samples);
            Ok::<(), demod_voice_core::Error>(())
        })
        .unwrap();
    (speech, voice.sample_rate())
}

#[test]
fn dsp_shifts_piper_speech_to_the_requested_pitch() {
    let (speech, rate) = piper_speech(
        "A quiet morning settled over the valley. Farmers walked along the river, talking about rain and the harvest to come.",
    );
    let input_median = median_f0(&track(&speech, rate, rate as usize / 200)).unwrap();
    for semitones in [5.0f32, -4.0] {
        let params = Arc::new(DspParams::default());
        params.set_pitch_semitones(semitones);
        let out = demod_voice_core::realtime::convert_offline(
            &speech,
            rate,
            Box::new(DspConverter::new(params)),
            &RealtimeSection::default(),
        )
        .unwrap();
        assert_eq!(out.len(), speech.len());
        let measured = median_f0(&track(&out, rate, rate as usize / 200)).unwrap();
        let target = input_median * 2f32.powf(semitones / 12.0);
        let error = cents(measured, target);
        assert!(error.abs() <= 25.0, "{semitones:+} st: input median {input_median:.1} Hz, output {measured:.1} Hz, target {target:.1} Hz ({error:+.1} cents)");
    }
}

#[test]
fn dsp_moves_the_formants_of_piper_speech_by_the_requested_ratio() {
    use demod_voice_core::analysis::envelope::{formant_shift, EnvelopeAnalyzer};
    let (speech, rate) =
        piper_speech("Many happy hours were spent in the old garden, reading and dreaming by the water.");
    // The long-term envelope of voiced frames.
    let envelope = |signal: &[f32]| {
        let mut analyzer = EnvelopeAnalyzer::new(rate);
        let len = analyzer.frame_len();
        let voiced = track(signal, rate, len / 2);
        let mut end = len;
        let mut idx = 0;
        while end <= signal.len() {
            if voiced.get(idx).is_some_and(|p| p.f0.is_some()) {
                analyzer.add_frame(&signal[end - len..end]);
            }
            end += len / 2;
            idx += 1;
        }
        analyzer.envelope().unwrap()
    };
    let before = envelope(&speech);
    for ratio in [0.9f32, 1.15] {
        let params = Arc::new(DspParams::default());
        params.set_formant_ratio(ratio);
        let out = demod_voice_core::realtime::convert_offline(
            &speech,
            rate,
            Box::new(DspConverter::new(params)),
            &RealtimeSection::default(),
        )
        .unwrap();
        let shift = formant_shift(&before, &envelope(&out)).unwrap();
        assert!((shift / ratio - 1.0).abs() <= 0.05, "formant ratio {ratio}: measured {shift:.3}");
    }
}
