//! The tone colour converter on the real-time engine, on the tiny converter graph with OpenVoice's signature
//! (`tests/models/make_neural_fixtures.py`): the tones and tau reach the model, a wrong graph is refused, and the
//! streamed output equals converting the whole signal at once away from the first and last blocks.

#![allow(clippy::unwrap_used)]

mod common;

use demod_voice_core::convert::spectrogram::HOP;
use demod_voice_core::convert::tone::{ToneColorConverter, LOOKAHEAD};
use demod_voice_core::convert::Converter;
use demod_voice_core::onnx::SessionOptions;

fn converter(tau: f32) -> ToneColorConverter {
    ToneColorConverter::load(
        common::runtime(),
        &common::data("neural/tone_converter.onnx"),
        vec![0.0; 256],
        vec![1.0; 256],
        tau,
        &SessionOptions::default(),
    )
    .unwrap()
}

fn signal() -> Vec<f32> {
    (0..22050 * 3)
        .map(|i| {
            let t = i as f32 / 22050.0;
            (2.0 * std::f32::consts::PI * 180.0 * t).sin() * (0.3 + 0.2 * (2.0 * std::f32::consts::PI * 1.5 * t).sin())
        })
        .collect()
}

#[test]
fn the_tones_and_tau_reach_the_model_and_wrong_graphs_are_refused() {
    let input = signal();
    let plain = converter(0.0).convert(&input).unwrap();
    let moved = converter(0.3).convert(&input).unwrap();
    assert_eq!(plain.len(), input.len());
    let (a, b) = (plain[22050], moved[22050]);
    assert!(a > 0.0 && (b / a - 1.3).abs() < 1e-4, "tau 0.3 with tones 0 -> 1 scales by 1.3: {a} {b}");
    let err = ToneColorConverter::load(
        common::runtime(),
        &common::data("neural/rvc_okada.onnx"),
        vec![0.0; 256],
        vec![1.0; 256],
        0.3,
        &SessionOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a tone colour converter"), "{err}");
    let err = ToneColorConverter::load(
        common::runtime(),
        &common::data("neural/tone_converter.onnx"),
        vec![0.0; 10],
        vec![1.0; 256],
        0.3,
        &SessionOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("256 finite"), "{err}");
}

#[test]
fn streamed_through_the_engine_it_equals_the_whole_signal_converted_at_once() {
    let input = signal();
    let whole = converter(0.3).convert(&input).unwrap();
    // Hop and context in whole frames of the model (256 samples at 22050 Hz), so blocks share its frame grid.
    let section = demod_voice_core::config::RealtimeSection {
        hop_ms: (4 * HOP) as f32 * 1000.0 / 22050.0,
        crossfade_ms: 2.0,
        context_ms: (8 * HOP) as f32 * 1000.0 / 22050.0,
        ..Default::default()
    };
    let conv = converter(0.3);
    assert_eq!(conv.latency(), LOOKAHEAD);
    let streamed = demod_voice_core::realtime::convert_offline(&input, 22050, Box::new(conv), &section).unwrap();
    assert_eq!(streamed.len(), input.len());
    let (from, to) = (22050 / 2, input.len() - 22050 / 2);
    let worst = streamed[from..to].iter().zip(&whole[from..to]).map(|(s, w)| (s - w).abs()).fold(0.0f32, f32::max);
    let peak = whole[from..to].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    // Exact up to rounding on a shared grid (a 10 ms hop, off the grid, differs by about 4% of the peak).
    assert!(worst <= peak * 1e-4, "streamed differs from whole by {worst} (peak {peak})");
}

/// Live, the source tone is the input's own: the input passes through (aligned) until the helper thread has
/// measured [`LIVE_FIRST_SECONDS`] of sound (a leading silence does not count), then the model converts with the
/// measured tone: the output equals the whole signal converted with that tone.
#[test]
fn live_the_input_passes_through_until_its_own_tone_is_measured_then_converts_with_it() {
    use demod_voice_core::convert::tone::{LiveToneConverter, ToneExtractor, LIVE_FIRST_SECONDS};
    use demod_voice_core::realtime::{RtConfig, RtEngine};
    let rate = 22050usize;
    let steady: Vec<f32> =
        (0..rate * 6).map(|i| 0.4 * (2.0 * std::f32::consts::PI * 180.0 * i as f32 / rate as f32).sin()).collect();
    let input: Vec<f32> = std::iter::repeat_n(0.0, rate).chain(steady.iter().copied()).collect();
    let extractor = || {
        ToneExtractor::load(common::runtime(), &common::data("neural/tone_extractor.onnx"), &SessionOptions::default())
            .unwrap()
    };
    // A target tone far from the input's, so the measured source tone shows in the fixture's output gain.
    let toward = |source: Vec<f32>| {
        ToneColorConverter::load(
            common::runtime(),
            &common::data("neural/tone_converter.onnx"),
            source,
            vec![5.0; 256],
            0.3,
            &SessionOptions::default(),
        )
        .unwrap()
    };
    let live = LiveToneConverter::new(toward(vec![5.0; 256]), extractor()).unwrap();
    assert!(!live.measured());
    let section = demod_voice_core::config::RealtimeSection {
        hop_ms: (4 * HOP) as f32 * 1000.0 / 22050.0,
        crossfade_ms: 2.0,
        context_ms: (8 * HOP) as f32 * 1000.0 / 22050.0,
        ..Default::default()
    };
    let config = RtConfig::from_section(&section, rate as u32, 256, 1);
    let (mut audio, mut worker) = RtEngine::build(&config, Box::new(live)).unwrap();
    let latency = audio.latency();
    let mut heard = Vec::new();
    let mut output = vec![0.0f32; 256];
    // The first measurement is asked for once 3 s of sound have passed (at 4 s); the thread is given time.
    let asked_at = rate + (LIVE_FIRST_SECONDS * rate as f32) as usize;
    for (i, block) in input.chunks_exact(256).enumerate() {
        if i * 256 == asked_at.next_multiple_of(256) + 4 * 256 {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        audio.process(&[block], &mut [&mut output[..]]);
        while worker.step() {}
        heard.extend_from_slice(&output);
    }
    // Before: the input itself, delayed by the latency.
    let (from, to) = (rate + rate / 5, asked_at - rate / 5);
    let worst = (from..to).map(|i| (heard[i + latency] - input[i]).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "before the tone is measured the output is the input (worst {worst})");
    // After: the model's output with the measured tone as the source.
    let tone = extractor().tone(&steady[..rate * 3]).unwrap();
    let whole = toward(tone).convert(&input).unwrap();
    let (from, to) = (asked_at + 3 * rate / 2, input.len() - rate / 2);
    let worst = (from..to).map(|i| (heard[i + latency] - whole[i]).abs()).fold(0.0f32, f32::max);
    let peak = whole[from..to].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    // (The measured window holds a few partial frames at the sound's start: within 1% of the peak.)
    assert!(peak > 1e-3 && worst <= peak * 1e-2, "after: converted with the input's tone (worst {worst}, peak {peak})");
    // ... which is not what the model makes with another source tone (the target's own, i.e. no measurement).
    let other = toward(vec![5.0; 256]).convert(&input).unwrap();
    let apart = (from..to).map(|i| (other[i] - whole[i]).abs()).fold(0.0f32, f32::max);
    assert!(apart > peak * 0.2, "the measured tone makes no difference to the fixture ({apart})");
    let dry = (from..to).map(|i| (heard[i + latency] - input[i]).abs()).fold(0.0f32, f32::max);
    assert!(dry > 0.1, "after the measurement the output is no longer the input");
}
