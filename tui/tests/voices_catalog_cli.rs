//! The voice catalogue through the real binary against an HTTP server on 127.0.0.1 that serves a catalogue and
//! the real default voice's files, and misbehaves on purpose: a corrupted copy, a truncated one, a connection
//! dropped half way, a 404 and a server too slow to answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::catalog_server::{entry, real_voice, Route, Server};

/// A server, a catalogue on it, and the binary with a private library, cache and config pointing at both.
struct Env {
    dir: tempfile::TempDir,
    server: Server,
    model: Arc<Vec<u8>>,
}

impl Env {
    fn new() -> Env {
        let (model, config) = real_voice();
        let server = Server::start();
        let mut catalog = serde_json::Map::new();
        let mut add = |key: &str, language: &str, quality: &str, aliases: &[&str], model_route: Option<Route>| {
            // The voice's own config names the catalogue's language, as a real voice's does.
            let mut json: serde_json::Value = serde_json::from_slice(&config).unwrap();
            json["language"]["code"] = language.into();
            json["espeak"]["voice"] = "en-us".into();
            let config = Arc::new(serde_json::to_vec(&json).unwrap());
            let value = entry(key, language, quality, &model, &config, aliases);
            let (family, _) = language.split_once('_').unwrap();
            let dir = format!("/{family}/{language}/{key}");
            server.route(&format!("{dir}/{key}.onnx"), model_route.unwrap_or(Route::File(model.clone())));
            server.route(&format!("{dir}/{key}.onnx.json"), Route::File(config.clone()));
            catalog.insert(key.to_string(), value);
        };
        add("en_GB-joe-medium", "en_GB", "medium", &["en-gb-joe-medium"], None);
        add("en_GB-joe-low", "en_GB", "low", &[], None);
        let mut corrupted = (*model).clone();
        corrupted[model.len() / 2] ^= 0x5a;
        add("de_DE-corrupt-medium", "de_DE", "medium", &[], Some(Route::File(Arc::new(corrupted))));
        add("de_DE-short-low", "de_DE", "low", &[], Some(Route::File(Arc::new(model[..model.len() / 3].to_vec()))));
        add("nl_NL-dropped-medium", "nl_NL", "medium", &[], Some(Route::DropOnce(model.clone(), model.len() / 2)));
        add("fr_FR-missing-low", "fr_FR", "low", &[], None);
        add("es_ES-slow-low", "es_ES", "low", &[], Some(Route::Slow(Duration::from_secs(4))));
        server.routes.lock().unwrap().remove("/fr/fr_FR/fr_FR-missing-low/fr_FR-missing-low.onnx");
        let text = serde_json::to_vec(&serde_json::Value::Object(catalog)).unwrap();
        server.route("/voices.json", Route::File(Arc::new(text)));
        let env = Env { dir: tempfile::tempdir().unwrap(), server, model };
        env.write_config("");
        env
    }

    fn write_config(&self, extra: &str) {
        let d = self.dir.path();
        std::fs::write(
            d.join("config.yaml"),
            format!(
                "paths:\n  data: {}\n  voices: {}\n  cache: {}\nvoices:\n  catalog_url: {}/voices.json\n  base_url: {}/\n  \
                 timeout_s: 1.0\n  retries: 1\n{extra}",
                d.join("data").display(),
                d.join("voices").display(),
                d.join("cache").display(),
                self.server.base,
                self.server.base
            ),
        )
        .unwrap();
    }

    fn voices(&self) -> PathBuf {
        self.dir.path().join("voices")
    }

