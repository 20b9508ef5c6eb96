//! Config, presets, providers, logging and health, through the real binary with the real voice and runtime.
//! One test per config key shows that the key changes what a user gets. The preprocessing keys are proven in
//! preprocess_cli.rs; realtime.context_ms and realtime.underrun in core's rt_engine tests.

#![allow(clippy::unwrap_used)]

mod common;

use common::ensure_assets;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary with an isolated config folder (so the machine's own config never leaks in).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        ensure_assets();
        Env { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, text: &str) -> PathBuf {
        let path = self.path("config.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demod-voice"));
        cmd.env("XDG_CONFIG_HOME", self.path("xdg-config")).env_remove("RUST_LOG").arg("--offline");
        cmd
    }

    /// `speak` with `config` into `out.wav` (plus extra args); returns the output.
    fn speak(&self, config: &str, text: &str, extra: &[&str]) -> (Output, PathBuf) {
        let cfg = self.config(config);
        let wav = self.path("out.wav");
        let _ = std::fs::remove_file(&wav);
        let out =
            self.cmd().arg("--config").arg(cfg).args(["speak", text, "-o"]).arg(&wav).args(extra).output().unwrap();
        (out, wav)
    }
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "failed: {stderr}");
    stderr
}

struct Wav {
    rate: u32,
    bits: u16,
    float: bool,
    samples: Vec<f32>,
}

fn read(path: &Path) -> Wav {
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    let float = spec.sample_format == hound::SampleFormat::Float;
    let samples = if float {
        reader.into_samples::<f32>().map(Result::unwrap).collect()
    } else {
        reader.into_samples::<i16>().map(|s| s.unwrap() as f32 / 32767.0).collect()
    };
    Wav { rate: spec.sample_rate, bits: spec.bits_per_sample, float, samples }
}

fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0f32, |m, s| m.max(s.abs()))
}

/// Noise off: the voice is deterministic, so lengths compare exactly.
const STILL: &str = "tts:\n  noise_scale: 0.0\n  noise_w: 0.0\n";
const TEXT: &str = "The quick brown fox jumps over the lazy dog.";

// --- runtime -----------------------------------------------------------------------------------------------

#[test]
fn runtime_provider_cuda_on_a_cpu_runtime_speaks_on_cpu_with_exactly_one_warning() {
    let env = Env::new();
    let (out, wav) = env.speak("runtime:\n  provider: cuda\n", "Two sentences here. And one more.", &[]);
    let stderr = ok(&out);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("CUDAExecutionProvider") && warnings[0].contains("using CPU"), "{stderr}");
    assert!(read(&wav).samples.len() > 22050);
}

#[test]
fn runtime_device_id_reaches_the_provider_request() {
    let env = Env::new();
    let (out, _) = env.speak("runtime:\n  provider: cuda\n  device_id: 3\n", "Hi.", &[]);
    assert!(ok(&out).contains("device 3"));
}

#[test]
fn runtime_intra_threads_sets_the_session_threads() {
    let env = Env::new();
    let (out, _) = env.speak("runtime:\n  intra_threads: 1\n", "Hi.", &["-v"]);
    assert!(ok(&out).contains("CPUExecutionProvider, 1 intra-op threads"));
}

#[test]
fn runtime_library_from_config_is_used_and_named() {
    let env = Env::new();
    let (out, _) = env.speak("runtime:\n  library: /nonexistent/libonnxruntime.so.9\n", "Hi.", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("/nonexistent/libonnxruntime.so.9") && stderr.contains("set by config"), "{stderr}");
}

// --- tts ---------------------------------------------------------------------------------------------------

#[test]
fn tts_voice_selects_the_voice() {
    let env = Env::new();
    let (out, _) = env.speak("tts:\n  voice: no-such-voice\n", "Hi.", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("no-such-voice"), "{stderr}");
}

