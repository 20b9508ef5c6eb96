//! Neural conversion models: every export style told apart by its inputs (on the tiny graphs that
//! `tests/models/make_neural_fixtures.py` generates with the real names, dtypes and shapes), a wrong file refused
//! with both signatures named, and the installed-model library.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use demod_voice_core::neural::{self, ModelKind};

fn fixture(name: &str) -> PathBuf {
    common::data(&format!("neural/{name}"))
}

/// Settings whose data folder is `dir`, with the content encoder and the w-okada RVC fixture (as `alto`) installed.
fn with_rvc_model(dir: &std::path::Path) -> demod_voice_core::settings::Settings {
    use demod_voice_core::settings::{Setting, Settings};
    let runtime = common::runtime();
    let mut settings = Settings::defaults();
    settings.set(Setting::DataDir(dir.to_path_buf()), "test");
    let models = settings.models_dir();
    neural::add(runtime, &models, &[fixture("content_encoder.onnx")], None, None, false).unwrap();
    neural::add(runtime, &models, &[fixture("rvc_okada.onnx")], Some("alto"), None, false).unwrap();
    settings
}

fn kind_of(name: &str) -> ModelKind {
    let path = fixture(name);
    neural::detect(&neural::signature(common::runtime(), &path).unwrap(), &path).unwrap()
}

#[test]
fn every_export_style_is_told_apart_by_its_inputs() {
    assert_eq!(kind_of("rvc_webui.onnx"), ModelKind::RvcWebui { channels: 768, sample_rate: None });
    assert_eq!(kind_of("rvc_okada.onnx"), ModelKind::RvcOkada { channels: 768, pitch: true, sample_rate: Some(40000) });
    assert_eq!(
        kind_of("rvc_okada_nopitch.onnx"),
        ModelKind::RvcOkada { channels: 256, pitch: false, sample_rate: Some(32000) }
    );
    assert_eq!(kind_of("content_encoder.onnx"), ModelKind::ContentEncoder { channels: 768 });
    assert_eq!(kind_of("tone_extractor.onnx"), ModelKind::ToneExtractor);
    assert_eq!(kind_of("tone_converter.onnx"), ModelKind::ToneConverter);
    let signature = neural::signature(common::runtime(), &fixture("rvc_okada.onnx")).unwrap();
    assert_eq!(
        signature.describe_inputs(),
        "feats f32[1,?,768], p_len i64[1], pitch i64[1,?], pitchf f32[1,?], sid i64[1]"
    );
}

#[test]
fn a_model_of_no_known_kind_is_refused_naming_what_it_has_and_what_is_expected() {
    let path = common::data("tiny_piper.onnx");
    let signature = neural::signature(common::runtime(), &path).unwrap();
    let err = neural::detect(&signature, &path).unwrap_err().to_string();
    assert!(err.contains("input i64[1,?]") && err.contains("input_lengths"), "its inputs: {err}");
    assert!(err.contains("phone f32[1,T,768|256]") && err.contains("src_tone f32[1,256,1]"), "the contracts: {err}");
}

#[test]
fn models_are_added_listed_found_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let runtime = common::runtime();
    let added = neural::add(runtime, &models, &[fixture("rvc_okada.onnx")], Some("alto"), None, false).unwrap();
    assert_eq!(added.engine, "rvc");
    assert!(models.join("alto/rvc_okada.onnx").is_file() && models.join("alto/manifest.json").is_file());
    let pair = [fixture("tone_converter.onnx"), fixture("tone_extractor.onnx")];
    assert_eq!(neural::add(runtime, &models, &pair, Some("tone"), None, false).unwrap().engine, "tone-color");
    // One half of a pair, a wrong checksum, a taken name: refused, nothing half-installed.
    let err = neural::add(runtime, &models, &pair[..1], Some("half"), None, false).unwrap_err().to_string();
    assert!(err.contains("is a pair"), "{err}");
    let err = neural::add(runtime, &models, &[fixture("content_encoder.onnx")], Some("hubert"), Some("00ff"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("SHA-256") && err.contains("nothing installed"), "{err}");
    let err =
        neural::add(runtime, &models, &[fixture("rvc_webui.onnx")], Some("alto"), None, false).unwrap_err().to_string();
    assert!(err.contains("--force"), "{err}");
    let listed: Vec<String> = neural::list(&models).into_iter().map(|(name, _)| name).collect();
    assert_eq!(listed, ["alto", "tone"]);
    assert_eq!(neural::find(&models, "tone").unwrap().files.len(), 2);
    neural::remove(&models, "alto").unwrap();
    let err = neural::find(&models, "alto").unwrap_err().to_string();
    assert!(err.contains("installed: tone"), "{err}");
}