    fn cmd(&self) -> Command {
        let private = common::private_data_paths(self.dir.path());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demod-voice"));
        cmd.arg("--ort-lib")
            .arg(private.ort_lib)
            .env("DEMOD_VOICE_ESPEAK_LIB", private.espeak_lib)
            .env("DEMOD_VOICE_ESPEAK_DATA", private.espeak_data)
            .arg("--config")
            .arg(self.dir.path().join("config.yaml"))
            .current_dir(self.dir.path());
        for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
            cmd.env_remove(proxy);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
}

fn ok(out: &Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    stderr
}

/// Nothing of `key` in the library: no folder, no stray files, nothing listed.
fn assert_not_installed(env: &Env, key: &str) {
    assert!(!env.voices().join(key).exists(), "{key} must not be installed");
    let listed = demod_voice_core::assets::installed_voices(&env.voices());
    assert!(listed.iter().all(|v| v.name != key), "{key} listed");
}

#[test]
fn the_catalogue_lists_filters_and_is_used_from_the_cache_offline() {
    let env = Env::new();
    let (stdout, stderr) = ok(&env.run(&["voices", "catalog"]));
    assert!(stderr.contains("fetched now"), "{stderr}");
    for key in ["en_GB-joe-medium", "de_DE-corrupt-medium", "nl_NL-dropped-medium"] {
        assert!(stdout.contains(key), "{stdout}");
    }
    assert!(stdout.contains("en_GB en-native (en-english)") && stdout.contains(" MB "), "{stdout}");
    let (stdout, _) = ok(&env.run(&["voices", "catalog", "--language", "en-gb", "--quality", "low"]));
    assert!(stdout.contains("en_GB-joe-low") && !stdout.contains("en_GB-joe-medium"), "{stdout}");
    assert!(!stdout.contains("de_DE"), "{stdout}");

    // JSON carries the fields and the fetch time.
    let (stdout, _) = ok(&env.run(&["voices", "catalog", "--json", "--language", "de"]));
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["voices"].as_array().unwrap().len(), 2);
    assert_eq!(json["voices"][0]["language"]["name_english"], "de-english");
    assert_eq!(json["voices"][0]["installed"], false);
    assert_eq!(json["from_cache"], true, "the second listing uses the fresh cached copy");
    assert_eq!(env.server.requests("/voices.json").len(), 1);

    // Offline: the cache, with its age said.
    let (_, stderr) = ok(&env.run(&["--offline", "voices", "catalog"]));
    assert!(stderr.contains("cached copy") && stderr.contains(" old"), "{stderr}");

    // A stale copy is fetched again; when the server is gone, the stale copy is used with a warning.
    env.write_config("  catalog_max_age_hours: 0.0\n");
    env.server.routes.lock().unwrap().remove("/voices.json");
    let (stdout, stderr) = ok(&env.run(&["voices", "catalog"]));
    assert!(stdout.contains("en_GB-joe-medium"), "{stdout}");
    assert!(stderr.contains("using the cached voice catalogue") && stderr.contains("404"), "{stderr}");

    // Unknown languages and qualities say what there is.
    let err = fails(&env.run(&["voices", "catalog", "--language", "xx"]));
    assert!(err.contains("its languages: de_DE, en_GB"), "{err}");
    let err = fails(&env.run(&["voices", "catalog", "--quality", "ultra"]));
    assert!(err.contains("x_low, low, medium or high"), "{err}");
}

