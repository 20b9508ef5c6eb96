//! The terminal app driven as a user would: the real binary in a real terminal (`tmux`), keys sent with
//! `send-keys`, the screen read with `capture-pane`. Needs `tmux` (installed by `.ci/run`); fails when it is missing.
//!
//! Sound goes through the real ALSA library with a test configuration (`ALSA_CONFIG_PATH`): the default device is
//! ALSA's `file` plugin, which writes what is played to `speaker.raw` (16-bit stereo, 48 kHz) and reads the
//! microphone from `mic.raw`; its clock is ALSA's `null` device, which takes audio as fast as it is given. The
//! "no device" case points the default at a sound card that does not exist.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One tmux server of our own (its own socket), killed when the test ends.
struct Tmux {
    socket: String,
}

/// What the app's default sound device is.
enum Sound {
    /// ALSA's file plugin: `speaker.raw` and `mic.raw` in the folder given.
    Files(std::path::PathBuf),
    /// A card that does not exist: no audio device.
    Missing(std::path::PathBuf),
}

impl Sound {
    /// An ALSA configuration for this case, written to `folder/asound.conf`; the `ALSA_CONFIG_PATH` to use.
    fn configure(&self) -> String {
        let (folder, default) = match self {
            Sound::Files(folder) => {
                // The microphone: a real recording, as 16-bit stereo at 48 kHz.
                let reference =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
                let (samples, rate) = demod_voice_core::wav::read_wav_mono(&reference).unwrap();
                let samples = demod_voice_core::wav::resample(&samples, rate, 48_000).unwrap();
                let mut mic = Vec::with_capacity(samples.len() * 4);
                for s in samples {
                    let v = demod_voice_core::wav::to_i16(s).to_le_bytes();
                    mic.extend_from_slice(&v);
                    mic.extend_from_slice(&v);
                }
                std::fs::create_dir_all(folder).unwrap();
                std::fs::write(folder.join("mic.raw"), mic).unwrap();
                let default = format!(
                    "pcm.!default {{\n type plug\n slave {{ pcm \"testfile\"\n format S16_LE\n rate 48000\n channels 2 }}\n}}\n\
                     pcm.testfile {{\n type file\n slave.pcm \"null\"\n file \"{}\"\n infile \"{}\"\n format \"raw\"\n}}\n",
                    folder.join("speaker.raw").display(),
                    folder.join("mic.raw").display()
                );
                (folder, default)
            }
            Sound::Missing(folder) => (folder, "pcm.!default { type hw card 99 }\n".to_string()),
        };
        std::fs::create_dir_all(folder).unwrap();
        let conf = folder.join("asound.conf");
        std::fs::write(&conf, default).unwrap();
        format!("/usr/share/alsa/alsa.conf:{}", conf.display())
    }
}

impl Tmux {
    /// The app in `dir`, with a private data folder there (profiles land in it) and the real runtime, espeak-ng
    /// and voices.
    fn start(dir: &Path, name: &str, sound: Sound) -> Tmux {
        Tmux::start_with(dir, name, sound, "", "", &[])
    }

    /// The binary with `args` (the app when empty), `config` (more YAML) in its config file and `env` set.
    fn start_with(dir: &Path, name: &str, sound: Sound, config: &str, args: &str, env: &[(&str, &str)]) -> Tmux {
        common::ensure_assets();
        let private = common::private_data_with(dir, config);
        Tmux::launch(dir, name, sound, &private.config, &format!("--offline {args}"), env)
    }

