use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::jobs::{guarded, JOB_THREAD};
use super::messages::TakeAudio;
use super::screens::batch::watch_batch;
use super::screens::live::LiveInfo;
use super::screens::synthesize::PlaySource;
use super::*;
use crate::health::Status;

fn joe() -> VoiceInfo {
    VoiceInfo {
        name: "en_US-joe-medium".into(),
        language: "en_US".into(),
        quality: "medium".into(),
        sample_rate: 22050,
        speakers: 1,
        speaker_names: Vec::new(),
        model: PathBuf::from("/voices/en_US-joe-medium.onnx"),
        problem: None,
    }
}

fn app() -> App {
    let checks = vec![
        CheckInfo { name: "runtime".into(), status: Status::Ok, message: "ONNX Runtime 1.31.1".into(), hint: None },
        CheckInfo {
            name: "gpu".into(),
            status: Status::Warning,
            message: "no CUDA device".into(),
            hint: Some("install a driver".into()),
        },
    ];
    App::new(vec![joe()], vec!["warm".into(), "fast".into()], checks, PathBuf::from("/tmp/takes"))
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// Render on an 80x24 test terminal and return the screen as lines.
fn screen(app: &App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|frame| frame.render_widget(app, frame.area())).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..buffer.area.height)
        .map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>())
        .collect()
}

fn shows(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|line| line.contains(needle))
}

fn press(app: &mut App, event: KeyEvent) -> Option<Job> {
    app.action_for(event).and_then(|action| app.update(action))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, key(KeyCode::Char(c)));
    }
}

#[test]
fn synthesize_screen_shows_text_controls_and_empty_history() {
    let mut app = app();
    type_text(&mut app, "Hello there.");
    let lines = screen(&app);
    assert!(
        lines[0].contains("1 Synthesize") && lines[0].contains("2 Live") && lines[0].contains("5 Health"),
        "{lines:#?}"
    );
    assert!(shows(&lines, "Hello there.▏"), "{lines:#?}");
    assert!(shows(&lines, "en_US-joe-medium"));
    assert!(shows(&lines, "length") && shows(&lines, "1.00"));
    assert!(shows(&lines, "no takes yet"));
    assert!(lines[23].starts_with("EDIT"), "status line: {}", lines[23]);
}

#[test]
fn synthesize_screen_without_voices_says_how_to_install_one() {
    let app = App::new(Vec::new(), Vec::new(), Vec::new(), PathBuf::from("."));
    let lines = screen(&app);
    assert!(shows(&lines, "(none installed)"), "{lines:#?}");
    assert!(lines[23].contains("demod-voice setup"), "{}", lines[23]);
}

#[test]
fn history_shows_saved_and_failed_takes() {
    let mut app = app();
    type_text(&mut app, "One.");
    let job = press(&mut app, ctrl('s')).expect("a job");
    let Job::Synthesize { path, .. } = job else { panic!("{job:?}") };
    assert!(shows(&screen(&app), "saving /tmp/takes/take-001.wav"));
    app.saved(path, Ok(1.25));
    type_text(&mut app, " Two.");
    let Some(Job::Synthesize { path, .. }) = press(&mut app, ctrl('s')) else { panic!("a second job") };
    app.saved(path, Err("disk full".into()));
    let lines = screen(&app);
    assert!(shows(&lines, "take-001.wav    1.2 s  One."), "{lines:#?}");
    assert!(shows(&lines, "▶ take-002.wav"), "the newest entry is the one p plays: {lines:#?}");
    assert!(shows(&lines, "take-002.wav  failed: disk full"), "{lines:#?}");
    assert!(lines[23].contains("saving /tmp/takes/take-002.wav failed: disk full"));
}

#[test]
fn voices_screen_lists_voices_problems_and_the_empty_case() {
    let mut app = app();
    app.voices.push(VoiceInfo { problem: Some("config missing".into()), name: "broken".into(), ..joe() });
    app.update(Action::Goto(Screen::Voices));
    let lines = screen(&app);
    assert!(shows(&lines, "NAME") && shows(&lines, "en_US-joe-medium") && shows(&lines, "22050"), "{lines:#?}");
    assert!(shows(&lines, "broken: config missing"), "{lines:#?}");

    let mut empty = App::new(Vec::new(), Vec::new(), Vec::new(), PathBuf::from("."));
    empty.update(Action::Goto(Screen::Voices));
    assert!(shows(&screen(&empty), "no voices installed; run `demod-voice setup`"));
}

#[test]
fn health_screen_lists_checks_with_hints_and_the_empty_case() {
    let mut app = app();
    app.checks.push(CheckInfo {
        name: "espeak".into(),
        status: Status::Error,
        message: "espeak-ng data missing".into(),
        hint: None,
    });
    app.update(Action::Goto(Screen::Health));
    let lines = screen(&app);
    assert!(shows(&lines, "ok      runtime      ONNX Runtime 1.31.1"), "{lines:#?}");
    assert!(shows(&lines, "warning gpu          no CUDA device"));
    assert!(shows(&lines, "hint: install a driver"));
    assert!(shows(&lines, "error   espeak       espeak-ng data missing"));

    let mut empty = App::new(Vec::new(), Vec::new(), Vec::new(), PathBuf::from("."));
    empty.update(Action::Goto(Screen::Health));
    assert!(shows(&screen(&empty), "no checks ran"));
}

#[test]
fn help_overlay_opens_with_question_mark_and_any_key_closes_it() {
    let mut app = app();
    press(&mut app, key(KeyCode::Esc));
    press(&mut app, key(KeyCode::Char('?')));
    assert!(shows(&screen(&app), "Ctrl-S            save the text"));
    press(&mut app, key(KeyCode::Char('x')));
    assert!(!app.show_help);
    assert!(!shows(&screen(&app), "Ctrl-S            save the text"));
}

#[test]
fn typing_goes_into_the_text_and_esc_returns_to_the_keys() {
    let mut app = app();
    type_text(&mut app, "q1?");
    assert_eq!(app.text, "q1?", "letters that are commands elsewhere are text while editing");
    assert!(!app.quit);
    press(&mut app, key(KeyCode::Enter));
    press(&mut app, key(KeyCode::Backspace));
    press(&mut app, key(KeyCode::Backspace));
    assert_eq!(app.text, "q1");
    press(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
    press(&mut app, key(KeyCode::Char('2')));
    assert_eq!(app.screen, Screen::Live);
    press(&mut app, key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Batch);
    press(&mut app, key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Voices);
    press(&mut app, key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Health);
    press(&mut app, key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Synthesize);
    press(&mut app, KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.screen, Screen::Health);
    press(&mut app, key(KeyCode::Char('q')));
    assert!(app.quit);
}

#[test]
fn ctrl_c_quits_even_while_typing() {
    let mut app = app();
    type_text(&mut app, "abc");
    press(&mut app, ctrl('c'));
    assert!(app.quit);
    assert_eq!(app.text, "abc");
}

#[test]
fn controls_change_within_their_bounds_and_reach_the_job() {
    let mut app = app();
    type_text(&mut app, "Hi.");
    press(&mut app, key(KeyCode::Esc));
    // voice -> speaker (one speaker: nothing to change) -> preset: cycles (none) -> warm -> similarity to ->
    // output device
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Right));
    assert_eq!(app.speaker, 0);
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Right));
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Down));
    // length: 1.0 -> 1.1
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Right));
    press(&mut app, key(KeyCode::Right));
    // volume at the bottom: down past the end stays there; turn it to zero and below
    for _ in 0..10 {
        press(&mut app, key(KeyCode::Down));
    }
    for _ in 0..100 {
        press(&mut app, key(KeyCode::Left));
    }
    assert_eq!(app.volume, 0.0);
    let Some(Job::Synthesize { scales, voice, text, path }) = press(&mut app, ctrl('s')) else { panic!("a job") };
    assert_eq!(text, "Hi.");
    assert_eq!(voice.as_deref(), Some("en_US-joe-medium"));
    assert_eq!(path, PathBuf::from("/tmp/takes/take-001.wav"));
    assert_eq!(scales.preset.as_deref(), Some("warm"));
    assert!((scales.length_scale.unwrap() - 1.1).abs() < 1e-6);
    assert_eq!(scales.volume, Some(0.0));
}