#[test]
fn an_installed_rvc_model_runs_live_on_the_real_time_worker() {
    use demod_voice_core::convert::{build_live, Engine};
    use demod_voice_core::realtime::{RtConfig, RtEngine};
    use demod_voice_core::settings::Setting;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_rvc_model(dir.path());
    let params = std::sync::Arc::new(demod_voice_core::convert::dsp::DspParams::default());
    // Without a model named: refused with what to do.
    let err = build_live(Engine::Rvc, params.clone(), &settings).err().unwrap().to_string();
    assert!(err.contains("--model"), "{err}");
    settings.set(Setting::Model("alto".into()), "test");
    let converter = build_live(Engine::Rvc, params, &settings).unwrap();
    assert_eq!((converter.name(), converter.sample_rate()), ("rvc", Some(40_000)));
    // The audio side at 48 kHz in 128-frame blocks, the worker stepped between blocks (as `bench` drives it).
    let config = RtConfig::from_section(&Default::default(), 48_000, 128, 1);
    let (mut audio, mut worker) = RtEngine::build(&config, converter).unwrap();
    let voice = demod_voice_core::analysis::synthetic::voice(150.0, &[700.0, 1200.0], 48_000, 1.5);
    let mut heard = Vec::new();
    let mut output = vec![0.0f32; 128];
    for chunk in voice.chunks_exact(128) {
        audio.process(&[chunk], &mut [&mut output[..]]);
        while worker.step() {}
        heard.extend_from_slice(&output);
    }
    let latency = audio.latency();
    assert!(latency > 0 && heard.iter().all(|s| s.is_finite()));
    // The fixture's output is the content's energy times pitch / 1000: not the input, and not silence.
    let body = &heard[latency + 4800..heard.len() - 4800];
    assert!(body.iter().any(|s| s.abs() > 1e-4), "the model's output is silent");
    let dry = &voice[4800..4800 + body.len()];
    assert!(body.iter().zip(dry).any(|(a, b)| (a - b).abs() > 1e-3), "the output is the input");
    assert!(audio.stats().snapshot().worker_mean.as_nanos() > 0);
}

#[test]
fn rvc_streamed_through_the_engine_equals_the_whole_clip_converted_at_once_away_from_block_edges() {
    use demod_voice_core::config::RealtimeSection;
    use demod_voice_core::convert::rvc::RvcSetup;
    use demod_voice_core::settings::Setting;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_rvc_model(dir.path());
    settings.set(Setting::Model("alto".into()), "test");
    let setup = RvcSetup::from_settings(&settings).unwrap();
    // At the model's own rate (40 kHz), with hops of whole content frames (20 ms), so streamed blocks see the same
    // frames as the whole clip does. A voice whose pitch glides, with a slow swell so the content is not zero.
    let rate = 40_000;
    let glide = |t: f32| 140.0 + 40.0 * t;
    let voice: Vec<f32> = demod_voice_core::analysis::synthetic::voice_with(glide, &[700.0, 1200.0], rate, 2.0)
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.05 * (i as f32 / rate as f32 * 3.0).sin())
        .collect();
    let whole = setup.converter(0.0).unwrap().convert(&voice).unwrap();
    let section = RealtimeSection { hop_ms: 20.0, crossfade_ms: 5.0, context_ms: 100.0, ..RealtimeSection::default() };
    let streamed =
        demod_voice_core::realtime::convert_offline(&voice, rate, Box::new(setup.converter(0.0).unwrap()), &section)
            .unwrap();
    assert_eq!(streamed.len(), voice.len());
    // Compare the middle of every hop (the cross-fades at hop edges blend two blocks), after the first 200 ms.
    let hop = rate as usize / 50;
    let fade = rate as usize / 200;
    let (mut worst, mut compared) = (0.0f32, 0usize);
    let scale = whole.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 1e-3, "the model's output is silent (peak {scale})");
    for start in (rate as usize / 5..voice.len() - hop).step_by(hop) {
        for i in start + fade..start + hop - fade {
            worst = worst.max((streamed[i] - whole[i]).abs() / scale);
            compared += 1;
        }
    }
    assert!(compared > rate as usize / 2, "compared only {compared} samples");
    assert!(worst < 1e-3, "streamed and whole-clip output differ by {worst:.2e} of full scale away from block edges");
}