    /// The binary with the config file `config` (written by the caller) and `args`; online unless they say
    /// `--offline`.
    fn launch(dir: &Path, name: &str, sound: Sound, config: &Path, args: &str, env: &[(&str, &str)]) -> Tmux {
        common::ensure_assets();
        let alsa = sound.configure();
        let socket = format!("demod-voice-test-{}-{name}", std::process::id());
        let bin = env!("CARGO_BIN_EXE_demod-voice");
        let private = common::private_data_paths(dir);
        let script = format!(
            "cd '{}' && env -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u http_proxy -u https_proxy -u all_proxy \
             ALSA_CONFIG_PATH='{alsa}' DEMOD_VOICE_ESPEAK_LIB='{}' DEMOD_VOICE_ESPEAK_DATA='{}' '{bin}' \
             --ort-lib '{}' --config '{}' {args}; echo EXITED=$?; exec sleep 120",
            dir.display(),
            private.espeak_lib.display(),
            private.espeak_data.display(),
            private.ort_lib.display(),
            config.display()
        );
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", "app", "-x", "100", "-y", "30", &script])
            .env_remove("TMUX")
            .envs(env.iter().copied())
            .status()
            .expect("tmux must be installed for this test (apt install tmux)");
        assert!(status.success(), "tmux could not start a session");
        Tmux { socket }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "app"])
    }

    fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.tmux(&["send-keys", "-t", "app", key]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "app", "-l", text]);
    }

    /// Wait until the screen shows `needle`; the screen on timeout.
    fn wait_for(&self, needle: &str, seconds: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(Instant::now() < deadline, "waited {seconds} s for {needle:?}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alternate_screen_on(&self) -> bool {
        self.tmux(&["display-message", "-p", "-t", "app", "#{alternate_on}"]).trim() == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

#[test]
fn type_save_switch_screens_and_quit_in_a_real_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let sound = dir.path().join("sound");
    let tmux = Tmux::start(dir.path(), "save", Sound::Files(sound.clone()));
    tmux.wait_for("1 Synthesize", 20);
    assert!(tmux.alternate_screen_on(), "the app runs on the alternate screen");

    tmux.type_text("Hello from the terminal app.");
    tmux.wait_for("Hello from the terminal app.", 5);
    tmux.keys(&["C-s"]);
    let screen = tmux.wait_for("saved ", 120);
    assert!(screen.contains("take-001.wav"), "{screen}");

    let wav = dir.path().join("take-001.wav");
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate), (1, 22050));
    let samples: Vec<f64> = reader.samples::<i16>().map(|s| f64::from(s.unwrap()) / 32768.0).collect();
    let seconds = samples.len() as f64 / 22050.0;
    assert!((0.8..6.0).contains(&seconds), "five words took {seconds:.2} s");
    let rms = (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt();
    assert!(rms > 0.01, "the take is near silence (rms {rms})");

    // Speak: through the (file-backed) default device.
    tmux.wait_for("Playback: ", 5);
    tmux.keys(&["C-p"]);
    let screen = tmux.wait_for("spoke ", 120);
    assert!(screen.contains("first audio after") && screen.contains("spoken "), "{screen}");
    let raw = std::fs::read(sound.join("speaker.raw")).unwrap();
    let frames: Vec<(i16, i16)> =
        raw.chunks_exact(4).map(|f| (i16::from_le_bytes([f[0], f[1]]), i16::from_le_bytes([f[2], f[3]]))).collect();
    assert!(frames.iter().all(|(l, r)| l == r), "both channels carry the voice");
    let loud: Vec<usize> =
        frames.iter().enumerate().filter(|(_, f)| f.0.unsigned_abs() > 1000).map(|(i, _)| i).collect();
    let span = (loud.last().unwrap() - loud[0]) as f64 / 48_000.0;
    assert!((0.8..6.0).contains(&span), "the device heard {span:.2} s of speech for five words");
    // The Live screen: microphone -> converter -> speakers, started and stopped.
    tmux.keys(&["Escape", "2"]);
    tmux.wait_for("Live: stopped (Space starts)", 5);
    tmux.keys(&["Space"]);
    let screen = tmux.wait_for("Live: converting (Space stops)", 20);
    assert!(screen.contains("latency ") && screen.contains(" at 48000 Hz"), "{screen}");
    tmux.wait_for(" hops", 10);
    tmux.keys(&["Space"]);
    tmux.wait_for("live conversion stopped", 10);

    tmux.keys(&["4"]);
    let screen = tmux.wait_for("Installed voices", 5);
    assert!(screen.contains("en_US-joe-medium"), "{screen}");
    assert!(screen.contains("no profiles yet"), "{screen}");
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
    std::fs::copy(&reference, dir.path().join("reader.wav")).unwrap();
    tmux.keys(&["a"]);
    tmux.type_text(&dir.path().join("reader.wav").display().to_string());
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("added profile `reader`", 60);
    assert!(screen.contains("reader") && screen.contains(" Hz"), "{screen}");
    assert!(dir.path().join("data/profiles/reader.yaml").is_file(), "the profile is saved in the data folder");
    std::fs::write(
        dir.path().join("lines.csv"),
        "text,output,voice\nA short batch line.,batch/one.wav,\nThis voice is missing.,batch/two.wav,no-such-voice\n,batch/empty.wav,\n",
    )
    .unwrap();
    tmux.keys(&["3", "o"]);
    tmux.type_text(&dir.path().join("lines.csv").display().to_string());
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("batch finished", 120);
    assert!(screen.contains("2/2 jobs, 1 failed, 1 invalid"), "{screen}");
    assert!(screen.contains("row 2 (batch/two.wav):") && screen.contains("no-such-voice"), "{screen}");
    assert!(screen.contains("invalid row 3"), "{screen}");
    let one = hound::WavReader::open(dir.path().join("batch/one.wav")).unwrap();
    assert!(one.duration() > 22050 / 2, "the batch line is at least half a second");
    assert!(!dir.path().join("batch/two.wav").exists(), "a failed job leaves no file");
    tmux.keys(&["5"]);
    let screen = tmux.wait_for("Health (r: check again)", 5);
    assert!(screen.contains("ok") && screen.contains("runtime"), "{screen}");
    tmux.keys(&["r"]);
    tmux.wait_for("health checked:", 20);
    tmux.keys(&["?"]);
    tmux.wait_for("q / Ctrl-C", 5);
    tmux.keys(&["Space", "1"]);
    tmux.wait_for("take-001.wav", 5);
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("EXITED=0", 10);
    assert!(!screen.contains("Synthesize"), "the app's frame is gone after quitting:\n{screen}");
    assert!(!tmux.alternate_screen_on(), "the terminal is back on the normal screen");
}