/// The Synthesize screen scores each take against the picked profile: a saved take asks for a Score job, and
/// the score shows in the history.
#[test]
fn takes_are_scored_against_the_picked_profile() {
    let mut app = app();
    app.profiles = vec![tale(Some(demod_voice_core::speaker::Embedding::new(vec![1.0, 0.0])))];
    press(&mut app, key(KeyCode::Esc));
    app.control = Control::ALL.iter().position(|c| *c == Control::Compare).unwrap();
    press(&mut app, key(KeyCode::Right));
    assert!(shows(&screen(&app), "similarity to     tale"), "{:#?}", screen(&app));
    type_text(&mut app, "Hi.");
    press(&mut app, key(KeyCode::Esc));
    let Some(Job::Synthesize { path, .. }) = press(&mut app, ctrl('s')) else { panic!("a save job") };
    app.saved(path.clone(), Ok(0.8));
    let Some(Job::Score { take, source: TakeAudio::File(scored), profile, .. }) = app.pending.pop() else {
        panic!("a score job for the saved take")
    };
    assert_eq!((scored, profile.as_str()), (path, "tale"));
    app.scored(take, Ok(("tale".into(), 0.61)));
    assert!(shows(&screen(&app), "0.61 ~tale"), "{:#?}", screen(&app));
    // With no profile picked, nothing is scored.
    press(&mut app, key(KeyCode::Left));
    app.saved(PathBuf::from("/tmp/takes/take-002.wav"), Ok(0.8));
    assert!(app.pending.is_empty());
}

#[test]
fn save_refuses_empty_text_and_a_second_take_while_busy() {
    let mut app = app();
    assert!(press(&mut app, ctrl('s')).is_none());
    assert!(app.status.contains("nothing to save"));
    type_text(&mut app, "Hi.");
    assert!(press(&mut app, ctrl('s')).is_some());
    assert!(press(&mut app, ctrl('s')).is_none());
    assert!(app.status.contains("still saving"));
}

#[test]
fn run_loop_draws_handles_keys_and_jobs_and_stops_on_quit() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut app = app();
    let (sender, receiver) = mpsc::channel();
    for c in "Hey.".chars() {
        sender.send(AppEvent::Key(key(KeyCode::Char(c)))).unwrap();
    }
    sender.send(AppEvent::Key(ctrl('s'))).unwrap();
    sender.send(AppEvent::Resize).unwrap();
    let mut jobs = Vec::new();
    let results = sender.clone();
    let quit = sender.clone();
    run_loop(&mut terminal, &mut app, &receiver, |job| {
        let Job::Synthesize { path, .. } = &job else { panic!("{job:?}") };
        results.send(AppEvent::Saved { path: path.clone(), outcome: Ok(0.8) }).unwrap();
        quit.send(AppEvent::Key(ctrl('c'))).unwrap();
        jobs.push(job);
    })
    .unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(app.quit);
    assert_eq!(app.history.len(), 1);
    assert!(app.status.contains("saved /tmp/takes/take-001.wav (0.8 s)"), "{}", app.status);
}

#[test]
fn a_quick_esc_then_key_arriving_as_alt_key_leaves_editing() {
    let mut app = app();
    type_text(&mut app, "Hi");
    press(&mut app, KeyEvent::new(KeyCode::Char('2'), KeyModifiers::ALT));
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.text, "Hi", "the key is not typed");
}

#[test]
fn every_screen_draws_at_any_size_without_panicking() {
    let mut app = app();
    app.show_help = true;
    app.history.push(Utterance {
        text: "x".repeat(300),
        path: Some(PathBuf::from("/tmp/t.wav")),
        audio: None,
        outcome: Ok(1.0),
        id: 0,
        similarity: None,
    });
    for screen in Screen::ALL {
        app.screen = screen;
        for (width, height) in [(1, 1), (5, 3), (20, 6), (39, 10), (200, 60)] {
            let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
            terminal.draw(|frame| frame.render_widget(&app, frame.area())).unwrap();
        }
    }
}

#[test]
fn voices_screen_lists_profiles_and_says_how_to_add_one() {
    let mut app = app();
    app.update(Action::Goto(Screen::Voices));
    assert!(shows(&screen(&app), "no profiles yet; press a"));
    app.profiles = vec![
        ProfileInfo {
            name: "alice".into(),
            median_f0_hz: 201.34,
            formant_scale: 1.12,
            voiced_seconds: 4.5,
            similarity: None,
            embedding: None,
            target: Some(demod_voice_core::convert::dsp::Target::new(201.34, 1.12)),
            problem: None,
        },
        ProfileInfo {
            name: "bad".into(),
            median_f0_hz: 0.0,
            formant_scale: 0.0,
            voiced_seconds: 0.0,
            similarity: None,
            embedding: None,
            target: None,
            problem: Some("not a profile".into()),
        },
    ];
    let lines = screen(&app);
    assert!(
        shows(&lines, "alice") && shows(&lines, "201.3 Hz") && shows(&lines, "1.120") && shows(&lines, "4.5 s"),
        "{lines:#?}"
    );
    assert!(shows(&lines, "bad: unusable: not a profile"), "{lines:#?}");
}

