//! The plugin's RVC engine in the CLAP test host: an installed RVC voice model (the tiny fixture with the real
//! inputs, `tests/models/make_neural_fixtures.py`) named by the project runs on the plugin's worker; the reported
//! latency is the RVC engine's and every engine shares it (switching never moves the track); without a model the
//! RVC slot passes the input through, aligned, and the status says why. The test build of the plugin aborts on any
//! allocation in `process`.
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
fn an_installed_rvc_model_runs_in_the_plugin_at_the_latency_it_reports() {
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
}