#[test]
fn the_batch_screen_follows_a_run_started_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(dir.path(), "watch", Sound::Missing(dir.path().join("sound")));
    tmux.wait_for("1 Synthesize", 20);
    let manifest = dir.path().join("lines.csv");
    std::fs::write(
        &manifest,
        "text,output,voice\nThe first line.,out/one.wav,\nA second line.,out/two.wav,no-such-voice\nThe third line.,out/three.wav,\n",
    )
    .unwrap();
    tmux.keys(&["Escape", "3", "w"]);
    tmux.type_text(&manifest.display().to_string());
    tmux.keys(&["Enter"]);
    tmux.wait_for("waiting for `demod-voice batch", 10);
    let private = common::private_data(dir.path());
    let batch = Command::new(env!("CARGO_BIN_EXE_demod-voice"))
        .current_dir(dir.path())
        .env("DEMOD_VOICE_ESPEAK_LIB", &private.espeak_lib)
        .env("DEMOD_VOICE_ESPEAK_DATA", &private.espeak_data)
        .args(["--offline", "--ort-lib"])
        .arg(&private.ort_lib)
        .arg("--config")
        .arg(&private.config)
        .args(["batch", "lines.csv", "--headless"])
        .output()
        .unwrap();
    assert_eq!(batch.status.code(), Some(1), "one job fails: {}", String::from_utf8_lossy(&batch.stderr));
    let screen = tmux.wait_for("watched batch finished", 30);
    assert!(screen.contains("3/3 jobs, 1 failed"), "{screen}");
    assert!(screen.contains("no-such-voice"), "the failure's error text is shown:\n{screen}");
    assert!(screen.contains("out/three.wav"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("EXITED=0", 10);
}

#[test]
fn ctrl_c_quits_and_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(dir.path(), "ctrlc", Sound::Missing(dir.path().join("sound")));
    let screen = tmux.wait_for("1 Synthesize", 20);
    assert!(screen.contains("no audio output"), "no sound card is said on the status line:\n{screen}");
    tmux.type_text("unsaved words");
    tmux.keys(&["C-p"]);
    tmux.wait_for("Ctrl-S still saves", 5);
    tmux.keys(&["C-c"]);
    tmux.wait_for("EXITED=0", 10);
    assert!(!tmux.alternate_screen_on());
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    let mut written: Vec<_> = written.iter().map(|n| n.to_string_lossy().into_owned()).collect();
    written.sort();
    assert_eq!(written, ["config.yaml", "sound"], "quitting writes nothing (beside the test's own files)");
}