#[test]
fn adding_a_profile_prompts_for_a_wav_and_checks_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("carol.wav");
    std::fs::write(&wav, b"RIFF").unwrap();
    let mut app = app();
    press(&mut app, key(KeyCode::Esc));
    press(&mut app, key(KeyCode::Char('4')));
    press(&mut app, key(KeyCode::Char('a')));
    assert_eq!(app.mode, Mode::Prompt);
    type_text(&mut app, "/nowhere/x.wav");
    assert!(shows(&screen(&app), "reference WAV: /nowhere/x.wav"));
    assert!(press(&mut app, key(KeyCode::Enter)).is_none());
    assert!(app.status.contains("/nowhere/x.wav is not a file"), "{}", app.status);
    assert_eq!(app.mode, Mode::Prompt, "still asking");
    for _ in 0.."/nowhere/x.wav".len() {
        press(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, wav.to_str().unwrap());
    let Some(Job::AddProfile { name, reference }) = press(&mut app, key(KeyCode::Enter)) else { panic!("a job") };
    assert_eq!((name.as_str(), reference), ("carol", wav));
    assert_eq!(app.mode, Mode::Normal);
    app.profile_added("carol".into(), Err("reference recording has only 1.2 s of voiced speech".into()));
    assert!(app.status.contains("adding profile `carol` failed: reference recording has only 1.2 s"));
    press(&mut app, key(KeyCode::Char('a')));
    press(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
    assert!(!app.quit);
}

#[test]
fn r_on_the_health_screen_checks_again_in_the_background() {
    let mut app = app();
    press(&mut app, key(KeyCode::Esc));
    assert!(press(&mut app, key(KeyCode::Char('r'))).is_none(), "r means nothing on Synthesize");
    press(&mut app, key(KeyCode::Char('5')));
    assert!(matches!(press(&mut app, key(KeyCode::Char('r'))), Some(Job::CheckHealth)));
    let fixed = vec![CheckInfo { name: "gpu".into(), status: Status::Ok, message: "CUDA 12".into(), hint: None }];
    app.health_checked(Ok(fixed));
    let lines = screen(&app);
    assert!(shows(&lines, "ok      gpu          CUDA 12") && !shows(&lines, "runtime"), "{lines:#?}");
    assert!(app.status.contains("0 problem(s)"));
    app.health_checked(Err("config file broken".into()));
    assert!(app.status.contains("health check failed: config file broken"));
    assert!(shows(&screen(&app), "CUDA 12"), "the last checks stay on screen");
}

/// A running batch of `jobs` where row 1 is done (4 s of audio in 0.2 s) and row 2 failed.
fn batch_app_one_done_one_failed(jobs: usize) -> App {
    use demod_voice_core::batch::Event;
    let mut app = batch_app(jobs);
    app.batch_event(AppEvent::Batch(Event::Started { row: 1, output: "out/00001.wav".into() }));
    app.batch_event(AppEvent::Batch(Event::Finished {
        row: 1,
        output: "out/00001.wav".into(),
        audio_seconds: 4.0,
        seconds: 0.2,
    }));
    app.batch_event(AppEvent::Batch(Event::Failed {
        row: 2,
        output: "out/00002.wav".into(),
        error: "voice `nope` is not installed".into(),
    }));
    app
}

fn batch_app(jobs: usize) -> App {
    let mut app = app();
    app.update(Action::StopEditing);
    app.update(Action::Goto(Screen::Batch));
    let job = app.start_batch(PathBuf::from("/data/lines.csv"));
    assert!(matches!(job, Job::RunBatch { .. }));
    let rows = (1..=jobs).map(|row| (row, format!("out/{row:05}.wav"))).collect();
    app.batch_event(AppEvent::BatchLoaded { rows, invalid: vec!["row 7, column `text`: empty".into()] });
    app
}

#[test]
fn batch_screen_empty_running_and_finished_with_failures() {
    let mut app = app();
    app.update(Action::StopEditing);
    press(&mut app, key(KeyCode::Char('3')));
    assert!(shows(&screen(&app), "no batch yet: press o"));

    let mut app = batch_app_one_done_one_failed(4);
    use demod_voice_core::batch::Event;
    app.batch_event(AppEvent::Batch(Event::Started { row: 3, output: "out/00003.wav".into() }));
    let lines = screen(&app);
    assert!(shows(&lines, "/data/lines.csv  running  2/4 jobs, 1 failed, 1 invalid"), "{lines:#?}");
    assert!(shows(&lines, "RTF 0.050") && shows(&lines, "50%"), "{lines:#?}");
    assert!(shows(&lines, "done") && shows(&lines, "4.0 s audio in 0.2 s"), "{lines:#?}");
    assert!(shows(&lines, "running") && shows(&lines, "pending"));
    assert!(shows(&lines, "row 2 (out/00002.wav): voice `nope` is not installed"), "{lines:#?}");
    assert!(shows(&lines, "invalid row 7, column `text`: empty"), "{lines:#?}");

    app.batch_event(AppEvent::BatchDone(Ok(())));
    assert!(app.status.contains("batch finished: 2 of 4 processed, 1 failed, 1 invalid row(s); R runs it again"));
    assert!(shows(&screen(&app), "stopped"));
    let Some(Job::RunBatch { manifest, .. }) = press(&mut app, key(KeyCode::Char('R'))) else { panic!("a rerun") };
    assert_eq!(manifest, PathBuf::from("/data/lines.csv"));

    let mut broken = batch_app(0);
    broken.batch_event(AppEvent::BatchDone(Err("lines.csv: not valid UTF-8".into())));
    assert!(shows(&screen(&broken), "lines.csv: not valid UTF-8"));
}

#[test]
fn batch_cancel_sets_the_flag_and_open_refuses_while_running() {
    let mut app = batch_app(3);
    press(&mut app, key(KeyCode::Char('o')));
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.status.contains("a batch is running"));
    press(&mut app, key(KeyCode::Char('c')));
    assert!(app.batch.cancel.load(std::sync::atomic::Ordering::Relaxed));
    app.batch_event(AppEvent::BatchDone(Ok(())));
    assert!(app.status.starts_with("batch cancelled: 0 of 3 processed"), "{}", app.status);
    press(&mut app, key(KeyCode::Char('o')));
    assert_eq!((app.mode, app.prompt_for), (Mode::Prompt, PromptFor::Manifest));
    type_text(&mut app, "/no/such.csv");
    assert!(press(&mut app, key(KeyCode::Enter)).is_none());
    assert!(app.status.contains("/no/such.csv is not a file"));
}

#[test]
fn batch_table_scrolls_and_a_huge_batch_draws_only_what_fits() {
    let mut app = batch_app(10_000);
    for _ in 0..5 {
        press(&mut app, key(KeyCode::Down));
    }
    let lines = screen(&app);
    assert!(shows(&lines, "out/00006.wav") && !shows(&lines, "out/00005.wav"), "{lines:#?}");
    assert!(shows(&lines, "0/10000 jobs"));
}

#[test]
fn the_history_keeps_the_text_that_was_saved_even_when_typing_went_on() {
    let mut app = app();
    type_text(&mut app, "First.");
    let Some(Job::Synthesize { path, .. }) = press(&mut app, ctrl('s')) else { panic!("a job") };
    type_text(&mut app, " And more.");
    app.saved(path, Ok(0.9));
    assert_eq!(app.history[0].text, "First.");
    assert_eq!(app.text, "First. And more.");
}

#[test]
fn ctrl_s_at_a_prompt_does_not_save() {
    let mut app = app();
    type_text(&mut app, "Words.");
    app.update(Action::StopEditing);
    app.update(Action::Goto(Screen::Voices));
    press(&mut app, key(KeyCode::Char('a')));
    assert!(press(&mut app, ctrl('s')).is_none());
    assert_eq!(app.mode, Mode::Prompt);
}

#[test]
fn a_job_error_or_panic_becomes_one_line_for_the_app() {
    assert_eq!(guarded(|| Ok(3)), Ok(3));
    let error = guarded::<()>(|| Err(anyhow::anyhow!("outer").context("while saving"))).unwrap_err();
    assert_eq!(error, "while saving: outer");
    let panicked = std::thread::Builder::new()
        .name(JOB_THREAD.into())
        .spawn(|| guarded::<()>(|| panic!("index out of range")))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(panicked.unwrap_err(), "internal error (a bug, please report it): index out of range");
}

/// An app with a (pretend) output device at 48 kHz; the test plays the device's part through its counters.
fn app_with_output() -> (App, Arc<crate::devices::PlaybackState>) {
    let mut app = app();
    let state = Arc::new(crate::devices::PlaybackState::default());
    app.output = Ok(OutputInfo { device: "Test Speakers".into(), rate: 48_000, state: state.clone() });
    (app, state)
}

#[test]
fn without_an_output_device_speak_says_so_and_saving_still_works() {
    let mut app = app();
    app.output = Err("no audio output device".into());
    type_text(&mut app, "Hello.");
    assert!(press(&mut app, ctrl('p')).is_none());
    assert!(app.status.contains("no audio output (no audio output device)"), "{}", app.status);
    let lines = screen(&app);
    assert!(shows(&lines, "no audio output: no audio output"), "{lines:#?}");
    assert!(matches!(press(&mut app, ctrl('s')), Some(Job::Synthesize { .. })));
    app.update(Action::Tick);
}

#[test]
fn speak_shows_level_waveform_and_progress_then_lands_in_the_history() {
    let (mut app, state) = app_with_output();
    assert!(press(&mut app, ctrl('p')).is_none(), "empty text: nothing to speak");
    type_text(&mut app, "Hello there.");
    let Some(Job::Speak { id, text, voice, scales, stop }) = press(&mut app, ctrl('p')) else { panic!("a speak job") };
    assert_eq!((text.as_str(), voice.as_deref()), ("Hello there.", Some("en_US-joe-medium")));
    assert_eq!(scales.length_scale, Some(1.0));
    let lines = screen(&app);
    assert!(shows(&lines, "speaking 0.0/0.0 s synthesizing…"), "{lines:#?}");
    assert!(shows(&lines, "Playback: Test Speakers (48000 Hz)"));
    // First sentence queued (0.2 s, loud then quiet); the device has played half of it.
    let mut audio = vec![0.5f32; 4800];
    audio.extend(vec![0.01f32; 4800]);
    app.queued(id, audio);
    app.queued(id + 99, vec![1.0; 100]);
    state.played.fetch_add(4800, Ordering::Relaxed);
    state.meter.record(0.5);
    app.update(Action::Tick);
    let lines = screen(&app);
    assert!(shows(&lines, "speaking 0.1/0.2 s synthesizing…"), "another utterance's audio is ignored: {lines:#?}");
    assert!(shows(&lines, "out  -6.0 dB"), "{lines:#?}");
    assert!(shows(&lines, "▇▇▇") && shows(&lines, "▃▃▃"), "the waveform shows loud and quiet parts: {lines:#?}");
    app.speak_done(id, Ok(()));
    app.update(Action::Tick);
    assert!(app.speaking.is_some(), "not finished until the device has played it all");
    state.played.fetch_add(4800, Ordering::Relaxed);
    app.update(Action::Tick);
    assert!(app.speaking.is_none());
    assert!(!stop.load(Ordering::Relaxed));
    assert!(app.status.starts_with("spoke 0.2 s (first audio after"), "{}", app.status);
    assert_eq!(app.history[0].audio.as_ref().map(|a| a.len()), Some(9600));
    assert!(shows(&screen(&app), "▶ spoken    0.2 s  Hello there."));
}

