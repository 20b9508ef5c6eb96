//! `models add|list|show|remove` through the real binary, on the tiny graphs with the real model signatures.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data").join(name)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    common::ensure_assets();
    let private = common::private_data(dir);
    Command::new(env!("CARGO_BIN_EXE_demod-voice"))
        .args(["--offline", "--ort-lib"])
        .arg(&private.ort_lib)
        .arg("--config")
        .arg(&private.config)
        .args(args)
        .output()
        .unwrap()
}

/// [`run`] allowed to download (no `--offline`, no proxy from the environment).
fn run_online(dir: &Path, args: &[&str]) -> Output {
    common::ensure_assets();
    let private = common::private_data(dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demod-voice"));
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(proxy);
    }
    cmd.arg("--ort-lib").arg(&private.ort_lib).arg("--config").arg(&private.config).args(args).output().unwrap()
}

/// The command's output, after checking it succeeded.
fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Two seconds of a synthetic vowel at `rate`, written to `path` as a WAV; its samples.
fn vowel(path: &Path, rate: u32) -> Vec<f32> {
    let samples = demod_voice_core::analysis::synthetic::voice(150.0, &[700.0, 1200.0], rate, 2.0);
    let mut wav = demod_voice_core::wav::AtomicWav::create(path, rate).unwrap();
    wav.write(&samples).unwrap();
    wav.finish().unwrap();
    samples
}