#[test]
fn tts_speaker_is_checked_against_the_voice() {
    let env = Env::new();
    let (out, wav) = env.speak("tts:\n  speaker: \"7\"\n", "Hi.", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("speaker `7`"));
    assert!(!wav.exists());
}

#[test]
fn tts_length_scale_stretches_speech() {
    let env = Env::new();
    let (out, wav) = env.speak(STILL, TEXT, &[]);
    ok(&out);
    let normal = read(&wav).samples.len();
    let (out, wav) = env.speak(&format!("{STILL}  length_scale: 1.5\n"), TEXT, &[]);
    ok(&out);
    let slow = read(&wav).samples.len();
    let ratio = slow as f64 / normal as f64;
    assert!((1.35..1.65).contains(&ratio), "length_scale 1.5 gave {ratio:.2}x the length");
}

#[test]
fn tts_noise_scale_and_noise_w_reach_the_model() {
    let env = Env::new();
    let run = |config: &str| {
        let (out, wav) = env.speak(config, TEXT, &[]);
        ok(&out);
        read(&wav).samples
    };
    // Both noises off: identical runs.
    assert_eq!(run(STILL), run(STILL));
    // Generator noise on: same durations (noise_w still 0) but different samples.
    let noisy = "tts:\n  noise_scale: 0.667\n  noise_w: 0.0\n";
    let (a, b) = (run(noisy), run(noisy));
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b);
    // Duration noise on: the lengths themselves vary between runs.
    let wobbly = "tts:\n  noise_scale: 0.0\n  noise_w: 1.0\n";
    let lengths: std::collections::HashSet<usize> = (0..4).map(|_| run(wobbly).len()).collect();
    assert!(lengths.len() > 1, "noise_w had no effect on durations");
}

#[test]
fn tts_sentence_silence_adds_silence_after_each_sentence() {
    let env = Env::new();
    let text = "First sentence. Second sentence.";
    let (out, wav) = env.speak(STILL, text, &[]);
    ok(&out);
    let base = read(&wav).samples.len();
    let (out, wav) = env.speak(&format!("{STILL}  sentence_silence: 1.0\n"), text, &[]);
    ok(&out);
    let with = read(&wav);
    assert_eq!(with.samples.len(), base + 2 * 22050);
    assert!(with.samples[with.samples.len() - 22050..].iter().all(|&s| s == 0.0));
}

#[test]
fn tts_volume_and_normalize_set_the_level() {
    let env = Env::new();
    let (out, wav) = env.speak(&format!("{STILL}  volume: 0.5\n"), TEXT, &[]);
    ok(&out);
    let half = peak(&read(&wav).samples);
    assert!((half - 0.5).abs() < 0.01, "peak {half}");
    let (out, wav) = env.speak(&format!("{STILL}  normalize: false\n"), TEXT, &[]);
    ok(&out);
    let raw = peak(&read(&wav).samples);
    assert!((raw - 1.0).abs() > 0.02, "without normalisation the model's own peak ({raw}) shows");
}

// --- output ------------------------------------------------------------------------------------------------

#[test]
fn output_sample_rate_resamples_and_keeps_duration() {
    let env = Env::new();
    let (out, wav) = env.speak(STILL, TEXT, &[]);
    ok(&out);
    let native = read(&wav);
    let (out, wav) = env.speak(&format!("{STILL}output:\n  sample_rate: 48000\n"), TEXT, &[]);
    ok(&out);
    let high = read(&wav);
    assert_eq!((native.rate, high.rate), (22050, 48000));
    let (d1, d2) = (native.samples.len() as f64 / 22050.0, high.samples.len() as f64 / 48000.0);
    assert!((d1 - d2).abs() < 0.01, "{d1} s vs {d2} s");
}

#[test]
fn output_format_wav_f32_writes_float_samples() {
    let env = Env::new();
    let (out, wav) = env.speak("output:\n  format: wav-f32\n", "Hi.", &[]);
    ok(&out);
    let wav = read(&wav);
    assert!(wav.float && wav.bits == 32);
}