#[test]
fn speak_again_or_x_interrupts_at_once_and_keeps_what_was_heard() {
    let (mut app, state) = app_with_output();
    type_text(&mut app, "One. Two. Three.");
    let Some(Job::Speak { id, stop, .. }) = press(&mut app, ctrl('p')) else { panic!("a speak job") };
    app.queued(id, vec![0.3; 48_000]);
    assert!(press(&mut app, ctrl('p')).is_none(), "Ctrl-P while speaking stops");
    assert!(stop.load(Ordering::Relaxed), "the job is told to stop");
    assert!(state.flush.load(Ordering::Acquire), "the device drops what is queued");
    assert!(app.speaking.is_none());
    assert_eq!(app.status, "stopped");
    assert_eq!(app.history.len(), 1);
    // A late message from the stopped job changes nothing.
    app.speak_done(id, Err("stopped".into()));
    assert_eq!(app.history.len(), 1);
    // x stops too (keys mode).
    press(&mut app, key(KeyCode::Esc));
    let Some(Job::Speak { stop, .. }) = press(&mut app, key(KeyCode::Char(' '))) else { panic!("Space speaks") };
    press(&mut app, key(KeyCode::Char('x')));
    assert!(stop.load(Ordering::Relaxed));
}

#[test]
fn a_failed_speak_is_one_line_in_the_status_and_the_history() {
    let (mut app, _state) = app_with_output();
    type_text(&mut app, "...");
    let Some(Job::Speak { id, .. }) = press(&mut app, ctrl('p')) else { panic!("a speak job") };
    app.speak_done(id, Err("the text has nothing to speak".into()));
    assert!(app.speaking.is_none());
    assert_eq!(app.status, "speaking failed: the text has nothing to speak");
    let lines = screen(&app);
    assert!(shows(&lines, "spoken  failed: the text has nothing"), "{lines:#?}");
}

#[test]
fn p_replays_the_picked_history_entry_spoken_or_saved() {
    let (mut app, _state) = app_with_output();
    press(&mut app, key(KeyCode::Esc));
    assert!(press(&mut app, key(KeyCode::Char('p'))).is_none());
    assert!(app.status.starts_with("nothing to replay yet"));
    let heard = Arc::new(vec![0.25f32; 480]);
    app.history.push(Utterance {
        text: "A.".into(),
        path: None,
        audio: Some(heard.clone()),
        outcome: Ok(0.01),
        id: 0,
        similarity: None,
    });
    app.history.push(Utterance {
        text: "B.".into(),
        path: Some(PathBuf::from("/tmp/takes/take-001.wav")),
        audio: None,
        outcome: Ok(1.0),
        id: 0,
        similarity: None,
    });
    let Some(Job::Play { id, source: PlaySource::Samples(samples), .. }) = press(&mut app, key(KeyCode::Char('p')))
    else {
        panic!("replay of spoken audio")
    };
    assert!(Arc::ptr_eq(&samples, &heard));
    assert!(press(&mut app, key(KeyCode::Char('p'))).is_none(), "one thing plays at a time");
    app.speak_done(id, Ok(()));
    app.queued(id, vec![0.25; 480]);
    app.update(Action::Tick);
    press(&mut app, key(KeyCode::Char('x')));
    assert_eq!(app.history.len(), 2, "a replay does not add to the history");
    press(&mut app, key(KeyCode::Char(']')));
    let Some(Job::Play { source: PlaySource::File(path), .. }) = press(&mut app, key(KeyCode::Char('p'))) else {
        panic!("replay of a saved take")
    };
    assert_eq!(path, PathBuf::from("/tmp/takes/take-001.wav"));
}

/// A usable profile named "tale" (210 Hz), with or without a speaker embedding.
fn tale(embedding: Option<demod_voice_core::speaker::Embedding>) -> ProfileInfo {
    ProfileInfo {
        name: "tale".into(),
        median_f0_hz: 210.0,
        formant_scale: 1.1,
        voiced_seconds: 9.0,
        similarity: None,
        embedding,
        target: Some(demod_voice_core::convert::dsp::Target::new(210.0, 1.1)),
        problem: None,
    }
}

fn live_info() -> LiveInfo {
    LiveInfo {
        input: "Test Mic".into(),
        output: "Test Speakers".into(),
        rate: 48_000,
        latency_seconds: 0.058,
        state: Arc::new(crate::devices::LiveState::default()),
        stats: Arc::new(demod_voice_core::realtime::Stats::default()),
        controls: Arc::new(demod_voice_core::realtime::Controls::default()),
        similarity: None,
    }
}

#[test]
fn live_screen_starts_stops_and_changes_the_running_converter_at_once() {
    let mut app = app();
    app.live.inputs = vec!["(default)".into(), "Test Mic".into()];
    app.live.outputs = vec!["(default)".into(), "Test Speakers".into()];
    app.profiles = vec![tale(None)];
    press(&mut app, key(KeyCode::Esc));
    press(&mut app, key(KeyCode::Char('2')));
    assert_eq!(app.screen, Screen::Live);
    let lines = screen(&app);
    assert!(shows(&lines, "Live: stopped (Space starts)") && shows(&lines, "(default)"), "{lines:#?}");
    // Input device: the second one.
    press(&mut app, key(KeyCode::Right));
    // Profile, pitch and formant go to the converter's parameters.
    for _ in 0..4 {
        press(&mut app, key(KeyCode::Down));
    }
    press(&mut app, key(KeyCode::Right));
    assert_eq!(app.live.params.target().map(|t| t.median_f0), Some(210.0));
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Right));
    press(&mut app, key(KeyCode::Right));
    assert_eq!(app.live.params.pitch_semitones(), 1.0);
    let Some(Job::StartLive { input, output, engine, params, mix, .. }) = press(&mut app, key(KeyCode::Char(' ')))
    else {
        panic!("Space starts live conversion")
    };
    assert_eq!(
        (input.as_deref(), output, engine, mix),
        (Some("Test Mic"), None, demod_voice_core::convert::Engine::Dsp, 1.0)
    );
    assert!(Arc::ptr_eq(&params, &app.live.params));
    assert!(press(&mut app, key(KeyCode::Char(' '))).is_none(), "a second start waits for the first");
    app.live_started(Err("no audio input device".into()));
    let lines = screen(&app);
    assert!(shows(&lines, "could not start: no audio"), "{lines:#?}");
    let Some(Job::StartLive { .. }) = press(&mut app, key(KeyCode::Enter)) else { panic!("try again") };
    let info = live_info();
    let controls = info.controls.clone();
    info.state.input_meter.record(0.1);
    info.state.input_starved.fetch_add(3, Ordering::Relaxed);
    app.live_started(Ok(info));
    app.update(Action::Tick);
    let lines = screen(&app);
    assert!(shows(&lines, "Live: converting (Space stops)"), "{lines:#?}");
    assert!(shows(&lines, "Test Mic -> Test Speakers at 48000 Hz"), "{lines:#?}");
    assert!(shows(&lines, "latency 58 ms"), "{lines:#?}");
    assert!(shows(&lines, "starved 3"), "{lines:#?}");
    assert!(shows(&lines, "in  -20.0 dB"), "{lines:#?}");
    // Mix follows at once; devices cannot change while running.
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Left));
    assert!((controls.mix() - 0.95).abs() < 1e-6, "mix {}", controls.mix());
    for _ in 0..7 {
        press(&mut app, key(KeyCode::Up));
    }
    press(&mut app, key(KeyCode::Right));
    assert!(app.status.contains("stop the live conversion"), "{}", app.status);
    assert_eq!(app.live.input, 1);
    assert!(matches!(press(&mut app, key(KeyCode::Char(' '))), Some(Job::StopLive)));
    assert!(app.live.running.is_none());
}