#[test]
fn models_are_installed_by_kind_listed_shown_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let okada = fixture("neural/rvc_okada.onnx");
    let out = run(dir.path(), &["models", "add", okada.to_str().unwrap(), "--name", "alto"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rvc engine: RVC voice model (w-okada export, 768 channels, pitch, 40000 Hz)"), "{stderr}");
    let pair = [fixture("neural/tone_converter.onnx"), fixture("neural/tone_extractor.onnx")];
    let out =
        run(dir.path(), &["models", "add", pair[0].to_str().unwrap(), pair[1].to_str().unwrap(), "--name", "tone"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let list = String::from_utf8(run(dir.path(), &["models", "list"]).stdout).unwrap();
    assert!(list.contains("alto") && list.contains("tone-color"), "{list}");
    let json: serde_json::Value =
        serde_json::from_slice(&run(dir.path(), &["models", "list", "--json"]).stdout).unwrap();
    assert_eq!(json["models"][0]["files"][0]["kind"]["kind"], "rvc-okada");
    let show = String::from_utf8(run(dir.path(), &["models", "show", "tone"]).stdout).unwrap();
    assert!(show.contains("tone colour converter") && show.contains("sha256"), "{show}");

    // A Piper voice is no conversion model: exit 2, one line naming its inputs and what each kind needs.
    let out = run(dir.path(), &["models", "add", fixture("tiny_piper.onnx").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("input_lengths") && stderr.contains("expected one of"), "{stderr}");

    assert!(run(dir.path(), &["models", "remove", "alto"]).status.success());
    let out = run(dir.path(), &["models", "show", "alto"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model named `alto` (installed: tone)"));
}

#[test]
fn convert_runs_an_installed_tone_colour_model_toward_a_profiles_tone() {
    let dir = tempfile::tempdir().unwrap();
    let pair = [fixture("neural/tone_converter.onnx"), fixture("neural/tone_extractor.onnx")];
    ok(run(dir.path(), &["models", "add", pair[0].to_str().unwrap(), pair[1].to_str().unwrap(), "--name", "tone"]));
    ok(run(dir.path(), &["models", "add", fixture("neural/rvc_okada.onnx").to_str().unwrap(), "--name", "alto"]));
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
    ok(run(dir.path(), &["voices", "add-profile", "reader", reference.to_str().unwrap()]));
    // Input: two seconds of a synthetic vowel.
    let input = dir.path().join("input.wav");
    let samples = vowel(&input, 22_050);

    let convert = |tau: &str, out: &str| {
        let args = ["convert", input.to_str().unwrap(), "--engine", "tone-color", "--model", "tone", "--to", "reader"];
        let path = dir.path().join(out);
        let extra = ["--tau", tau, "-o", path.to_str().unwrap()];
        ok(run(dir.path(), &[&args[..], &extra[..]].concat()));
        demod_voice_core::wav::read_wav_mono(&path).unwrap()
    };
    let (plain, rate) = convert("0", "plain.wav");
    let (moved, _) = convert("0.3", "moved.wav");
    assert_eq!((rate, plain.len(), moved.len()), (22_050, samples.len(), samples.len()));
    // The fixture scales its output by 1 + tau x mean(target tone - source tone): one gain over the whole clip,
    // not 1 (the reader's tone is not this vowel's), so both tones reached the model.
    let mut ratios: Vec<f32> = plain[4000..40_000]
        .iter()
        .zip(&moved[4000..40_000])
        .filter(|(p, _)| p.abs() > 1e-3)
        .map(|(p, m)| m / p)
        .collect();
    assert!(ratios.len() > 10_000, "the converted signal is silent");
    ratios.sort_by(f32::total_cmp);
    let (low, mid, high) = (ratios[ratios.len() / 20], ratios[ratios.len() / 2], ratios[ratios.len() * 19 / 20]);
    assert!((mid - 1.0).abs() > 1e-3 && high - low < 0.02 * mid.abs(), "gains {low} {mid} {high}");
    // The profile's tone for this model was measured once and stored in the profile.
    let profile = std::fs::read_to_string(dir.path().join("data/profiles/reader.yaml")).unwrap();
    assert!(profile.contains("tones:") && profile.contains("tone:"), "{profile}");

    // Wrong or missing models and profiles: exit 2, one line naming what is needed, no output file.
    let cases: [(&[&str], &str); 3] = [
        (&["--model", "alto", "--to", "reader"], "not a tone colour converter"),
        (&["--to", "reader"], "--model NAME"),
        (&["--model", "tone", "--pitch", "2"], "--to PROFILE"),
    ];
    for (args, expected) in cases {
        let out_path = dir.path().join("refused.wav");
        let base = ["convert", input.to_str().unwrap(), "--engine", "tone-color", "-o", out_path.to_str().unwrap()];
        let out = run(dir.path(), &[&base[..], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected) && stderr.lines().count() == 1, "{args:?}: {stderr}");
        assert!(!out_path.exists());
    }
}

#[test]
fn convert_runs_an_installed_rvc_model_with_its_content_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.wav");
    let samples = vowel(&input, 48_000);
    let convert = |model: &str, pitch: &str, out: &str| {
        let path = dir.path().join(out);
        let args = ["convert", input.to_str().unwrap(), "--engine", "rvc", "--model", model, "--pitch", pitch];
        (run(dir.path(), &[&args[..], &["-o", path.to_str().unwrap()]].concat()), path)
    };
    ok(run(dir.path(), &["models", "add", fixture("neural/rvc_okada.onnx").to_str().unwrap(), "--name", "alto"]));
    // Without a content encoder installed: refused, saying what to install.
    let (out, path) = convert("alto", "0", "refused.wav");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("content encoder") && stderr.contains("768 channels"), "{stderr}");
    assert!(!path.exists());

    ok(run(dir.path(), &["models", "add", fixture("neural/content_encoder.onnx").to_str().unwrap()]));
    ok(run(dir.path(), &["models", "add", fixture("neural/rvc_webui.onnx").to_str().unwrap(), "--name", "webui"]));
    for model in ["alto", "webui"] {
        let (out, plain) = convert(model, "0", &format!("{model}-0.wav"));
        ok(out);
        let (out, up) = convert(model, "12", &format!("{model}-12.wav"));
        ok(out);
        let ((plain, rate), (up, _)) =
            (demod_voice_core::wav::read_wav_mono(&plain).unwrap(), demod_voice_core::wav::read_wav_mono(&up).unwrap());
        assert_eq!((rate, plain.len(), up.len()), (48_000, samples.len(), samples.len()));
        // The fixture's output is the content's frame energy times pitchf / 1000: the pitch, tracked and shifted an
        // octave, reached the model (twice the output wherever the vowel is voiced).
        let mut ratios: Vec<f32> = plain[12_000..84_000]
            .iter()
            .zip(&up[12_000..84_000])
            .filter(|(p, _)| p.abs() > 1e-4)
            .map(|(p, u)| u / p)
            .collect();
        assert!(ratios.len() > 10_000, "{model}: the converted signal is silent");
        ratios.sort_by(f32::total_cmp);
        let median = ratios[ratios.len() / 2];
        assert!((median - 2.0).abs() < 0.05, "{model}: +12 st scaled the output by {median}");
    }
    // A tone colour model is not an RVC model.
    let pair = [fixture("neural/tone_converter.onnx"), fixture("neural/tone_extractor.onnx")];
    ok(run(dir.path(), &["models", "add", pair[0].to_str().unwrap(), pair[1].to_str().unwrap(), "--name", "tone"]));
    let (out, _) = convert("tone", "0", "wrong.wav");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not an RVC voice model") && stderr.lines().count() == 1, "{stderr}");
}

#[test]
fn clone_runs_with_a_neural_engine_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let pair = [fixture("neural/tone_converter.onnx"), fixture("neural/tone_extractor.onnx")];
    ok(run(dir.path(), &["models", "add", pair[0].to_str().unwrap(), pair[1].to_str().unwrap(), "--name", "tone"]));
    ok(run(dir.path(), &["models", "add", fixture("neural/rvc_okada.onnx").to_str().unwrap(), "--name", "alto"]));
    ok(run(dir.path(), &["models", "add", fixture("neural/content_encoder.onnx").to_str().unwrap()]));
    // Speech and the speaker encoder from the real installation (the data folder is private).
    let real = demod_voice_core::assets::Dirs::from_env();
    let encoder = dir.path().join("data/encoder");
    std::fs::create_dir_all(&encoder).unwrap();
    std::os::unix::fs::symlink(real.encoder_path(), encoder.join(real.encoder_path().file_name().unwrap())).unwrap();
    let private = common::private_data_paths(dir.path());
    let clone = |engine: &str, out: &str| {
        let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/jfk_male.wav");
        let output = Command::new(env!("CARGO_BIN_EXE_demod-voice"))
            .args(["--offline", "--ort-lib"])
            .arg(&private.ort_lib)
            .arg("--config")
            .arg(&private.config)
            .env("DEMOD_VOICE_ESPEAK_LIB", &private.espeak_lib)
            .env("DEMOD_VOICE_ESPEAK_DATA", &private.espeak_data)
            .args(["clone", reference.to_str().unwrap(), "The garden gate was painted green.", "--json"])
            .args(["-o", dir.path().join(out).to_str().unwrap(), "--engine", engine, "--model"])
            .arg(if engine == "rvc" { "alto" } else { "tone" })
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&ok(output).stdout).unwrap();
        let (audio, _) = demod_voice_core::wav::read_wav_mono(&dir.path().join(out)).unwrap();
        (report, audio)
    };
    for engine in ["tone-color", "rvc"] {
        let (report, audio) = clone(engine, &format!("{engine}.wav"));
        assert_eq!(report["engine"], engine);
        assert!(report["model"].is_string() && report.get("formant_ratio").is_none(), "{report}");
        assert!((0.0..=1.0).contains(&report["similarity_after"].as_f64().unwrap().abs()), "{report}");
        assert!(audio.len() > 10_000 && audio.iter().all(|s| s.is_finite()), "{engine}: no audio");
        // The tone fixture's output is the spectrogram's frame energy (never silent for speech); the RVC fixture's
        // is the content frames' mean (the speech's DC, near zero), so only its length and finiteness tell here.
        if engine == "tone-color" {
            assert!(audio.iter().any(|s| s.abs() > 1e-3), "{engine}: silent");
        }
    }
}

#[test]
fn batch_rows_choose_an_installed_model_by_name() {
    let dir = tempfile::tempdir().unwrap();
    ok(run(dir.path(), &["models", "add", fixture("neural/content_encoder.onnx").to_str().unwrap()]));
    ok(run(dir.path(), &["models", "add", fixture("neural/rvc_okada.onnx").to_str().unwrap(), "--name", "alto"]));
    let manifest = dir.path().join("rows.csv");
    std::fs::write(
        &manifest,
        // Zero noise, so both rows start from the same speech.
        "text,output,engine,model,noise_scale,noise_w\n\
         The birch canoe slid on the smooth planks.,plain.wav,,,0,0\n\
         The birch canoe slid on the smooth planks.,alto.wav,rvc,alto,0,0\n\
         The birch canoe slid on the smooth planks.,missing.wav,rvc,no-such-model,0,0\n",
    )
    .unwrap();
    let report = dir.path().join("report.json");
    let out = run(dir.path(), &["batch", manifest.to_str().unwrap(), "--report", report.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One row fails (its model is not installed), the others are written.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.contains("no-such-model"), "the failed row does not name its model: {report}");
    let (plain, _) = demod_voice_core::wav::read_wav_mono(&dir.path().join("plain.wav")).unwrap();
    let (alto, _) = demod_voice_core::wav::read_wav_mono(&dir.path().join("alto.wav")).unwrap();
    assert_eq!(plain.len(), alto.len());
    // The fixture model's output is nothing like speech: the row ran it.
    let differing = plain.iter().zip(&alto).filter(|(a, b)| (*a - *b).abs() > 1e-3).count();
    assert!(differing > plain.len() / 4, "the rvc row sounds like the plain one ({differing} samples differ)");
    assert!(!dir.path().join("missing.wav").exists());
}

/// `models add URL` downloads with the voice catalogue's downloader (a connection dropped half way is resumed),
/// checks and installs the file, records the URL and the licence; a missing file or a wrong checksum installs
/// nothing and says so in one line; `--offline` refuses to download.
#[test]
fn models_are_added_from_a_url_resuming_a_broken_download() {
    use common::catalog_server::{Route, Server};
    let server = Server::start();
    let bytes = std::sync::Arc::new(std::fs::read(fixture("neural/rvc_okada.onnx")).unwrap());
    server.route("/models/alto.onnx", Route::DropOnce(bytes.clone(), bytes.len() / 2));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/models/alto.onnx", server.base);
    let out = run_online(dir.path(), &["models", "add", &url, "--licence", "CC-BY-4.0 (test)"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ranges = server.requests("/models/alto.onnx");
    assert!(ranges.len() >= 2 && ranges[1].is_some(), "the second request resumes with a range: {ranges:?}");
    let show = String::from_utf8(run(dir.path(), &["models", "show", "alto"]).stdout).unwrap();
    assert!(show.contains(&url) && show.contains("licence        CC-BY-4.0 (test)"), "{show}");
    assert!(show.contains("RVC voice model (w-okada export"), "{show}");
    let downloads = std::fs::read_dir(dir.path().join("data/models/.downloads")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(downloads, 0, "the downloaded file is not kept once installed");

    // Not there, a wrong checksum, offline: a failure exit (1 for the download, 2 for the file), one line each,
    // nothing installed.
    let missing = format!("{}/models/missing.onnx", server.base);
    server.route("/models/other.onnx", Route::File(bytes));
    let other = format!("{}/models/other.onnx", server.base);
    for (args, needle, code) in [
        (vec!["models", "add", missing.as_str()], "404", 1),
        (vec!["models", "add", other.as_str(), "--sha256", "00ff"], "SHA-256", 2),
    ] {
        let out = run_online(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    let out = run(dir.path(), &["models", "add", other.as_str()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--offline"), "{}", String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8(run(dir.path(), &["models", "list"]).stdout).unwrap();
    assert!(list.contains("alto") && !list.contains("other") && !list.contains("missing"), "{list}");
}