#[test]
fn a_voice_downloads_verified_by_key_or_alias_is_listed_used_and_removed() {
    let env = Env::new();
    let (_, stderr) = ok(&env.run(&["voices", "download", "en-gb-joe-medium"]));
    assert!(stderr.contains("en-gb-joe-medium is an alias of en_GB-joe-medium"), "{stderr}");
    assert!(stderr.contains("size and md5 match"), "{stderr}");
    let model = env.voices().join("en_GB-joe-medium/en_GB-joe-medium.onnx");
    assert_eq!(std::fs::read(&model).unwrap(), *env.model, "the installed model is the served one, whole");
    assert!(!env.voices().join(".downloads/en_GB-joe-medium").exists(), "the staging folder is cleaned up");

    let (stdout, _) = ok(&env.run(&["voices", "catalog", "--language", "en_GB"]));
    let line = stdout.lines().find(|l| l.starts_with("en_GB-joe-medium")).unwrap();
    assert!(line.ends_with("yes"), "{line}");
    let (stdout, _) = ok(&env.run(&["voices", "list"]));
    assert!(stdout.contains("en_GB-joe-medium"), "{stdout}");

    // Already installed: nothing fetched again.
    let before = env.server.requests("/en/en_GB/en_GB-joe-medium/en_GB-joe-medium.onnx").len();
    let (_, stderr) = ok(&env.run(&["voices", "download", "en_GB-joe-medium"]));
    assert!(stderr.contains("already installed"), "{stderr}");
    assert_eq!(env.server.requests("/en/en_GB/en_GB-joe-medium/en_GB-joe-medium.onnx").len(), before);

    // The installed voice speaks, offline.
    let wav = env.dir.path().join("out.wav");
    ok(&env.run(&["--offline", "speak", "--voice", "en_GB-joe-medium", "Hello there.", "-o", wav.to_str().unwrap()]));
    assert!(demod_voice_core::wav::read_wav_mono(&wav).unwrap().0.len() > 10_000);

    let (_, stderr) = ok(&env.run(&["voices", "remove", "en-gb-joe-medium"]));
    assert!(stderr.contains("removed en_GB-joe-medium"), "{stderr}");
    assert_not_installed(&env, "en_GB-joe-medium");
    let err = fails(&env.run(&["voices", "remove", "en_GB-joe-medium"]));
    assert!(err.contains("no voice named `en_GB-joe-medium`"), "{err}");
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let env = Env::new();
    let (_, stderr) = ok(&env.run(&["voices", "download", "nl_NL-dropped-medium"]));
    let path = "/nl/nl_NL/nl_NL-dropped-medium/nl_NL-dropped-medium.onnx";
    let requests = env.server.requests(path);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0], None);
    assert_eq!(requests[1].as_deref(), Some(format!("bytes={}-", env.model.len() / 2).as_str()));
    assert!(stderr.contains("connection broke") || stderr.contains("ended"), "the retry is said: {stderr}");
    let model = env.voices().join("nl_NL-dropped-medium/nl_NL-dropped-medium.onnx");
    assert_eq!(std::fs::read(model).unwrap(), *env.model);
}

#[test]
fn a_copy_that_does_not_match_the_catalogue_installs_nothing() {
    let env = Env::new();
    let err = fails(&env.run(&["voices", "download", "de_DE-corrupt-medium"]));
    assert!(err.contains("does not match the catalogue") && err.contains("md5"), "{err}");
    assert!(err.contains("nothing was installed"), "{err}");
    assert_not_installed(&env, "de_DE-corrupt-medium");
    assert!(!env.voices().join(".downloads/de_DE-corrupt-medium").exists(), "no bad copy kept to resume from");

    let err = fails(&env.run(&["voices", "download", "de_DE-short-low"]));
    assert!(err.contains("ended the file at") || err.contains("does not match"), "{err}");
    assert_not_installed(&env, "de_DE-short-low");
}

#[test]
fn missing_files_slow_servers_and_unknown_keys_get_one_clear_line() {
    let env = Env::new();
    let err = fails(&env.run(&["voices", "download", "fr_FR-missing-low"]));
    assert!(err.contains("404") && err.contains("--refresh"), "{err}");
    assert_not_installed(&env, "fr_FR-missing-low");

    let err = fails(&env.run(&["voices", "download", "es_ES-slow-low"]));
    assert!(err.contains("no answer within 1 s") && err.contains("voices.timeout_s"), "{err}");
    assert!(err.contains("2 tries"), "one retry was made: {err}");
    assert_not_installed(&env, "es_ES-slow-low");

    let err = fails(&env.run(&["voices", "download", "en_GB-joe-mediun"]));
    assert!(err.contains("did you mean en_GB-joe-medium"), "{err}");
    assert_eq!(env.run(&["voices", "download", "en_GB-joe-mediun"]).status.code(), Some(2));

    let err = fails(&env.run(&["--offline", "voices", "download", "en_GB-joe-medium"]));
    assert!(err.contains("--offline"), "{err}");
}