#[test]
fn live_preset_sets_the_controls_it_names() {
    let mut app = app();
    app.live.presets = vec![(
        "deep".into(),
        demod_voice_core::presets::ConverterSettings {
            engine: demod_voice_core::convert::Engine::Dsp,
            pitch_semitones: -4.0,
            formant_ratio: 0.9,
            profile: None,
            profile_amount: 1.0,
            mix: 0.8,
            ..Default::default()
        },
    )];
    app.screen = Screen::Live;
    app.mode = Mode::Normal;
    app.live.control = 2;
    press(&mut app, key(KeyCode::Right));
    assert_eq!((app.live.pitch, app.live.formant, app.live.mix), (-4.0, 0.9, 0.8));
    assert_eq!(app.live.engine.name(), "dsp");
    // The engine can be switched while stopped: passthrough (to hear the devices' own latency).
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Left));
    let Some(Job::StartLive { engine, .. }) = press(&mut app, key(KeyCode::Char(' '))) else { panic!("start") };
    assert_eq!(engine.name(), "passthrough");
    assert_eq!(app.live.params.pitch_semitones(), -4.0);
    assert!(shows(&screen(&app), "deep"));
}

#[test]
fn a_live_preset_with_a_model_engine_starts_that_model() {
    let mut app = app();
    app.live.presets = vec![(
        "alto".into(),
        demod_voice_core::presets::ConverterSettings {
            engine: demod_voice_core::convert::Engine::Rvc,
            model: Some("alto-voice".into()),
            ..Default::default()
        },
    )];
    app.screen = Screen::Live;
    app.mode = Mode::Normal;
    app.live.control = 2;
    press(&mut app, key(KeyCode::Right));
    assert!(shows(&screen(&app), "rvc (alto-voice)"));
    let Some(Job::StartLive { engine, model, .. }) = press(&mut app, key(KeyCode::Char(' '))) else { panic!("start") };
    assert_eq!((engine.name(), model.as_deref()), ("rvc", Some("alto-voice")));
}

#[test]
fn a_live_tone_colour_preset_starts_its_model_toward_the_profile_with_its_tau() {
    let mut app = app();
    app.profiles = vec![tale(None)];
    app.live.presets = vec![(
        "timbre".into(),
        demod_voice_core::presets::ConverterSettings {
            engine: demod_voice_core::convert::Engine::ToneColor,
            model: Some("timbre-pair".into()),
            profile: Some(app.profiles[0].name.clone()),
            tau: 0.6,
            ..Default::default()
        },
    )];
    app.screen = Screen::Live;
    app.mode = Mode::Normal;
    app.live.control = 2;
    press(&mut app, key(KeyCode::Right));
    assert!(shows(&screen(&app), "tone-color (timbre-"), "{:#?}", screen(&app));
    let Some(Job::StartLive { engine, model, profile, tau, .. }) = press(&mut app, key(KeyCode::Char(' '))) else {
        panic!("start")
    };
    assert_eq!((engine.name(), model.as_deref(), tau), ("tone-color", Some("timbre-pair"), 0.6));
    assert_eq!(profile.as_deref(), Some(app.profiles[0].name.as_str()));
}

#[test]
fn a_decayed_meter_reads_minus_infinity_not_a_tiny_number() {
    let (mut app, state) = app_with_output();
    state.meter.record(0.5);
    for _ in 0..40 {
        app.update(Action::Tick);
    }
    assert!(app.out_level > 0.0 && app.out_level < 3e-5, "{}", app.out_level);
    assert!(shows(&screen(&app), "out   -inf dB"), "{:#?}", screen(&app));
}

#[test]
fn w_follows_a_batch_another_process_runs_and_c_only_stops_following() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("lines.txt");
    std::fs::write(&manifest, "One.\nTwo.\n").unwrap();
    let mut app = app();
    app.update(Action::StopEditing);
    press(&mut app, key(KeyCode::Char('3')));
    assert!(shows(&screen(&app), "w to follow"), "{:#?}", screen(&app));
    press(&mut app, key(KeyCode::Char('w')));
    assert_eq!((app.mode, app.prompt_for), (Mode::Prompt, PromptFor::Watch));
    assert!(screen(&app)[23].starts_with("WATCH BATCH manifest being run: "));
    type_text(&mut app, &manifest.display().to_string());
    let Some(Job::WatchBatch { manifest: watched, stop }) = press(&mut app, key(KeyCode::Enter)) else {
        panic!("a watch job")
    };
    assert_eq!(watched, manifest);
    app.batch_event(AppEvent::BatchLoaded { rows: vec![(1, "a.wav".into()), (2, "b.wav".into())], invalid: vec![] });
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() - 30.0;
    app.batch_event(AppEvent::BatchRun { started_unix: started, pid: 4242, jobs: 2 });
    assert!(app.status.contains("process 4242"));
    assert!(app.batch.started.unwrap().elapsed() >= Duration::from_secs(29), "the run's own start time counts");
    app.batch_event(AppEvent::Batch(demod_voice_core::batch::Event::Finished {
        row: 1,
        output: "a.wav".into(),
        audio_seconds: 2.0,
        seconds: 0.5,
    }));
    let lines = screen(&app);
    assert!(shows(&lines, "watching  1/2 jobs"), "{lines:#?}");
    press(&mut app, key(KeyCode::Char('c')));
    assert!(stop.load(Ordering::Relaxed));
    assert_eq!(app.status, "stopped watching; the run goes on in its own process");
    app.batch_event(AppEvent::BatchDone(Ok(())));
    assert!(app.status.starts_with("no longer watched: 1 of 2 processed"), "{}", app.status);
}

/// A progress log as `batch::run` writes it.
fn write_log(manifest: &std::path::Path, lines: &[&str]) {
    let journal = demod_voice_core::batch::journal_path(manifest, None, None);
    std::fs::write(demod_voice_core::batch::events_path(&journal), lines.join("\n") + "\n").unwrap();
}

#[test]
fn watching_reads_the_progress_log_to_its_end_or_notices_the_run_died() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("lines.txt");
    std::fs::write(&manifest, "One.\nTwo.\n").unwrap();
    let me = std::process::id();
    write_log(
        &manifest,
        &[
            &format!(r#"{{"event":"run","pid":{me},"jobs":2,"started_unix":1.0}}"#),
            r#"{"event":"started","row":1,"output":"lines-0001.wav"}"#,
            r#"{"event":"finished","row":1,"output":"lines-0001.wav","audio_seconds":1.0,"seconds":0.2}"#,
            r#"{"event":"failed","row":2,"output":"lines-0002.wav","error":"voice not installed"}"#,
            r#"{"event":"end","done":1,"skipped":0,"failed":1,"wall_seconds":0.5}"#,
        ],
    );
    let (sender, receiver) = mpsc::channel();
    let stop = AtomicBool::new(false);
    watch_batch(&manifest, &stop, &sender).unwrap();
    let mut app = app();
    let _ = app.start_watch(manifest.clone());
    for event in receiver.try_iter() {
        app.batch_event(event);
    }
    app.batch_event(AppEvent::BatchDone(Ok(())));
    assert!(app.status.starts_with("watched batch finished: 2 of 2 processed, 1 failed"), "{}", app.status);
    // A run whose process is gone (no such pid) and whose log has no end.
    write_log(&manifest, &[r#"{"event":"run","pid":4000000000,"jobs":2,"started_unix":1.0}"#]);
    let error = watch_batch(&manifest, &stop, &sender).unwrap_err().to_string();
    assert!(error.contains("ended without finishing"), "{error}");
    // No log yet: it waits (and says so) until told to stop.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, "Three.\n").unwrap();
    let _ = receiver.try_iter().count();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(400));
            stop.store(true, Ordering::Relaxed);
        });
        watch_batch(&other, &stop, &sender).unwrap();
    });
    let notes: Vec<String> =
        receiver.try_iter().filter_map(|e| if let AppEvent::BatchNote(note) = e { Some(note) } else { None }).collect();
    assert_eq!(notes.len(), 1, "said once: {notes:?}");
    assert!(notes[0].starts_with("waiting for `demod-voice batch"), "{notes:?}");
}