/// The first process whose parent is `parent` (from /proc: no procps needed).
fn child_of(parent: i32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
        let ppid: i32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
}

/// Hardening: `kill` (SIGTERM) or a closed terminal (SIGHUP) while the app is up: the terminal is restored before
/// the process ends with 128+N (it used to be left in the app's raw mode and alternate screen).
#[test]
fn a_terminated_app_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(dir.path(), "sigterm", Sound::Missing(dir.path().join("sound")));
    tmux.wait_for("1 Synthesize", 20);
    assert!(tmux.alternate_screen_on());
    // The pane runs a shell whose child is the app.
    let shell: i32 = tmux.tmux(&["display-message", "-p", "-t", "app", "#{pane_pid}"]).trim().parse().unwrap();
    let app = child_of(shell).unwrap_or_else(|| panic!("the app's process was not found under the pane's shell"));
    // SAFETY: signalling a process this test started.
    assert_eq!(unsafe { libc::kill(app, libc::SIGTERM) }, 0);
    tmux.wait_for("EXITED=143", 10);
    assert!(!tmux.alternate_screen_on(), "the terminal is back from the app's screen");
}

/// Hardening: a panic on a helper thread (here the input thread, through a fault only debug builds have) used to
/// restore the terminal while the app kept running, blind; now the process ends, the terminal restored.
#[test]
fn a_helper_threads_panic_ends_the_app_with_the_terminal_restored() {
    let dir = tempfile::tempdir().unwrap();
    let fault = [("DEMOD_VOICE_TEST_FAULT", "input-thread")];
    let tmux = Tmux::start_with(dir.path(), "fault", Sound::Missing(dir.path().join("sound")), "", "", &fault);
    tmux.wait_for("1 Synthesize", 20);
    tmux.keys(&["F12"]);
    let screen = tmux.wait_for("EXITED=101", 10);
    assert!(screen.contains("injected fault"), "the panic's message is shown:\n{screen}");
    assert!(!tmux.alternate_screen_on(), "the terminal is back from the app's screen");
}