#[test]
fn a_catalogue_key_or_a_language_installs_its_voice_on_first_use() {
    let env = Env::new();
    // --voice KEY: installed with the one-line notice, then used.
    let wav = env.dir.path().join("a.wav");
    let (_, stderr) = ok(&env.run(&["speak", "--voice", "en_GB-joe-low", "First use.", "-o", wav.to_str().unwrap()]));
    assert!(stderr.contains("first use: installing voice en_GB-joe-low"), "{stderr}");
    assert!(env.voices().join("en_GB-joe-low/en_GB-joe-low.onnx").is_file());

    // --language CODE: the installed voice of it is used (no fetch), even offline...
    let wav = env.dir.path().join("b.wav");
    let (_, stderr) =
        ok(&env.run(&["--offline", "speak", "--language", "en-GB", "Second.", "-o", wav.to_str().unwrap()]));
    assert!(!stderr.contains("installing"), "{stderr}");
    // ...and with none of it installed, the catalogue's best quality for it is installed.
    let (_, stderr) = ok(&env.run(&["speak", "-l", "nl", "Derde.", "-o", wav.to_str().unwrap()]));
    assert!(stderr.contains("installing voice nl_NL-dropped-medium"), "{stderr}");
    // Offline, a key that is not installed is refused with what to do.
    let err = fails(&env.run(&["--offline", "speak", "--voice", "de_DE-short-low", "x", "-o", "c.wav"]));
    assert!(err.contains("voices download de_DE-short-low"), "{err}");
    assert!(!Path::new(&env.dir.path().join("c.wav")).exists());

    // A language no voice speaks.
    let err = fails(&env.run(&["speak", "--language", "sw", "x", "-o", "d.wav"]));
    assert!(err.contains("no voice speaks `sw`"), "{err}");
}

#[test]
fn a_batch_rows_language_installs_the_catalogues_voice_once() {
    let env = Env::new();
    env.write_config("tts:\n  voice: en_GB-joe-low\n");
    std::fs::write(
        env.dir.path().join("jobs.csv"),
        "reference,text,output,language,speaker\n,Good morning.,a.wav,en_GB,\n,Goede morgen.,b.wav,nl_NL,\n,Dag.,c.wav,nl,\n",
    )
    .unwrap();
    let (_, stderr) = ok(&env.run(&["batch", "jobs.csv", "--jobs", "2"]));
    assert_eq!(stderr.matches("installing voice nl_NL-dropped-medium").count(), 1, "{stderr}");
    for wav in ["a.wav", "b.wav", "c.wav"] {
        assert!(env.dir.path().join(wav).is_file(), "{wav}: {stderr}");
    }
    assert!(env.voices().join("nl_NL-dropped-medium/nl_NL-dropped-medium.onnx").is_file());
}

#[test]
fn downloads_go_through_the_proxy_the_environment_names() {
    let env = Env::new();
    // A host that does not exist: only a proxy can answer for it.
    env.write_config("");
    let config = std::fs::read_to_string(env.dir.path().join("config.yaml")).unwrap();
    let config = config.replace(&env.server.base, "http://voices.invalid");
    std::fs::write(env.dir.path().join("config.yaml"), config).unwrap();
    let out =
        env.cmd().env("HTTP_PROXY", &env.server.base).args(["voices", "download", "en_GB-joe-low"]).output().unwrap();
    ok(&out);
    assert_eq!(env.server.requests("proxy:/voices.json").len(), 1);
    assert!(!env.server.requests("proxy:/en/en_GB/en_GB-joe-low/en_GB-joe-low.onnx").is_empty());
    assert!(env.voices().join("en_GB-joe-low/en_GB-joe-low.onnx").is_file());
}