#[test]
fn a_multi_speaker_voice_offers_its_speakers_by_name_and_they_reach_the_job() {
    let mut app = app();
    app.voices.push(VoiceInfo {
        name: "en_US-libritts-high".into(),
        speakers: 3,
        speaker_names: vec!["p1".into(), "p2".into(), "p3".into()],
        ..joe()
    });
    type_text(&mut app, "Hi.");
    press(&mut app, key(KeyCode::Esc));
    assert!(shows(&screen(&app), "(one speaker)"));
    press(&mut app, key(KeyCode::Right));
    press(&mut app, key(KeyCode::Down));
    press(&mut app, key(KeyCode::Left));
    assert!(shows(&screen(&app), "p3 (3/3)"), "{:#?}", screen(&app));
    let Some(Job::Synthesize { scales, voice, .. }) = press(&mut app, ctrl('s')) else { panic!("a job") };
    assert_eq!((voice.as_deref(), scales.speaker.as_deref()), (Some("en_US-libritts-high"), Some("p3")));
    // Another voice starts again at its first speaker.
    press(&mut app, key(KeyCode::Up));
    press(&mut app, key(KeyCode::Right));
    assert_eq!(app.speaker, 0);
    let Some(Job::Speak { scales, .. }) = ({
        app.output = Ok(OutputInfo {
            device: "x".into(),
            rate: 48_000,
            state: Arc::new(crate::devices::PlaybackState::default()),
        });
        press(&mut app, ctrl('p'))
    }) else {
        panic!("a speak job")
    };
    assert_eq!(scales.speaker, None, "joe has one speaker");
}

#[test]
fn device_lists_arriving_late_keep_the_picked_device_by_name() {
    let mut app = app();
    app.live.inputs = vec!["(default)".into()];
    app.devices_listed(vec!["(default)".into(), "USB Mic".into()], vec!["(default)".into()]);
    app.live.input = 1;
    app.devices_listed(vec!["(default)".into(), "Webcam".into(), "USB Mic".into()], vec!["(default)".into()]);
    assert_eq!(app.live.inputs[app.live.input], "USB Mic");
    app.devices_listed(vec!["(default)".into()], vec!["(default)".into()]);
    assert_eq!(app.live.input, 0, "an unplugged device falls back to the default");
}

#[test]
fn long_text_scrolls_so_the_end_stays_in_view() {
    let mut app = app();
    for i in 0..30 {
        type_text(&mut app, &format!("Line number {i}."));
        press(&mut app, key(KeyCode::Enter));
    }
    type_text(&mut app, "The very end");
    let lines = screen(&app);
    assert!(shows(&lines, "The very end▏"), "{lines:#?}");
    assert!(!shows(&lines, "Line number 0."), "the start scrolled away: {lines:#?}");
}

fn catalog_rows() -> Vec<super::screens::catalog::CatalogRow> {
    let row = |key: &str, code: &str, names: &str, quality: &str| super::screens::catalog::CatalogRow {
        key: key.into(),
        code: code.into(),
        names: names.into(),
        quality: quality.into(),
        speakers: 1,
        size_bytes: 63_000_000,
        installed: false,
    };
    vec![
        row("de_DE-thorsten-high", "de_DE", "Deutsch (German)", "high"),
        row("de_DE-thorsten-medium", "de_DE", "Deutsch (German)", "medium"),
        row("en_US-joe-medium", "en_US", "English (English)", "medium"),
        row("pt_BR-faber-medium", "pt_BR", "Português (Portuguese)", "medium"),
    ]
}

#[test]
fn the_catalogue_filters_downloads_with_a_gauge_and_removes() {
    let mut app = keys_mode(app(), Screen::Voices);
    assert!(matches!(press(&mut app, key(KeyCode::Char('c'))), Some(Job::LoadCatalog { refresh: false })));
    assert!(shows(&screen(&app), "reading the voice catalogue"));
    app.catalog_event(AppEvent::CatalogLoaded(Ok((
        catalog_rows(),
        "http://127.0.0.1/voices.json (cached, 3 h old)".into(),
    ))));
    let lines = screen(&app);
    assert!(shows(&lines, "de_DE-thorsten-high") && shows(&lines, "pt_BR Português"), "{lines:#?}");
    assert!(shows(&lines, "4 of 4") && shows(&lines, "cached, 3 h old"), "{lines:#?}");
    let joe_line = lines.iter().find(|l| l.contains("en_US-joe-medium")).unwrap();
    assert!(joe_line.contains("yes"), "the installed voice is marked: {joe_line}");

    // f: a language; then a quality with the arrows.
    press(&mut app, key(KeyCode::Char('f')));
    type_text(&mut app, "de");
    press(&mut app, key(KeyCode::Enter));
    let lines = screen(&app);
    assert!(shows(&lines, "2 of 4") && !shows(&lines, "pt_BR-faber"), "{lines:#?}");
    press(&mut app, key(KeyCode::Right)); // high
    assert!(shows(&screen(&app), "1 of 4"));
    press(&mut app, key(KeyCode::Left)); // any
    press(&mut app, key(KeyCode::Down));

    // d downloads the selected voice; progress shows as a gauge; the result lands in the installed voices.
    let job = press(&mut app, key(KeyCode::Char('d')));
    assert!(matches!(&job, Some(Job::DownloadVoice { key }) if key == "de_DE-thorsten-medium"), "{job:?}");
    assert!(press(&mut app, key(KeyCode::Char('d'))).is_none(), "one download at a time");
    app.catalog_event(AppEvent::DownloadProgress {
        key: "de_DE-thorsten-medium".into(),
        done: 31_500_000,
        total: 63_000_000,
    });
    let lines = screen(&app);
    assert!(shows(&lines, "downloading de_DE-thorsten-medium") && shows(&lines, "50%"), "{lines:#?}");
    let thorsten = VoiceInfo { name: "de_DE-thorsten-medium".into(), language: "de_DE".into(), ..joe() };
    app.catalog_event(AppEvent::VoicesChanged {
        key: "de_DE-thorsten-medium".into(),
        what: "installed",
        outcome: Ok(vec![joe(), thorsten]),
    });
    assert_eq!(app.status, "installed de_DE-thorsten-medium");
    let names: Vec<&str> = app.voices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["de_DE-thorsten-medium", "en_US-joe-medium"], "installed voices by language");
    assert_eq!(app.voices[app.voice].name, "en_US-joe-medium", "the picked voice stays picked");
    let line = screen(&app).into_iter().find(|l| l.contains("de_DE-thorsten-medium")).unwrap();
    assert!(line.contains("yes"), "{line}");

    // x removes an installed voice; a failure is one status line.
    let job = press(&mut app, key(KeyCode::Char('x')));
    assert!(matches!(&job, Some(Job::RemoveVoice { key }) if key == "de_DE-thorsten-medium"), "{job:?}");
    app.catalog_event(AppEvent::VoicesChanged {
        key: "de_DE-thorsten-medium".into(),
        what: "removed",
        outcome: Err("cannot write /voices: read-only".into()),
    });
    assert_eq!(app.status, "de_DE-thorsten-medium: cannot write /voices: read-only");

    // c goes back to the installed voices; r outside the catalogue says how to get there.
    press(&mut app, key(KeyCode::Char('c')));
    assert!(shows(&screen(&app), "Installed voices"));
    assert!(press(&mut app, key(KeyCode::Char('d'))).is_none());
    assert!(app.status.contains("c shows the voice catalogue"), "{}", app.status);
}