// --- paths -------------------------------------------------------------------------------------------------

fn default_model() -> PathBuf {
    let dirs = demod_voice_core::assets::Dirs::from_env();
    demod_voice_core::assets::resolve_voice("en_US-joe-medium", &dirs.voices_dir()).unwrap()
}

#[test]
fn paths_voices_is_the_voice_library() {
    let env = Env::new();
    let lib = env.path("voices");
    std::fs::create_dir(&lib).unwrap();
    let model = default_model();
    std::os::unix::fs::symlink(&model, lib.join("my-voice.onnx")).unwrap();
    std::os::unix::fs::symlink(model.with_extension("onnx.json"), lib.join("my-voice.onnx.json")).unwrap();
    let cfg = env.config(&format!("paths:\n  voices: {}\n", lib.display()));
    let out = env.cmd().arg("--config").arg(&cfg).args(["voices", "list"]).output().unwrap();
    ok(&out);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("my-voice") && !listing.contains("en_US-joe-medium"), "{listing}");
}

#[test]
fn paths_data_and_cache_place_setup() {
    let env = Env::new();
    let data = env.path("data");
    let real_cache = demod_voice_core::assets::Dirs::from_env().cache;
    let cfg = env.config(&format!("paths:\n  data: {}\n  cache: {}\n", data.display(), real_cache.display()));
    // Offline: only the cached wheels can be used, so success proves paths.cache was read.
    let out = env.cmd().arg("--config").arg(&cfg).arg("setup").output().unwrap();
    ok(&out);
    assert!(data.join("voices/en_US-joe-medium.onnx").is_file());
    assert!(data.join("espeak/espeak-ng-data/phontab").is_file());
    let empty_cache = env.path("empty-cache");
    let cfg =
        env.config(&format!("paths:\n  data: {}\n  cache: {}\n", env.path("data2").display(), empty_cache.display()));
    let out = env.cmd().arg("--config").arg(&cfg).arg("setup").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--offline"));
}

// --- log ---------------------------------------------------------------------------------------------------

#[test]
fn log_level_and_file_control_logging() {
    let env = Env::new();
    let (out, _) = env.speak("", "Hi.", &[]);
    assert!(!ok(&out).contains("INFO"));
    let (out, _) = env.speak("log:\n  level: info\n", "Hi.", &[]);
    assert!(ok(&out).contains("INFO"));
    let log = env.path("demod.log");
    let (out, _) = env.speak(&format!("log:\n  level: info\n  file: {}\n", log.display()), "Hi.", &[]);
    ok(&out);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("intra-op threads"), "{text}");
}

#[test]
fn rust_log_and_verbosity_flags_override_the_config_level() {
    let env = Env::new();
    let cfg = env.config("log:\n  level: info\n");
    let out =
        env.cmd().arg("--config").arg(&cfg).args(["-q", "speak", "Hi.", "-o"]).arg(env.path("q.wav")).output().unwrap();
    assert!(!ok(&out).contains("INFO"));
    let out = env.cmd().env("RUST_LOG", "debug").args(["speak", "Hi.", "-o"]).arg(env.path("d.wav")).output().unwrap();
    assert!(ok(&out).contains("DEBUG"));
}

#[test]
fn raw_pcm_on_stdout_carries_no_log_lines() {
    let env = Env::new();
    let cfg = env.config("log:\n  level: debug\n");
    let out = env.cmd().arg("--config").arg(&cfg).args(["speak", "Hi.", "--output-raw"]).output().unwrap();
    ok(&out);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("DEBUG"));
    assert_eq!(out.stdout.len() % 2, 0);
}

// --- presets -----------------------------------------------------------------------------------------------