#[test]
fn without_a_terminal_the_app_refuses_with_a_usage_error() {
    for args in [&["--offline"][..], &["--offline", "tui"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_demod-voice")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains("--help") && stderr.lines().count() == 1, "{stderr}");
    }
}

/// The binary with the private data folder of `dir` (its config file already written), headless.
fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    let private = common::private_data_paths(dir);
    Command::new(env!("CARGO_BIN_EXE_demod-voice"))
        .current_dir(dir)
        .env("DEMOD_VOICE_ESPEAK_LIB", &private.espeak_lib)
        .env("DEMOD_VOICE_ESPEAK_DATA", &private.espeak_data)
        .args(["--offline", "--ort-lib"])
        .arg(&private.ort_lib)
        .arg("--config")
        .arg(&private.config)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn speak_batch_clone_and_the_apps_save_write_the_same_bytes() {
    // Zero noise makes the model deterministic, so one pipeline must mean one result.
    const TEXT: &str = "The same words, spoken four ways.";
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start_with(
        dir.path(),
        "same",
        Sound::Missing(dir.path().join("sound")),
        "tts:\n  noise_scale: 0\n  noise_w: 0\n",
        "",
        &[],
    );
    tmux.wait_for("1 Synthesize", 20);
    tmux.type_text(TEXT);
    tmux.wait_for("four ways.", 5);
    tmux.keys(&["C-s"]);
    tmux.wait_for("saved ", 120);
    tmux.keys(&["Escape", "q"]);
    tmux.wait_for("EXITED=0", 10);

    ok(&cli(dir.path(), &["speak", TEXT, "-o", "speak.wav"]));
    std::fs::write(dir.path().join("jobs.csv"), format!("text,output\n{TEXT:?},batch.wav\n")).unwrap();
    ok(&cli(dir.path(), &["batch", "jobs.csv", "--headless"]));
    let model = demod_voice_core::assets::Dirs::from_env().voices_dir().join("en_US-joe-medium.onnx");
    ok(&cli(dir.path(), &["piper-infer", model.to_str().unwrap(), TEXT, "--output", "piper-infer.wav"]));
    let take = std::fs::read(dir.path().join("take-001.wav")).unwrap();
    for other in ["speak.wav", "batch.wav", "piper-infer.wav"] {
        assert!(take == std::fs::read(dir.path().join(other)).unwrap(), "the app's Save and {other} differ");
    }

    // Cloning: the old spelling and a batch row with a reference run the same conversion.
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
    std::fs::copy(&reference, dir.path().join("reader.wav")).unwrap();
    ok(&cli(dir.path(), &["xtts-zero-shot", "reader.wav", TEXT, "--output", "clone.wav"]));
    std::fs::write(
        dir.path().join("clones.csv"),
        format!("reference,text,output\nreader.wav,{TEXT:?},batch-clone.wav\n"),
    )
    .unwrap();
    ok(&cli(dir.path(), &["batch", "clones.csv", "--headless"]));
    let clone = std::fs::read(dir.path().join("clone.wav")).unwrap();
    assert!(clone == std::fs::read(dir.path().join("batch-clone.wav")).unwrap(), "xtts-zero-shot and batch differ");
    assert!(clone != take, "the clone is converted");
}

#[test]
fn batch_on_a_terminal_shows_the_batch_screen_and_writes_what_headless_writes() {
    let manifest = "text,output\nThe first line.,out/one.wav\nA second line.,out/two.wav\n";
    let config = "tts:\n  noise_scale: 0\n  noise_w: 0\n";
    let shown = tempfile::tempdir().unwrap();
    std::fs::write(shown.path().join("lines.csv"), manifest).unwrap();
    let tmux = Tmux::start_with(
        shown.path(),
        "batchapp",
        Sound::Missing(shown.path().join("sound")),
        config,
        "batch lines.csv",
        &[],
    );
    let screen = tmux.wait_for("q quits", 120);
    assert!(screen.contains("3 Batch") && screen.contains("2/2 jobs, 0 failed"), "{screen}");
    assert!(screen.contains("out/one.wav") && screen.contains("done"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("EXITED=0", 20);

    let headless = tempfile::tempdir().unwrap();
    std::fs::write(headless.path().join("lines.csv"), manifest).unwrap();
    common::private_data_with(headless.path(), config);
    ok(&cli(headless.path(), &["batch", "lines.csv"]));
    for output in ["out/one.wav", "out/two.wav"] {
        let a = std::fs::read(shown.path().join(output)).unwrap();
        assert!(a == std::fs::read(headless.path().join(output)).unwrap(), "{output} differs");
    }
    let journal = |dir: &Path| {
        let mut entries: Vec<(String, String)> =
            demod_voice_core::batch::read_journal(&dir.join(".lines.csv.journal.jsonl"))
                .into_iter()
                .map(|e| (e.output, e.sha256))
                .collect();
        entries.sort();
        entries
    };
    assert_eq!(journal(shown.path()), journal(headless.path()));
    assert_eq!(journal(shown.path()).len(), 2);
}

#[test]
fn the_voices_screen_lists_the_catalogue_and_downloads_a_voice_resuming_a_dropped_connection() {
    use common::catalog_server::{entry, real_voice, Route, Server};
    let dir = tempfile::tempdir().unwrap();
    let (model, config) = real_voice();
    let server = Server::start();
    let mut catalog = serde_json::Map::new();
    for (key, language) in [("en_GB-joe-medium", "en_GB"), ("de_DE-joe-low", "de_DE")] {
        let mut json: serde_json::Value = serde_json::from_slice(&config).unwrap();
        json["language"]["code"] = language.into();
        let voice_config = std::sync::Arc::new(serde_json::to_vec(&json).unwrap());
        let folder = format!("/{}/{language}/{key}", &language[..2]);
        // The model comes in two halves with a dropped connection between: the app resumes it.
        server.route(&format!("{folder}/{key}.onnx"), Route::DropOnce(model.clone(), model.len() / 2));
        server.route(&format!("{folder}/{key}.onnx.json"), Route::File(voice_config.clone()));
        let quality = key.rsplit('-').next().unwrap();
        catalog.insert(key.into(), entry(key, language, quality, &model, &voice_config, &[]));
    }
    server.route("/voices.json", Route::File(std::sync::Arc::new(serde_json::to_vec(&catalog).unwrap())));
    let d = dir.path();
    let config_path = d.join("config.yaml");
    std::fs::write(
        &config_path,
        format!(
            "paths:\n  data: {}\n  voices: {}\n  cache: {}\nvoices:\n  catalog_url: {}/voices.json\n  base_url: {}/\n  \
             timeout_s: 2.0\n  retries: 2\n",
            d.join("data").display(),
            d.join("voices").display(),
            d.join("cache").display(),
            server.base,
            server.base
        ),
    )
    .unwrap();
    let app = Tmux::launch(d, "catalogue", Sound::Missing(d.join("alsa")), &config_path, "", &[]);
    app.wait_for("Synthesize", 20);
    app.keys(&["Escape", "4", "c"]);
    app.wait_for("de_DE-joe-low", 20);
    app.keys(&["f"]);
    app.type_text("en");
    app.keys(&["Enter"]);
    let screen = app.wait_for("1 of 2", 10);
    assert!(screen.contains("en_GB-joe-medium") && !screen.contains("de_DE-joe-low"), "{screen}");
    app.keys(&["d"]);
    let screen = app.wait_for("installed en_GB-joe-medium", 60);
    assert!(screen.lines().any(|l| l.contains("en_GB-joe-medium") && l.contains("yes")), "{screen}");
    assert_eq!(std::fs::read(d.join("voices/en_GB-joe-medium/en_GB-joe-medium.onnx")).unwrap(), *model);
    // The new voice is in the Synthesize screen's picker.
    app.keys(&["c"]);
    app.wait_for("Installed voices", 10);
    assert!(app.screen().contains("en_GB-joe-medium"));
    app.keys(&["q"]);
    app.wait_for("EXITED=0", 10);
}

#[test]
fn with_a_speech_server_the_apps_save_goes_through_it_and_writes_what_speak_writes() {
    const TEXT: &str = "Saved through the speech server.";
    let dir = tempfile::tempdir().unwrap();
    let private = common::private_data_with(dir.path(), "tts:\n  noise_scale: 0\n  noise_w: 0\n");
    let mut server = Command::new(env!("CARGO_BIN_EXE_demod-voice"))
        .env("DEMOD_VOICE_ESPEAK_LIB", &private.espeak_lib)
        .env("DEMOD_VOICE_ESPEAK_DATA", &private.espeak_data)
        .args(["--offline", "--ort-lib"])
        .arg(&private.ort_lib)
        .args(["serve", "--http", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(server.stderr.take().unwrap()));
    let address = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("http://").map(str::to_string)))
        .unwrap();
    let url = format!("http://{address}");
    let tmux = Tmux::start_with(
        dir.path(),
        "server",
        Sound::Missing(dir.path().join("sound")),
        "tts:\n  noise_scale: 0\n  noise_w: 0\n",
        "",
        &[("DEMOD_VOICE_SERVER", url.as_str())],
    );
    tmux.wait_for("1 Synthesize", 20);
    tmux.type_text(TEXT);
    tmux.wait_for("speech server.", 5);
    tmux.keys(&["C-s"]);
    tmux.wait_for("saved ", 60);
    tmux.keys(&["Escape", "q"]);
    tmux.wait_for("EXITED=0", 10);
    ok(&cli(dir.path(), &["speak", TEXT, "-o", "speak.wav"]));
    let take = std::fs::read(dir.path().join("take-001.wav")).unwrap();
    assert!(take == std::fs::read(dir.path().join("speak.wav")).unwrap(), "the app's Save through the server differs");
    // It did go through the server.
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    std::io::Write::write_all(&mut stream, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut metrics = String::new();
    std::io::Read::read_to_string(&mut stream, &mut metrics).unwrap();
    assert!(metrics.contains(r#"endpoint="POST /v1/audio/speech",status="200"} 1"#), "{metrics}");
    let _ = server.kill();
    let _ = server.wait();
}