#[test]
fn a_catalogue_that_cannot_be_read_says_why_and_r_tries_again() {
    let mut app = keys_mode(app(), Screen::Voices);
    press(&mut app, key(KeyCode::Char('c')));
    app.catalog_event(AppEvent::CatalogLoaded(Err("voice catalogue x: no copy cached and --offline".into())));
    assert!(shows(&screen(&app), "the catalogue cannot be read"));
    assert!(matches!(press(&mut app, key(KeyCode::Char('r'))), Some(Job::LoadCatalog { refresh: true })));
}

// --- snapshots ------------------------------------------------------------------------------------------------
//
// Every screen in its normal, empty and error states, 80x24, compared with `src/app/snapshots/NAME.txt`. After an
// intended change of the look, `UPDATE_SNAPSHOTS=1 cargo test -p demod-voice snapshot` rewrites them; review the
// diff before committing.

fn assert_snapshot(name: &str, app: &App) {
    let text = screen(app).join("\n") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/app/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no snapshot {}: run with UPDATE_SNAPSHOTS=1 and review it", path.display()));
    assert!(
        text == expected,
        "screen `{name}` differs from {}; if the change is intended, run with UPDATE_SNAPSHOTS=1 and review.\nnow:\n{text}",
        path.display()
    );
}

fn keys_mode(mut app: App, screen: Screen) -> App {
    app.update(Action::StopEditing);
    app.screen = screen;
    app
}

#[test]
fn snapshot_synthesize_screens() {
    let (mut app, state) = app_with_output();
    type_text(&mut app, "Hello there. This is the terminal app speaking.");
    app.history.push(Utterance {
        text: "An earlier take.".into(),
        path: Some(PathBuf::from("/tmp/takes/take-001.wav")),
        audio: None,
        outcome: Ok(2.5),
        id: 0,
        similarity: None,
    });
    app.history.push(Utterance {
        text: "x".into(),
        path: None,
        audio: None,
        outcome: Err("disk full".into()),
        id: 0,
        similarity: None,
    });
    let Some(Job::Speak { id, .. }) = press(&mut app, ctrl('p')) else { panic!("a speak job") };
    app.queued(id, (0..48_000).map(|i| (i as f32 / 2000.0).sin() * (i as f32 / 48_000.0)).collect());
    state.played.fetch_add(24_000, Ordering::Relaxed);
    state.meter.record(0.25);
    app.update(Action::Tick);
    assert_snapshot("synthesize_speaking", &app);

    let mut empty = keys_mode(App::new(Vec::new(), Vec::new(), Vec::new(), PathBuf::from(".")), Screen::Synthesize);
    empty.output = Err("no audio output device".into());
    assert_snapshot("synthesize_empty_no_voices_no_device", &empty);

    let mut failed = app_with_output().0;
    type_text(&mut failed, "...");
    let Some(Job::Speak { id, .. }) = press(&mut failed, ctrl('p')) else { panic!("a speak job") };
    failed.speak_done(id, Err("the text has nothing to speak".into()));
    assert_snapshot("synthesize_error", &failed);
}

#[test]
fn snapshot_live_screens() {
    let mut app = keys_mode(app(), Screen::Live);
    app.live.inputs = vec!["(default)".into(), "USB Mic".into()];
    app.live.outputs = vec!["(default)".into()];
    assert_snapshot("live_stopped", &app);
    let _ = app.update(Action::ToggleLive);
    app.live_started(Err("no audio input device".into()));
    assert_snapshot("live_error", &app);
    let _ = app.update(Action::ToggleLive);
    let info = live_info();
    info.state.input_meter.record(0.5);
    info.state.output_meter.record(0.25);
    app.live_started(Ok(info));
    app.update(Action::Tick);
    assert_snapshot("live_running", &app);
}

/// The Live screen's rolling similarity: the monitor's score for the selected profile, once a second.
#[test]
fn the_live_screen_shows_the_rolling_similarity_to_the_selected_profile() {
    let mut app = keys_mode(app(), Screen::Live);
    let embedding = demod_voice_core::speaker::Embedding::new(vec![1.0, 0.0]);
    app.profiles = vec![tale(Some(embedding.clone()))];
    app.live.control = LiveControl::ALL.iter().position(|c| *c == LiveControl::Profile).unwrap();
    app.adjust_live(1);
    app.apply_live_settings();
    // The selected profile's embedding is what the monitor compares with.
    assert_eq!(*app.live.similarity_target.lock().unwrap(), Some(embedding));
    let Some(Job::StartLive { similarity_target, .. }) = app.update(Action::ToggleLive) else { panic!("start") };
    assert!(Arc::ptr_eq(&similarity_target, &app.live.similarity_target));
    let cell = Arc::new(std::sync::atomic::AtomicU32::new(f32::NAN.to_bits()));
    app.live_started(Ok(LiveInfo { similarity: Some(cell.clone()), ..live_info() }));
    app.update(Action::Tick);
    assert!(shows(&screen(&app), "similarity to tale: listening"), "{:#?}", screen(&app));
    cell.store(0.53f32.to_bits(), Ordering::Relaxed);
    app.update(Action::Tick);
    assert!(shows(&screen(&app), "similarity to tale: 0.53"), "{:#?}", screen(&app));
}

/// Hardening: a dead real-time worker used to leave the Live screen looking healthy while only the fallback played.
#[test]
fn the_live_screen_says_when_the_converter_died() {
    let mut app = keys_mode(app(), Screen::Live);
    let _ = app.update(Action::ToggleLive);
    let info = live_info();
    let stats = info.stats.clone();
    app.live_started(Ok(info));
    app.update(Action::Tick);
    assert!(!shows(&screen(&app), "converter stopped"));
    stats.mark_dead("the dsp converter panicked: boom".into());
    app.update(Action::Tick);
    let lines = screen(&app);
    assert!(shows(&lines, "converter stopped") && shows(&lines, "panicked: boom"), "{lines:#?}");
}

#[test]
fn snapshot_batch_screens() {
    assert_snapshot("batch_empty", &keys_mode(app(), Screen::Batch));
    let mut app = batch_app_one_done_one_failed(4);
    app.batch_event(AppEvent::BatchDone(Ok(())));
    assert_snapshot("batch_finished_with_failures", &app);
    let mut broken = batch_app(0);
    broken.batch_event(AppEvent::BatchDone(Err("lines.csv: not valid UTF-8".into())));
    assert_snapshot("batch_error", &broken);
}

#[test]
fn snapshot_voices_and_health_screens() {
    let mut app = keys_mode(app(), Screen::Voices);
    app.profiles = vec![
        ProfileInfo { similarity: Some((0.24, 0.52)), ..tale(None) },
        ProfileInfo {
            name: "old".into(),
            median_f0_hz: 0.0,
            formant_scale: 0.0,
            voiced_seconds: 0.0,
            similarity: None,
            embedding: None,
            target: None,
            problem: Some("unsupported schema_version 9".into()),
        },
    ];
    app.voices.push(VoiceInfo { problem: Some("config missing".into()), name: "broken".into(), ..joe() });
    assert_snapshot("voices", &app);
    let mut catalog = keys_mode(self::app(), Screen::Voices);
    press(&mut catalog, key(KeyCode::Char('c')));
    catalog.catalog_event(AppEvent::CatalogLoaded(Ok((
        catalog_rows(),
        "http://127.0.0.1/voices.json (cached, 3 h old)".into(),
    ))));
    assert_snapshot("voices_catalog", &catalog);
    let empty = keys_mode(App::new(Vec::new(), Vec::new(), Vec::new(), PathBuf::from(".")), Screen::Voices);
    assert_snapshot("voices_empty", &empty);
    let mut health = keys_mode(app, Screen::Health);
    health.checks.push(CheckInfo {
        name: "audio".into(),
        status: Status::Error,
        message: "no audio output".into(),
        hint: Some("check the sound card".into()),
    });
    assert_snapshot("health", &health);
    assert_snapshot(
        "health_empty",
        &keys_mode(App::new(Vec::new(), Vec::new(), Vec::new(), PathBuf::from(".")), Screen::Health),
    );
    let mut help = keys_mode(self::app(), Screen::Synthesize);
    help.show_help = true;
    assert_snapshot("help", &help);
}