#[test]
fn presets_apply_under_flags() {
    let env = Env::new();
    let (out, wav) = env.speak(STILL, TEXT, &[]);
    ok(&out);
    let normal = read(&wav).samples.len();
    let (out, wav) = env.speak(STILL, TEXT, &["--preset", "fast-draft"]);
    ok(&out);
    let fast = read(&wav).samples.len();
    assert!(fast < normal * 9 / 10, "fast-draft should speak faster ({fast} vs {normal})");
    // A flag beats the preset.
    let (out, wav) = env.speak(STILL, TEXT, &["--preset", "fast-draft", "--length-scale", "1.0"]);
    ok(&out);
    assert_eq!(read(&wav).samples.len(), normal);
    // broadcast-loudness sets 48 kHz and a -1 dBFS peak.
    let (out, wav) = env.speak(STILL, TEXT, &["--preset", "broadcast-loudness"]);
    ok(&out);
    let wav = read(&wav);
    assert_eq!(wav.rate, 48000);
    assert!((peak(&wav.samples) - 0.891).abs() < 0.02);
}

#[test]
fn user_presets_are_listed_and_shown() {
    let env = Env::new();
    let dir = env.path("xdg-config/demod-voice/presets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mine.yaml"), "schema_version: 1\nname: mine\ndescription: my own\ntts:\n  volume: 0.4\n")
        .unwrap();
    let out = env.cmd().args(["presets", "list"]).output().unwrap();
    ok(&out);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("mine") && list.contains("natural-narration") && list.contains("low-latency-live"), "{list}");
    let out = env.cmd().args(["presets", "show", "mine"]).output().unwrap();
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("volume: 0.4"));
}

// --- config show / init / check ----------------------------------------------------------------------------

#[test]
fn config_show_reports_each_value_and_its_source() {
    let env = Env::new();
    let cfg = env.config("tts:\n  volume: 0.7\n");
    let out =
        env.cmd().arg("--config").arg(&cfg).args(["--threads", "3", "config", "show", "--json"]).output().unwrap();
    ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = json["keys"].as_array().unwrap();
    let find = |k: &str| keys.iter().find(|e| e["key"] == k).unwrap().clone();
    assert_eq!(find("tts.volume")["value"], "0.7");
    assert!(find("tts.volume")["source"].as_str().unwrap().contains("config.yaml"));
    assert_eq!(find("runtime.intra_threads")["source"], "--threads");
    assert_eq!(find("tts.normalize")["source"], "default");
    assert!(keys.len() >= 25, "every key is shown");
}

