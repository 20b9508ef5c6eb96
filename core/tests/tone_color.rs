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
