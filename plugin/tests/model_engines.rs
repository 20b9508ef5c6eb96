//! The plugin's model engines in the CLAP test host: an installed RVC voice model (the tiny fixture with the real
//! inputs, `tests/models/make_neural_fixtures.py`) named by the project runs on the plugin's worker; the reported
//! latency is the RVC engine's and every engine shares it (switching never moves the track); without a model the
//! RVC slot passes the input through, aligned, and the status says why. A tone colour pair named instead runs in the
//! Tone colour slot toward the project's profile: the input passes through until its own tone is measured, then
//! is converted. The test build of the plugin aborts on any allocation in `process`.
//!
//! This test binary holds one test: it points the data and config folders at a temporary folder through the
//! environment, which the plugin (loaded in this process) reads when it activates.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use demod_voice_core::settings::Settings;
use support::host::load;
use support::{clap_bundle, with_persisted};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data/neural").join(name)
}

#[test]
fn installed_models_run_in_the_plugin_at_the_latency_it_reports() {
    // The real ONNX Runtime, found as the command line finds it, named for the plugin through ORT_DYLIB_PATH before
    // the data folder moves to a temporary one (edition 2021: safe; the only test of this binary).
    let runtime = Settings::load(None).unwrap().runtime().expect("ONNX Runtime (run `demod-voice setup`)");
    std::env::set_var("ORT_DYLIB_PATH", &runtime.path);
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CONFIG_HOME", dir.path().join("config"));
    std::env::set_var("DEMOD_VOICE_DATA_DIR", dir.path().join("data"));
    let settings = Settings::load(None).unwrap();
    let models = settings.models_dir();
    demod_voice_core::neural::add(runtime, &models, &[fixture("content_encoder.onnx")], None, None, false).unwrap();
    demod_voice_core::neural::add(runtime, &models, &[fixture("rvc_okada.onnx")], Some("alto"), None, false).unwrap();

    let bundle_dir = tempfile::tempdir().unwrap();
    let bundle = clap_bundle(bundle_dir.path());
    let mut plugin = load(&bundle);
    let rate = 48_000.0;
    let voice = demod_voice_core::analysis::synthetic::voice(150.0, &[700.0, 1200.0], rate as u32, 1.5);
    let input = [voice.clone(), voice.clone()];

    // No model: the RVC slot is the aligned input, at the model-free engines' latency, and the status says why.
    let (plain, plain_latency) = plugin.run(rate, &[("Engine", "RVC")], &input, &[256, 480, 512], false);
    let latency = plain_latency as usize;
    for (i, out) in plain[0].iter().enumerate().skip(latency).take(20_000) {
        assert!((out - voice[i - latency]).abs() < 1e-5, "sample {i}: without a model RVC should pass the input");
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let state = String::from_utf8_lossy(&plugin.save_state()).into_owned();
    assert!(state.contains("RVC has no model"), "the status does not say RVC lacks a model: {state}");

    // The project names the model: it loads at activation, and the latency grows to RVC's for every engine.
    let state = plugin.save_state();
    plugin.load_state(&with_persisted(&state, "model", "alto"));
    let (converted, rvc_latency) = plugin.run(rate, &[("Engine", "RVC")], &input, &[256, 480, 512], false);
    assert!(rvc_latency > plain_latency, "RVC's latency {rvc_latency} is not above the dsp engine's {plain_latency}");
    let latency = rvc_latency as usize;
    let body = &converted[0][latency + 4800..converted[0].len() - 4800];
    assert!(body.iter().all(|v| v.is_finite()) && body.iter().any(|v| v.abs() > 1e-4), "RVC's output is silent");
    let dry = &voice[4800..4800 + body.len()];
    assert!(body.iter().zip(dry).any(|(a, b)| (a - b).abs() > 1e-3), "RVC's output is the input");
    // Passthrough at the same (RVC's) latency: switching engines never moves the track.
    let (passed, same_latency) = plugin.run(rate, &[("Engine", "Passthrough")], &input, &[256, 480, 512], false);
    assert_eq!(same_latency, rvc_latency);
    for (i, out) in passed[0].iter().enumerate().skip(latency).take(20_000) {
        assert!((out - voice[i - latency]).abs() < 1e-5, "sample {i}: passthrough is not aligned to RVC's latency");
    }

    // A tone colour pair instead, toward a profile: it runs in the Tone colour slot; RVC now says it has no model.
    let pair = [fixture("tone_converter.onnx"), fixture("tone_extractor.onnx")];
    demod_voice_core::neural::add(runtime, &models, &pair, Some("timbre"), None, false).unwrap();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
    let no_encoder = || None::<demod_voice_core::speaker::SpeakerEncoder>;
    demod_voice_core::library::add_profile(
        &settings.profiles_dir(),
        "reader",
        std::slice::from_ref(&reference),
        false,
        no_encoder,
    )
    .unwrap();
    let state = with_persisted(&with_persisted(&plugin.save_state(), "model", "timbre"), "profile", "reader");
    plugin.load_state(&state);
    let (samples, source_rate) = demod_voice_core::wav::read_wav_mono(&reference).unwrap();
    let mut speech = demod_voice_core::wav::resample(&samples, source_rate, rate as u32).unwrap();
    speech.truncate(rate as usize * 7);
    // Paced in real time, as a DAW plays (the input's tone is measured beside the worker, which never waits).
    let input = [speech.clone(), speech.clone()];
    let (toned, tone_latency) = plugin.run(rate, &[("Engine", "Tone colour")], &input, &[512], true);
    let latency = tone_latency as usize;
    let second = rate as usize;
    // The change from the input, relative to the input (the model runs at 22050 Hz: resampled there and back).
    let change = |from: usize, to: usize| {
        let diff: f32 = (from..to).map(|i| (toned[0][i + latency] - speech[i]).powi(2)).sum();
        let power: f32 = speech[from..to].iter().map(|s| s * s).sum();
        (diff / power.max(1e-12)).sqrt()
    };
    let early = change(second / 2, 2 * second);
    assert!(early < 0.1, "before its tone is measured the input should pass through (relative change {early})");
    let late = change(5 * second, 7 * second - latency);
    eprintln!(
        "tone colour through the plugin: relative change {early:.4} before the tone is measured, {late:.3} after"
    );
    assert!(late > 0.5, "after 3 s of sound the tone colour model should convert (relative change {late})");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (_, _) = plugin.run(rate, &[("Engine", "RVC")], &input, &[512], false);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let state = String::from_utf8_lossy(&plugin.save_state()).into_owned();
    assert!(state.contains("RVC has no model") && state.contains("tone-color model"), "{state}");
}