#[test]
fn rmvpe_pitch_models_are_told_apart_and_installed_for_rvc() {
    use neural::PitchForm;
    assert_eq!(kind_of("rmvpe_waveform.onnx"), ModelKind::PitchModel { form: PitchForm::Waveform });
    assert_eq!(kind_of("rmvpe_mel.onnx"), ModelKind::PitchModel { form: PitchForm::Mel });
    assert_eq!(kind_of("rmvpe_webui.onnx"), ModelKind::PitchModel { form: PitchForm::Salience });
    let dir = tempfile::tempdir().unwrap();
    let added = neural::add(common::runtime(), dir.path(), &[fixture("rmvpe_webui.onnx")], None, None, false).unwrap();
    assert_eq!(added.engine, "pitch");
}

/// With an RMVPE model installed, RVC's pitch comes from it: the fixture voice model's output is the content's
/// energy times the pitch, so against YIN's 120 Hz on a 120 Hz voice it scales by each fixture's steady pitch
/// (audio form 200 Hz, mel form 150 Hz, WebUI salience form a peak decoded to 100.6 Hz).
#[test]
fn rvc_takes_its_pitch_from_an_installed_rmvpe_model() {
    use demod_voice_core::convert::rvc::RvcSetup;
    use demod_voice_core::settings::Setting;
    let rate = 40_000;
    let voice = demod_voice_core::analysis::synthetic::voice(120.0, &[700.0, 1200.0], rate, 1.5);
    let level = |rmvpe: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = with_rvc_model(dir.path());
        settings.set(Setting::Model("alto".into()), "test");
        if let Some(file) = rmvpe {
            neural::add(common::runtime(), &settings.models_dir(), &[fixture(file)], None, None, false).unwrap();
        }
        let out = RvcSetup::from_settings(&settings).unwrap().converter(0.0).unwrap().convert(&voice).unwrap();
        let mut body: Vec<f32> =
            out[rate as usize / 4..out.len() - rate as usize / 4].iter().map(|v| v.abs()).collect();
        body.sort_by(f32::total_cmp);
        body[body.len() / 2]
    };
    let yin = level(None);
    assert!(yin > 1e-4, "the fixture's output is silent");
    let salience_hz = 10.0 * 2f32.powf((1997.3794 + 2000.0) / 1200.0);
    for (file, hz) in [("rmvpe_waveform.onnx", 200.0), ("rmvpe_mel.onnx", 150.0), ("rmvpe_webui.onnx", salience_hz)] {
        let ratio = level(Some(file)) / yin;
        let want = hz / 120.0;
        assert!((ratio / want - 1.0).abs() < 0.05, "{file}: output scaled by {ratio:.3}, want {want:.3}");
    }
}

/// `converter.model_speaker` (`--model-speaker`, presets) reaches a multi-speaker RVC model's speaker input: the
/// fixture scales its output by one plus the speaker id.
#[test]
fn rvc_speaks_as_the_speaker_the_settings_name() {
    use demod_voice_core::convert::rvc::RvcSetup;
    use demod_voice_core::settings::Setting;
    let rate = 40_000;
    let voice = demod_voice_core::analysis::synthetic::voice(120.0, &[700.0, 1200.0], rate, 1.0);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = with_rvc_model(dir.path());
    settings.set(Setting::Model("alto".into()), "test");
    let first = RvcSetup::from_settings(&settings).unwrap().converter(0.0).unwrap().convert(&voice).unwrap();
    settings.set(Setting::ModelSpeaker(2), "--model-speaker");
    let third = RvcSetup::from_settings(&settings).unwrap().converter(0.0).unwrap().convert(&voice).unwrap();
    let loud = first.iter().zip(&third).filter(|(a, _)| a.abs() > 1e-3).collect::<Vec<_>>();
    assert!(loud.len() > 1000, "the fixture's output is silent");
    assert!(loud.iter().all(|(a, b)| (*b / *a - 3.0).abs() < 1e-3), "speaker 2 should scale the fixture by 3");
}