#[test]
fn a_lost_output_device_stops_playback_with_one_line() {
    let (mut app, state) = app_with_output();
    type_text(&mut app, "Hello.");
    let Some(Job::Speak { id, stop, .. }) = press(&mut app, ctrl('p')) else { panic!("a speak job") };
    app.queued(id, vec![0.1; 4800]);
    state.device.lost.store(true, Ordering::Release);
    assert!(app.update(Action::Tick).is_none());
    assert!(app.speaking.is_none() && stop.load(Ordering::Relaxed));
    assert_eq!(app.status, "the output device went away (unplugged?); playback stopped");
    assert!(!state.device.lost.load(Ordering::Acquire), "reported once; the next Speak reopens the device");
}

#[test]
fn a_lost_live_device_stops_the_conversion_and_says_so() {
    let mut app = keys_mode(app(), Screen::Live);
    let _ = app.update(Action::ToggleLive);
    let info = live_info();
    let state = info.state.clone();
    app.live_started(Ok(info));
    state.device.xruns.fetch_add(2, Ordering::Relaxed);
    assert!(app.update(Action::Tick).is_none());
    assert!(shows(&screen(&app), "xruns 2"), "{:#?}", screen(&app));
    state.device.lost.store(true, Ordering::Release);
    assert!(matches!(app.update(Action::Tick), Some(Job::StopLive)));
    assert!(app.live.running.is_none());
    assert!(shows(&screen(&app), "stopped: a sound device went away"), "{:#?}", screen(&app));
}

#[test]
fn the_output_device_picker_reopens_speak_on_the_chosen_device() {
    let (mut app, _state) = app_with_output();
    app.audio.output_device = Some("USB Speakers".into());
    app.devices_listed(vec!["(default)".into()], vec!["(default)".into(), "HDMI".into(), "USB Speakers".into()]);
    assert_eq!(app.output_pick, 2, "the configured device is picked");
    assert_eq!(app.live.output, 2);
    press(&mut app, key(KeyCode::Esc));
    app.control = Control::ALL.iter().position(|c| *c == Control::Output).unwrap();
    assert!(shows(&screen(&app), "USB Speakers"));
    let Some(Job::OpenOutput { device }) = press(&mut app, key(KeyCode::Right)) else { panic!("reopen") };
    assert_eq!(device, None, "past the last comes (default)");
    let Some(Job::OpenOutput { device }) = press(&mut app, key(KeyCode::Right)) else { panic!("reopen") };
    assert_eq!(device.as_deref(), Some("HDMI"));
    app.output_opened(Err("no audio output device named `HDMI` (found: default)".into()));
    assert!(app.status.starts_with("no audio output (no audio output device named `HDMI`"), "{}", app.status);
    assert!(press(&mut app, ctrl('p')).is_none(), "no output: Speak says so");
    let state = Arc::new(crate::devices::PlaybackState::default());
    app.output_opened(Ok(OutputInfo { device: "HDMI".into(), rate: 44_100, state }));
    assert_eq!(app.status, "Speak plays through HDMI (44100 Hz)");
    // A later listing keeps the pick by name.
    app.devices_listed(vec!["(default)".into()], vec!["(default)".into(), "USB Speakers".into(), "HDMI".into()]);
    assert_eq!(app.live.outputs[app.output_pick], "HDMI");
}

#[test]
fn only_the_newest_spoken_entries_keep_their_audio() {
    let (mut app, state) = app_with_output();
    type_text(&mut app, "Again.");
    for _ in 0..12 {
        let Some(Job::Speak { id, .. }) = press(&mut app, ctrl('p')) else { panic!("a speak job") };
        app.queued(id, vec![0.1; 480]);
        app.speak_done(id, Ok(()));
        state.played.fetch_add(480, Ordering::Relaxed);
        app.update(Action::Tick);
        assert!(app.speaking.is_none());
    }
    assert_eq!(app.history.len(), 12);
    assert_eq!(app.history.iter().filter(|e| e.audio.is_some()).count(), 10);
    press(&mut app, key(KeyCode::Esc));
    for _ in 0..11 {
        press(&mut app, key(KeyCode::Char(']')));
    }
    assert!(press(&mut app, key(KeyCode::Char('p'))).is_none());
    assert!(app.status.starts_with("only the 10 newest spoken entries keep their audio"), "{}", app.status);
}

#[test]
fn a_progress_log_followed_without_its_manifest_fills_rows_as_the_run_reaches_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("state/.jobs.jsonl.shard-1-of-2.events.jsonl");
    let mut app = keys_mode(app(), Screen::Batch);
    press(&mut app, key(KeyCode::Char('w')));
    type_text(&mut app, &log.display().to_string());
    let Some(Job::WatchBatch { manifest, stop }) = press(&mut app, key(KeyCode::Enter)) else {
        panic!("a log that does not exist yet can be followed")
    };
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let me = std::process::id();
    std::fs::write(
        &log,
        format!(
            "{{\"event\":\"run\",\"pid\":{me},\"jobs\":5,\"started_unix\":1.0}}\n\
             {{\"event\":\"finished\",\"row\":7,\"output\":\"b.wav\",\"audio_seconds\":1.0,\"seconds\":0.1}}\n\
             {{\"event\":\"started\",\"row\":3,\"output\":\"a.wav\"}}\n\
             {{\"event\":\"end\",\"done\":1,\"skipped\":0,\"failed\":0,\"wall_seconds\":0.2}}\n"
        ),
    )
    .unwrap();
    let (sender, receiver) = mpsc::channel();
    watch_batch(&manifest, &stop, &sender).unwrap();
    for event in receiver.try_iter() {
        app.batch_event(event);
    }
    let rows: Vec<usize> = app.batch.rows.iter().map(|r| r.row).collect();
    assert_eq!(rows, [3, 7], "rows in manifest order, as they appeared");
    assert_eq!(app.batch.total(), 5, "the run announced five jobs");
    assert!(shows(&screen(&app), "watching  1/5 job"), "{:#?}", screen(&app));
}

#[test]
fn speak_waits_for_live_to_stop_because_both_use_the_devices() {
    let (mut app, _state) = app_with_output();
    type_text(&mut app, "Hello.");
    press(&mut app, key(KeyCode::Esc));
    press(&mut app, key(KeyCode::Char('2')));
    assert!(matches!(press(&mut app, key(KeyCode::Char(' '))), Some(Job::StartLive { .. })));
    app.live_started(Ok(live_info()));
    press(&mut app, key(KeyCode::Char('1')));
    assert!(press(&mut app, ctrl('p')).is_none());
    assert!(app.status.starts_with("Live is using the sound devices"), "{}", app.status);
    press(&mut app, key(KeyCode::Char('2')));
    assert!(matches!(press(&mut app, key(KeyCode::Char(' '))), Some(Job::StopLive)));
    press(&mut app, key(KeyCode::Char('1')));
    assert!(matches!(press(&mut app, ctrl('p')), Some(Job::Speak { .. })));
}

#[test]
fn idle_ticks_leave_the_screen_alone_until_something_moves() {
    let (mut app, state) = app_with_output();
    assert!(!app.animating(), "an idle app need not redraw on ticks");
    state.meter.record(0.5);
    app.update(Action::Tick);
    assert!(app.animating(), "a meter above silence moves");
    for _ in 0..40 {
        app.update(Action::Tick);
    }
    assert!(!app.animating(), "a meter decayed below the floor reads -inf and stops moving");
    type_text(&mut app, "Hi.");
    assert!(matches!(press(&mut app, ctrl('p')), Some(Job::Speak { .. })));
    assert!(app.animating());
}

#[test]
fn playback_trouble_is_shown_while_speaking() {
    let (mut app, state) = app_with_output();
    type_text(&mut app, "Hi.");
    let Some(Job::Speak { id, .. }) = press(&mut app, ctrl('p')) else { panic!("a speak job") };
    app.queued(id, vec![0.1; 4800]);
    assert!(!shows(&screen(&app), "gaps"), "nothing to report");
    state.gaps.fetch_add(2, Ordering::Relaxed);
    state.device.xruns.fetch_add(1, Ordering::Relaxed);
    assert!(shows(&screen(&app), "gaps 2, xruns 1"), "{:#?}", screen(&app));
}