#[test]
fn config_init_writes_a_file_that_checks_clean_and_refuses_to_overwrite() {
    let env = Env::new();
    let path = env.path("new/config.yaml");
    let out = env.cmd().args(["config", "init"]).arg(&path).output().unwrap();
    ok(&out);
    assert!(std::fs::read_to_string(&path).unwrap().contains("# "), "commented");
    let out = env.cmd().args(["config", "check"]).arg(&path).output().unwrap();
    ok(&out);
    let out = env.cmd().args(["config", "init"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn old_tool_config_loads_with_one_warning_per_unmapped_key() {
    let env = Env::new();
    let (out, wav) = env.speak(
        "gpu:\n  enabled: false\npiper:\n  speed: 1.0\n  noise_scale: 0.0\n  noise_scale_w: 0.0\nxtts:\n  temperature: 0.7\n  language: en\n",
        "Hi.",
        &[],
    );
    let stderr = ok(&out);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(warnings.iter().all(|w| w.contains("xtts.")));
    assert!(wav.exists());
}

// --- bad config: one message, exit 2, nothing written ------------------------------------------------------

fn bad_config(env: &Env, config: &str, needles: &[&str]) {
    let (out, wav) = env.speak(config, "Hi.", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for needle in needles {
        assert!(lines[0].contains(needle), "{needle:?} missing from {stderr}");
    }
    assert!(!wav.exists(), "nothing is written");
}

#[test]
fn bad_configs_fail_with_one_line_and_exit_2() {
    let env = Env::new();
    bad_config(&env, "tts:\n  volume: [0.5,\n", &["config.yaml", "line"]);
    bad_config(&env, "tts:\n  lenght_scale: 1.2\n", &["line 2", "lenght_scale", "did you mean `length_scale`"]);
    bad_config(&env, "tts:\n  volume: loud\n", &["line 2"]);
    bad_config(&env, "output:\n  sample_rate: 3\n", &["output.sample_rate", "line 2", "8000..192000"]);
    bad_config(&env, "tts:\n  length_scale: .nan\n", &["config.yaml", "line 2"]);
    bad_config(&env, "realtime:\n  hop_ms: -5\n", &["realtime.hop_ms", "line 2", "-5"]);
    let out = env
        .cmd()
        .args(["--config", "/nonexistent/c.yaml", "speak", "Hi.", "-o"])
        .arg(env.path("x.wav"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/c.yaml"));
}

#[test]
fn bad_presets_fail_with_one_line_and_exit_2() {
    let env = Env::new();
    let dir = env.path("xdg-config/demod-voice/presets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("future.yaml"), "schema_version: 99\nname: future\n").unwrap();
    std::fs::write(dir.join("broken.yaml"), "schema_version: 1\nname: [\n").unwrap();
    let unreadable = dir.join("locked.yaml");
    std::fs::create_dir(&unreadable).unwrap(); // a folder where a file should be cannot be read
    for (name, needle) in
        [("future", "newer"), ("broken", "broken.yaml"), ("locked", "locked.yaml"), ("nope", "no preset")]
    {
        let wav = env.path("x.wav");
        let out = env.cmd().args(["speak", "Hi.", "--preset", name, "-o"]).arg(&wav).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(!wav.exists());
    }
}

// --- health ------------------------------------------------------------------------------------------------

/// A small JSON Schema validator for the keywords docs/health.schema.json uses: type, enum, required,
/// properties, additionalProperties (false), items.
fn validate(value: &serde_json::Value, schema: &serde_json::Value, path: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect(),
            _ => vec![],
        };
        let matches = names.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !matches {
            errors.push(format!("{path}: expected {names:?}, got {value}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(|e| e.as_array()) {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} not in {allowed:?}"));
        }
    }
    if let (Some(obj), Some(required)) = (value.as_object(), schema.get("required").and_then(|r| r.as_array())) {
        for key in required.iter().filter_map(|k| k.as_str()) {
            if !obj.contains_key(key) {
                errors.push(format!("{path}: missing {key}"));
            }
        }
    }
    if let (Some(obj), Some(props)) = (value.as_object(), schema.get("properties").and_then(|p| p.as_object())) {
        for (key, child) in obj {
            match props.get(key) {
                Some(child_schema) => errors.extend(validate(child, child_schema, &format!("{path}.{key}"))),
                None if schema.get("additionalProperties") == Some(&serde_json::Value::Bool(false)) => {
                    errors.push(format!("{path}: unexpected key {key}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        for (idx, item) in items.iter().enumerate() {
            errors.extend(validate(item, item_schema, &format!("{path}[{idx}]")));
        }
    }
    errors
}

fn schema() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/health.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_schema_validator_rejects_what_it_should() {
    let schema = schema();
    assert!(!validate(&serde_json::json!({"schema_version": 1}), &schema, "$").is_empty());
    let bad = serde_json::json!({"schema_version": 1, "status": "fine", "version": "x", "checks": []});
    assert!(!validate(&bad, &schema, "$").is_empty());
}

#[test]
fn health_json_validates_and_reports_the_gpu_as_a_warning_on_cpu() {
    let env = Env::new();
    let out = env.cmd().args(["health", "--json"]).output().unwrap();
    ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = validate(&report, &schema(), "$");
    assert!(errors.is_empty(), "{errors:?}");
    let checks = report["checks"].as_array().unwrap();
    let gpu = checks.iter().find(|c| c["name"] == "gpu").unwrap();
    assert_eq!(gpu["status"], "warning", "{gpu}");
    assert!(gpu["message"].as_str().unwrap().contains("no CUDA provider"));
    for name in ["runtime", "espeak", "voices", "config", "disk"] {
        let c = checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(c["status"], "ok", "{c}");
    }
}

#[test]
fn health_reports_the_sound_devices_and_a_missing_one_as_a_warning() {
    let env = Env::new();
    let alsa = |name: &str, conf: &str| {
        let path = env.path(name);
        std::fs::write(&path, conf).unwrap();
        format!("/usr/share/alsa/alsa.conf:{}", path.display())
    };
    let audio_check = |alsa_config: &str| {
        let out = env.cmd().env("ALSA_CONFIG_PATH", alsa_config).args(["health", "--json"]).output().unwrap();
        ok(&out);
        assert!(
            out.stderr.is_empty(),
            "ALSA's own complaints stay off stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(validate(&report, &schema(), "$").is_empty());
        report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "audio").unwrap().clone()
    };
    // A device that exists: ALSA's null device.
    let check = audio_check(&alsa("null.conf", "pcm.!default { type plug slave.pcm \"null\" }\n"));
    assert_eq!(check["status"], "ok", "{check}");
    assert!(check["details"]["output"].as_str().unwrap().contains(" Hz"), "{check}");
    // A configured device that is not there is named.
    let cfg = env.config("audio:\n  output_device: Studio Monitors\n");
    let out = env
        .cmd()
        .env("ALSA_CONFIG_PATH", alsa("null2.conf", "pcm.!default { type plug slave.pcm \"null\" }\n"))
        .arg("--config")
        .arg(cfg)
        .args(["health", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "audio").unwrap().clone();
    assert_eq!(check["status"], "warning", "{check}");
    assert!(check["message"].as_str().unwrap().contains("no audio output device named `Studio Monitors`"), "{check}");
    // A sound card that is not there.
    let check = audio_check(&alsa("missing.conf", "pcm.!default { type hw card 99 }\n"));
    assert_eq!(check["status"], "warning", "{check}");
    assert!(check["message"].as_str().unwrap().starts_with("no audio output"), "{check}");
    assert!(check["hint"].as_str().unwrap().contains("files or pipes"), "{check}");
}

#[test]
fn health_deep_synthesises_and_a_broken_config_is_an_error_check() {
    let env = Env::new();
    let out = env.cmd().args(["health", "--json", "--deep"]).output().unwrap();
    ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(validate(&report, &schema(), "$").is_empty());
    let synth = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "synthesis").unwrap().clone();
    assert_eq!(synth["status"], "ok", "{synth}");
    assert!(synth["details"]["real_time_factor"].as_f64().unwrap() > 0.0);

    let cfg = env.config("tts:\n  volume: [\n");
    let out = env.cmd().arg("--config").arg(cfg).args(["health", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(validate(&report, &schema(), "$").is_empty());
    let config = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "config").unwrap().clone();
    assert_eq!(config["status"], "error");
    assert_eq!(report["status"], "error");
}

// --- realtime ----------------------------------------------------------------------------------------------

#[test]
fn realtime_keys_reach_the_engine() {
    let env = Env::new();
    let run = |config: &str| -> serde_json::Value {
        let cfg = env.config(config);
        let out = env.cmd().arg("--config").arg(cfg).args(["bench", "--realtime", "--json"]).output().unwrap();
        ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let default = run("");
    let short = run("realtime:\n  hop_ms: 5\n  crossfade_ms: 2\n");
    assert_eq!(default["hop_ms"], 10.0);
    assert_eq!(short["hop_ms"], 5.0);
    assert!(short["passthrough_latency_ms"].as_f64().unwrap() < default["passthrough_latency_ms"].as_f64().unwrap());
    assert!(short["dsp_latency_ms"].as_f64().unwrap() < default["dsp_latency_ms"].as_f64().unwrap());
}
