//! The full-screen terminal app (`demod-voice` on a terminal, or `demod-voice tui`).
//!
//! Shape: [`App`] holds all state; keys become an [`Action`] ([`App::action_for`]); [`App::update`] applies it and
//! may hand back a [`Job`] for a background thread, whose result comes back through the same event channel as the
//! keys, as do the ticks that move meters. Drawing is a pure function of state: `impl Widget for &App` draws the
//! tabs and status line and hands the body to the current screen (a screen with state of its own, like the Batch
//! screen's [`BatchView`], is itself a widget). [`run_loop`] is generic over the ratatui `Backend`, so tests drive
//! the whole thing on a `TestBackend` (and compare every screen with the snapshot files in `snapshots/`).
//!
//! Sound goes through [`crate::devices`]: the output device is checked when the app starts (its absence is shown, and
//! saving to WAV still works) and opened while something plays; Speak runs on a job thread that queues each sentence
//! as soon as it is synthesized; Live runs the core real-time engine between two device streams.

mod view;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;

use demod_voice_core::batch::{self, Event as BatchEvent, Manifest, RunOptions, SpeechWorker};
use demod_voice_core::convert::Engine;
use demod_voice_core::limits;
use demod_voice_core::pipeline::{Speech, VoiceCache};
use demod_voice_core::wav::WavEncoding;

use crate::cli::{GlobalArgs, ScaleArgs};
use crate::context::Context;

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Synthesize,
    Live,
    Batch,
    Voices,
    Health,
}

impl Screen {
    pub const ALL: [Screen; 5] = [Screen::Synthesize, Screen::Live, Screen::Batch, Screen::Voices, Screen::Health];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Synthesize => "Synthesize",
            Screen::Live => "Live",
            Screen::Voices => "Voices",
            Screen::Batch => "Batch",
            Screen::Health => "Health",
        }
    }

    fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// Whether keys on the Synthesize screen go into the text or move around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Editing,
    /// Typing the path of a reference WAV for a new profile (Voices screen).
    Prompt,
}

/// The controls of the Synthesize screen, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Voice,
    Speaker,
    Preset,
    /// The output device Speak plays through.
    Output,
    Length,
    Noise,
    NoiseW,
    Silence,
    Volume,
}

impl Control {
    pub const ALL: [Control; 9] = [
        Control::Voice,
        Control::Speaker,
        Control::Preset,
        Control::Output,
        Control::Length,
        Control::Noise,
        Control::NoiseW,
        Control::Silence,
        Control::Volume,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Control::Voice => "voice",
            Control::Speaker => "speaker",
            Control::Output => "output device",
            Control::Preset => "preset",
            Control::Length => "length",
            Control::Noise => "noise",
            Control::NoiseW => "noise-w",
            Control::Silence => "sentence silence",
            Control::Volume => "volume",
        }
    }

    /// Step, lower and upper bound of a numeric control.
    fn range(self) -> (f32, f32, f32) {
        match self {
            Control::Length => (0.05, 0.25, 4.0),
            Control::Noise | Control::NoiseW => (0.05, 0.0, 2.0),
            Control::Silence => (0.05, 0.0, 5.0),
            Control::Volume => (0.05, 0.0, 4.0),
            Control::Voice | Control::Speaker | Control::Preset | Control::Output => (0.0, 0.0, 0.0),
        }
    }
}

/// The controls of the Live screen, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveControl {
    Input,
    Output,
    Preset,
    Engine,
    Profile,
    Pitch,
    Formant,
    Mix,
}

impl LiveControl {
    pub const ALL: [LiveControl; 8] = [
        LiveControl::Input,
        LiveControl::Output,
        LiveControl::Preset,
        LiveControl::Engine,
        LiveControl::Profile,
        LiveControl::Pitch,
        LiveControl::Formant,
        LiveControl::Mix,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LiveControl::Input => "input",
            LiveControl::Output => "output",
            LiveControl::Preset => "preset",
            LiveControl::Engine => "engine",
            LiveControl::Profile => "profile",
            LiveControl::Pitch => "pitch (semitones)",
            LiveControl::Formant => "formant",
            LiveControl::Mix => "mix",
        }
    }
}

/// A running live conversion, as the app sees it (the streams themselves live with the job side).
#[derive(Debug, Clone)]
pub struct LiveInfo {
    pub input: String,
    pub output: String,
    pub rate: u32,
    pub latency_seconds: f64,
    pub state: Arc<crate::devices::LiveState>,
    pub stats: Arc<demod_voice_core::realtime::Stats>,
    pub controls: Arc<demod_voice_core::realtime::Controls>,
}

/// The Live screen's state.
#[derive(Debug)]
pub struct LiveView {
    pub control: usize,
    /// Device names; index 0 means the default device.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub input: usize,
    pub output: usize,
    /// Presets with a converter: name and settings. Index 0 of the picker is "(none)".
    pub presets: Vec<(String, demod_voice_core::presets::ConverterSettings)>,
    pub preset: usize,
    /// The converter engine.
    pub engine: Engine,
    /// 0 is "(none)", then the app's profiles.
    pub profile: usize,
    pub pitch: f32,
    pub formant: f32,
    pub mix: f32,
    /// Shared with the converter while it runs: changes apply at once.
    pub params: Arc<demod_voice_core::convert::dsp::DspParams>,
    pub running: Option<LiveInfo>,
    pub starting: bool,
    pub error: Option<String>,
    pub in_level: f32,
    pub out_level: f32,
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView {
            control: 0,
            inputs: Vec::new(),
            outputs: Vec::new(),
            input: 0,
            output: 0,
            presets: Vec::new(),
            preset: 0,
            engine: Engine::default(),
            profile: 0,
            pitch: 0.0,
            formant: 1.0,
            mix: 1.0,
            params: Arc::new(demod_voice_core::convert::dsp::DspParams::default()),
            running: None,
            starting: false,
            error: None,
            in_level: 0.0,
            out_level: 0.0,
        }
    }
}

/// One installed voice as the app shows it: the row `voices list` prints.
pub type VoiceInfo = demod_voice_core::library::VoiceRow;

/// One voice profile (for conversion) as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileInfo {
    pub name: String,
    pub median_f0_hz: f32,
    pub formant_scale: f32,
    pub voiced_seconds: f32,
    pub problem: Option<String>,
}

/// Where one batch job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStatus {
    Pending,
    Running,
    Done { audio_seconds: f64, seconds: f64 },
    Skipped(String),
    Failed(String),
}

/// One row of the batch table.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub row: usize,
    pub output: String,
    pub status: JobStatus,
}

/// The Batch screen's state.
#[derive(Debug, Default)]
pub struct BatchView {
    pub manifest: Option<PathBuf>,
    pub rows: Vec<BatchRow>,
    /// Invalid manifest rows, as text.
    pub invalid: Vec<String>,
    pub running: bool,
    pub started: Option<std::time::Instant>,
    /// Seconds the finished run took.
    pub elapsed: Option<f64>,
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The run belongs to another process; this app only follows its progress log (`cancel` stops following).
    pub watching: bool,
    /// Jobs a watched run announced (its rows may not all be known yet when following a log without its manifest).
    pub expected: Option<usize>,
    /// First table row shown.
    pub scroll: usize,
    pub error: Option<String>,
}

impl BatchView {
    /// Jobs finished one way or another.
    pub fn processed(&self) -> usize {
        self.rows.iter().filter(|r| !matches!(r.status, JobStatus::Pending | JobStatus::Running)).count()
    }

    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| matches!(r.status, JobStatus::Failed(_))).count()
    }

    /// Audio seconds made and the compute seconds they took.
    pub fn audio_and_compute(&self) -> (f64, f64) {
        self.rows.iter().fold((0.0, 0.0), |(a, c), r| match r.status {
            JobStatus::Done { audio_seconds, seconds } => (a + audio_seconds, c + seconds),
            _ => (a, c),
        })
    }

    /// Jobs in the run: the rows known, or what the run announced if that is more.
    pub fn total(&self) -> usize {
        self.rows.len().max(self.expected.unwrap_or(0))
    }

    fn apply(&mut self, event: demod_voice_core::batch::Event) {
        use demod_voice_core::batch::Event;
        let (row, output, status) = match event {
            Event::Started { row, output } => (row, output, JobStatus::Running),
            Event::Finished { row, output, audio_seconds, seconds } => {
                (row, output, JobStatus::Done { audio_seconds, seconds })
            }
            Event::Skipped { row, output, reason } => (row, output, JobStatus::Skipped(reason)),
            Event::Failed { row, output, error } => (row, output, JobStatus::Failed(error)),
        };
        // Rows are kept in manifest order, so the row number finds its place by binary search; a row not known
        // yet (a log followed without its manifest) takes its place there.
        match self.rows.binary_search_by_key(&row, |r| r.row) {
            Ok(index) => self.rows[index].status = status,
            Err(index) => self.rows.insert(index, BatchRow { row, output, status }),
        }
    }
}

/// What the prompt line is asking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptFor {
    Profile,
    Manifest,
    /// The manifest of a batch another process runs.
    Watch,
}

/// One health check as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckInfo {
    pub name: String,
    pub status: crate::health::Status,
    pub message: String,
    pub hint: Option<String>,
}

/// A finished (or failed) synthesis in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    pub text: String,
    /// The WAV it was saved to (None: spoken only).
    pub path: Option<PathBuf>,
    /// What was heard, at the output device's rate, for replay (spoken ones).
    pub audio: Option<Arc<Vec<f32>>>,
    pub outcome: std::result::Result<f32, String>,
}

/// The output device, as the app sees it.
#[derive(Debug, Clone)]
pub struct OutputInfo {
    pub device: String,
    pub rate: u32,
    pub state: Arc<crate::devices::PlaybackState>,
}

/// The utterance being spoken (or replayed).
#[derive(Debug)]
pub struct Speaking {
    pub id: u64,
    pub text: String,
    /// Queued so far, at the output rate.
    pub audio: Vec<f32>,
    /// The device's played-frames counter when this utterance started.
    pub base_played: u64,
    /// All of it is queued (synthesis finished).
    pub queued_all: bool,
    pub stop: Arc<AtomicBool>,
    pub started: Instant,
    /// From Speak to the first sample the device took, as the UI saw it (to a frame).
    pub first_audio: Option<Duration>,
    pub replay: bool,
}

impl Speaking {
    /// Frames of this utterance played.
    pub fn played(&self, output: &OutputInfo) -> usize {
        let played = output.state.played.load(Ordering::Relaxed).saturating_sub(self.base_played) as usize;
        played.min(self.audio.len())
    }
}

/// What to replay.
#[derive(Debug, Clone)]
pub enum PlaySource {
    Samples(Arc<Vec<f32>>),
    File(PathBuf),
}

/// Everything the user can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    NextScreen,
    PrevScreen,
    Goto(Screen),
    ToggleHelp,
    StartEditing,
    StopEditing,
    Type(char),
    Backspace,
    ClearText,
    SelectPrev,
    SelectNext,
    Decrease,
    Increase,
    Save,
    /// Speak the text (or stop speaking).
    Speak,
    StopSpeaking,
    /// Play the selected history entry again.
    Replay,
    HistoryPrev,
    HistoryNext,
    /// Time passed (meters and progress move).
    Tick,
    /// Start or stop the live conversion.
    ToggleLive,
    /// List the sound devices again (one was plugged in).
    RefreshDevices,
    RefreshHealth,
    StartAddProfile,
    OpenManifest,
    WatchBatch,
    CancelBatch,
    RerunBatch,
    Submit,
    Cancel,
}

/// Background work asked for by [`App::update`].
#[derive(Debug, Clone)]
pub enum Job {
    Synthesize {
        text: String,
        path: PathBuf,
        voice: Option<String>,
        scales: ScaleArgs,
    },
    Speak {
        id: u64,
        text: String,
        voice: Option<String>,
        scales: ScaleArgs,
        stop: Arc<AtomicBool>,
    },
    Play {
        id: u64,
        source: PlaySource,
        stop: Arc<AtomicBool>,
    },
    StartLive {
        input: Option<String>,
        output: Option<String>,
        engine: Engine,
        params: Arc<demod_voice_core::convert::dsp::DspParams>,
        mix: f32,
    },
    StopLive,
    ListDevices,
    /// Use this output device (None: the default) for Speak.
    OpenOutput {
        device: Option<String>,
    },
    AddProfile {
        name: String,
        reference: PathBuf,
    },
    CheckHealth,
    RunBatch {
        manifest: PathBuf,
        cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    },
    WatchBatch {
        manifest: PathBuf,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    },
}

/// What arrives on the run loop's channel.
#[derive(Debug)]
pub enum AppEvent {
    Key(KeyEvent),
    Resize,
    Tick,
    /// Samples of utterance `id` were queued for the device (at the output rate).
    Queued {
        id: u64,
        samples: Vec<f32>,
    },
    /// The sound devices for the Live screen's pickers ("(default)" first).
    Devices {
        inputs: Vec<String>,
        outputs: Vec<String>,
    },
    /// The output device for Speak was (re)opened, or could not be.
    OutputOpened(std::result::Result<OutputInfo, String>),
    /// The live conversion started (or could not).
    LiveStarted(std::result::Result<LiveInfo, String>),
    /// Utterance `id` is all queued, stopped, or failed.
    SpeakDone {
        id: u64,
        outcome: std::result::Result<(), String>,
    },
    Saved {
        path: PathBuf,
        outcome: std::result::Result<f32, String>,
    },
    /// A profile was added (the new list) or could not be.
    ProfileAdded {
        name: String,
        outcome: std::result::Result<Vec<ProfileInfo>, String>,
    },
    /// Fresh health checks, or why they could not run.
    HealthChecked(std::result::Result<Vec<CheckInfo>, String>),
    /// The manifest was read: its valid jobs (row, output) and its invalid rows.
    BatchLoaded {
        rows: Vec<(usize, String)>,
        invalid: Vec<String>,
    },
    Batch(demod_voice_core::batch::Event),
    /// A watched run's progress log says it started then (seconds since the Unix epoch), in process `pid`.
    BatchRun {
        started_unix: f64,
        pid: u32,
        jobs: usize,
    },
    /// Something to say about a watched run (waiting for it to start, say).
    BatchNote(String),
    /// The run ended (or could not start).
    BatchDone(std::result::Result<(), String>),
}

#[derive(Debug)]
pub struct App {
    pub screen: Screen,
    pub mode: Mode,
    pub show_help: bool,
    pub quit: bool,
    pub text: String,
    pub control: usize,
    pub voices: Vec<VoiceInfo>,
    pub voice: usize,
    /// Index into the voice's speakers.
    pub speaker: usize,
    pub profiles: Vec<ProfileInfo>,
    /// The line typed at the add-profile prompt.
    pub prompt: String,
    pub prompt_for: PromptFor,
    pub adding_profile: bool,
    pub batch: BatchView,
    pub live: LiveView,
    /// Preset names; index 0 is "(none)".
    pub presets: Vec<String>,
    pub preset: usize,
    pub length: f32,
    pub noise: f32,
    pub noise_w: f32,
    pub silence: f32,
    pub volume: f32,
    pub history: Vec<Utterance>,
    /// The history entry `p` replays.
    pub history_sel: usize,
    /// The output device, or why there is none.
    pub output: std::result::Result<OutputInfo, String>,
    pub speaking: Option<Speaking>,
    /// The Synthesize screen's output device pick: an index into `live.outputs` (0 = the default).
    pub output_pick: usize,
    /// The configured devices (the `audio` section), picked when the device lists first arrive.
    pub audio: demod_voice_core::config::AudioSection,
    devices_known: bool,
    /// Output level shown (peak, decaying).
    pub out_level: f32,
    next_id: u64,
    pub busy: Option<PathBuf>,
    /// The text being saved (the user may keep typing meanwhile).
    busy_text: String,
    pub checks: Vec<CheckInfo>,
    pub status: String,
    /// Where saved WAVs go.
    pub out_dir: PathBuf,
    next_take: u32,
}

impl App {
    pub fn new(voices: Vec<VoiceInfo>, presets: Vec<String>, checks: Vec<CheckInfo>, out_dir: PathBuf) -> Self {
        let mut preset_names = vec!["(none)".to_string()];
        preset_names.extend(presets);
        let status = if voices.is_empty() {
            "no voices installed: run `demod-voice setup`".to_string()
        } else {
            "i types text, Ctrl-P speaks it, Ctrl-S saves it to a WAV file, ? shows all keys".to_string()
        };
        App {
            screen: Screen::Synthesize,
            mode: Mode::Editing,
            show_help: false,
            quit: false,
            text: String::new(),
            control: 0,
            voices,
            voice: 0,
            speaker: 0,
            profiles: Vec::new(),
            prompt: String::new(),
            prompt_for: PromptFor::Profile,
            adding_profile: false,
            batch: BatchView::default(),
            live: LiveView::default(),
            presets: preset_names,
            preset: 0,
            length: 1.0,
            noise: 0.667,
            noise_w: 0.8,
            silence: 0.2,
            volume: 1.0,
            history: Vec::new(),
            history_sel: 0,
            output: Err("not opened yet".into()),
            speaking: None,
            output_pick: 0,
            audio: Default::default(),
            devices_known: false,
            out_level: 0.0,
            next_id: 1,
            busy: None,
            busy_text: String::new(),
            checks,
            status,
            out_dir,
            next_take: 1,
        }
    }

    /// The action a key stands for here, if any.
    pub fn action_for(&self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match (key.code, ctrl) {
            (KeyCode::Char('c'), true) => return Some(Action::Quit),
            (KeyCode::Char('s'), true) if self.mode != Mode::Prompt => return Some(Action::Save),
            (KeyCode::Char('p'), true) if self.mode != Mode::Prompt => return Some(Action::Speak),
            (KeyCode::Char('u'), true) if self.mode == Mode::Editing => return Some(Action::ClearText),
            _ => {}
        }
        if self.show_help {
            return Some(Action::ToggleHelp);
        }
        if self.mode == Mode::Prompt {
            return match key.code {
                KeyCode::Esc => Some(Action::Cancel),
                KeyCode::Enter => Some(Action::Submit),
                KeyCode::Backspace => Some(Action::Backspace),
                KeyCode::Char(c) if !ctrl => Some(Action::Type(c)),
                _ => None,
            };
        }
        if self.screen == Screen::Synthesize && self.mode == Mode::Editing {
            // A quick Esc then a key reaches us as Alt+key: it still leaves editing.
            if key.modifiers.contains(KeyModifiers::ALT) {
                return Some(Action::StopEditing);
            }
            return match key.code {
                KeyCode::Esc | KeyCode::Tab => Some(Action::StopEditing),
                KeyCode::Enter => Some(Action::Type('\n')),
                KeyCode::Backspace => Some(Action::Backspace),
                KeyCode::Char(c) if !ctrl => Some(Action::Type(c)),
                _ => None,
            };
        }
        match key.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            KeyCode::Tab => Some(Action::NextScreen),
            KeyCode::BackTab => Some(Action::PrevScreen),
            KeyCode::Char('1') => Some(Action::Goto(Screen::Synthesize)),
            KeyCode::Char('2') => Some(Action::Goto(Screen::Live)),
            KeyCode::Char('3') => Some(Action::Goto(Screen::Batch)),
            KeyCode::Char('4') => Some(Action::Goto(Screen::Voices)),
            KeyCode::Char('5') => Some(Action::Goto(Screen::Health)),
            KeyCode::Char(' ') | KeyCode::Enter if self.screen == Screen::Live => Some(Action::ToggleLive),
            KeyCode::Char('d') if self.screen == Screen::Live => Some(Action::RefreshDevices),
            KeyCode::Char('o') if self.screen == Screen::Batch => Some(Action::OpenManifest),
            KeyCode::Char('w') if self.screen == Screen::Batch => Some(Action::WatchBatch),
            KeyCode::Char('c') if self.screen == Screen::Batch => Some(Action::CancelBatch),
            KeyCode::Char('R') if self.screen == Screen::Batch => Some(Action::RerunBatch),
            KeyCode::Char('i') | KeyCode::Enter if self.screen == Screen::Synthesize => Some(Action::StartEditing),
            KeyCode::Char(' ') if self.screen == Screen::Synthesize => Some(Action::Speak),
            KeyCode::Char('x') | KeyCode::Esc if self.screen == Screen::Synthesize => Some(Action::StopSpeaking),
            KeyCode::Char('p') if self.screen == Screen::Synthesize => Some(Action::Replay),
            KeyCode::Char('[') if self.screen == Screen::Synthesize => Some(Action::HistoryPrev),
            KeyCode::Char(']') if self.screen == Screen::Synthesize => Some(Action::HistoryNext),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::SelectPrev),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::SelectNext),
            KeyCode::Left | KeyCode::Char('h') => Some(Action::Decrease),
            KeyCode::Right | KeyCode::Char('l') => Some(Action::Increase),
            KeyCode::Char('r') if self.screen == Screen::Health => Some(Action::RefreshHealth),
            KeyCode::Char('a') if self.screen == Screen::Voices => Some(Action::StartAddProfile),
            _ => None,
        }
    }

    /// Apply an action; background work it needs comes back as a [`Job`].
    pub fn update(&mut self, action: Action) -> Option<Job> {
        match action {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.show_help = !self.show_help,
            Action::NextScreen => self.screen = Screen::ALL[(self.screen.index() + 1) % Screen::ALL.len()],
            Action::PrevScreen => {
                self.screen = Screen::ALL[(self.screen.index() + Screen::ALL.len() - 1) % Screen::ALL.len()]
            }
            Action::Goto(screen) => {
                self.screen = screen;
                if screen == Screen::Synthesize {
                    self.mode = Mode::Normal;
                }
            }
            Action::StartEditing => self.mode = Mode::Editing,
            Action::StopEditing => self.mode = Mode::Normal,
            Action::Type(c) if self.mode == Mode::Prompt => self.prompt.push(c),
            Action::Type(c) => self.text.push(c),
            Action::Backspace if self.mode == Mode::Prompt => {
                self.prompt.pop();
            }
            Action::Backspace => {
                self.text.pop();
            }
            Action::OpenManifest => {
                if self.batch.running {
                    self.status = "a batch is running; c cancels it first".into();
                } else {
                    self.mode = Mode::Prompt;
                    self.prompt_for = PromptFor::Manifest;
                    self.prompt.clear();
                    self.status = "path of a manifest (.csv, .jsonl, .yaml, .txt); Enter runs it, Esc cancels".into();
                }
            }
            Action::WatchBatch => {
                if self.batch.running {
                    self.status = "a batch is running or watched; c stops it first".into();
                } else {
                    self.mode = Mode::Prompt;
                    self.prompt_for = PromptFor::Watch;
                    self.prompt.clear();
                    self.status =
                        "path of the manifest another `demod-voice batch` runs (or its .events.jsonl log, for \
                                   --state and --shard runs); Enter follows it, Esc cancels"
                            .into();
                }
            }
            Action::CancelBatch if self.batch.running && self.batch.watching => {
                self.batch.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                self.status = "stopped watching; the run goes on in its own process".into();
            }
            Action::CancelBatch => {
                if self.batch.running {
                    self.batch.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                    self.status = "cancelling: the running job finishes, the rest are left".into();
                } else {
                    self.status = "no batch is running".into();
                }
            }
            Action::RerunBatch => match self.batch.manifest.clone() {
                Some(manifest) if !self.batch.running => return Some(self.start_batch(manifest)),
                Some(_) => self.status = "a batch is running; c cancels it first".into(),
                None => self.status = "no manifest yet: o opens one".into(),
            },
            Action::StartAddProfile => {
                self.mode = Mode::Prompt;
                self.prompt_for = PromptFor::Profile;
                self.prompt.clear();
                self.status =
                    "path of a WAV recording of the voice (3 s or more of speech); Enter adds, Esc cancels".into();
            }
            Action::Cancel => {
                self.mode = Mode::Normal;
                self.status = match self.prompt_for {
                    PromptFor::Profile => "no profile added",
                    PromptFor::Manifest => "no manifest opened",
                    PromptFor::Watch => "not watching",
                }
                .into();
            }
            Action::Submit if matches!(self.prompt_for, PromptFor::Manifest | PromptFor::Watch) => {
                let manifest = PathBuf::from(self.prompt.trim());
                // A progress log may not exist yet (the run has not started); a manifest must.
                let log_to_come =
                    self.prompt_for == PromptFor::Watch && manifest.to_string_lossy().ends_with(".events.jsonl");
                if !manifest.is_file() && !log_to_come {
                    self.status = format!("{} is not a file; type the path of a manifest", manifest.display());
                    return None;
                }
                self.mode = Mode::Normal;
                if self.prompt_for == PromptFor::Watch {
                    return Some(self.start_watch(manifest));
                }
                return Some(self.start_batch(manifest));
            }
            Action::Submit => return self.add_profile(),
            Action::ClearText => self.text.clear(),
            Action::SelectPrev if self.screen == Screen::Batch => {
                self.batch.scroll = self.batch.scroll.saturating_sub(1)
            }
            Action::SelectNext if self.screen == Screen::Batch => {
                self.batch.scroll = (self.batch.scroll + 1).min(self.batch.rows.len().saturating_sub(1))
            }
            Action::SelectPrev if self.screen == Screen::Live => {
                self.live.control = self.live.control.saturating_sub(1)
            }
            Action::SelectNext if self.screen == Screen::Live => {
                self.live.control = (self.live.control + 1).min(LiveControl::ALL.len() - 1)
            }
            Action::SelectPrev => self.control = self.control.saturating_sub(1),
            Action::SelectNext => self.control = (self.control + 1).min(Control::ALL.len() - 1),
            Action::Decrease => return self.adjust(-1),
            Action::Increase => return self.adjust(1),
            Action::RefreshHealth => {
                self.status = "checking ...".into();
                return Some(Job::CheckHealth);
            }
            Action::Save => return self.save(),
            Action::Speak => return self.speak(),
            Action::StopSpeaking => self.stop_speaking(),
            Action::Replay => return self.replay(),
            Action::HistoryPrev => self.history_sel = self.history_sel.saturating_sub(1),
            Action::HistoryNext => self.history_sel = (self.history_sel + 1).min(self.history.len().saturating_sub(1)),
            Action::Tick => return self.tick(),
            Action::ToggleLive => return self.toggle_live(),
            Action::RefreshDevices => {
                self.status = "listing sound devices ...".into();
                return Some(Job::ListDevices);
            }
        }
        None
    }

    fn toggle_live(&mut self) -> Option<Job> {
        if self.live.running.take().is_some() {
            self.status = "live conversion stopped".into();
            return Some(Job::StopLive);
        }
        if self.live.starting {
            self.status = "still opening the devices".into();
            return None;
        }
        if self.speaking.is_some() {
            self.stop_speaking();
        }
        self.live.starting = true;
        self.live.error = None;
        self.status = "opening the devices ...".into();
        let pick = |names: &[String], index: usize| (index > 0).then(|| names.get(index).cloned()).flatten();
        Some(Job::StartLive {
            input: pick(&self.live.inputs, self.live.input),
            output: pick(&self.live.outputs, self.live.output),
            engine: self.live.engine,
            params: self.live.params.clone(),
            mix: self.live.mix,
        })
    }

    /// The output device for Speak was opened (or not).
    pub fn output_opened(&mut self, outcome: std::result::Result<OutputInfo, String>) {
        self.status = match &outcome {
            Ok(output) => format!("Speak plays through {} ({} Hz)", output.device, output.rate),
            Err(problem) => format!("no audio output ({problem}); Ctrl-S still saves to WAV"),
        };
        self.output = outcome;
    }

    /// The device lists arrived; the picks stay on the same names where they still exist (at first, on the
    /// configured devices).
    pub fn devices_listed(&mut self, inputs: Vec<String>, outputs: Vec<String>) {
        if !self.devices_known {
            self.devices_known = true;
            let find = |names: &[String], wanted: &Option<String>| {
                wanted.as_ref().and_then(|w| names.iter().position(|n| n == w)).unwrap_or(0)
            };
            self.live.input = find(&inputs, &self.audio.input_device);
            self.live.output = find(&outputs, &self.audio.output_device);
            self.output_pick = self.live.output;
            self.live.inputs = inputs;
            self.live.outputs = outputs;
            return;
        }
        if self.status == "listing sound devices ..." {
            self.status =
                format!("{} input(s), {} output(s)", inputs.len().saturating_sub(1), outputs.len().saturating_sub(1));
        }
        let keep = |names: &[String], index: usize, new: &[String]| {
            names.get(index).and_then(|name| new.iter().position(|n| n == name)).unwrap_or(0)
        };
        self.output_pick = keep(&self.live.outputs, self.output_pick, &outputs);
        self.live.input = keep(&self.live.inputs, self.live.input, &inputs);
        self.live.output = keep(&self.live.outputs, self.live.output, &outputs);
        self.live.inputs = inputs;
        self.live.outputs = outputs;
    }

    /// The live conversion started, or could not.
    pub fn live_started(&mut self, outcome: std::result::Result<LiveInfo, String>) {
        self.live.starting = false;
        match outcome {
            Ok(info) => {
                self.status = format!(
                    "live: {} -> {} at {} Hz, {:.0} ms through; Space stops",
                    info.input,
                    info.output,
                    info.rate,
                    info.latency_seconds * 1000.0
                );
                self.live.running = Some(info);
            }
            Err(problem) => {
                self.status = format!("live conversion did not start: {problem}");
                self.live.error = Some(format!("could not start: {problem}"));
            }
        }
    }

    /// Push the Live screen's settings into the running converter (atomics: takes effect on the next hop).
    fn apply_live_settings(&mut self) {
        let live = &mut self.live;
        live.params.set_pitch_semitones(live.pitch);
        live.params.set_formant_ratio(live.formant);
        let target = live.profile.checked_sub(1).and_then(|i| self.profiles.get(i)).filter(|p| p.problem.is_none());
        live.params.set_target(target.map(|p| demod_voice_core::convert::dsp::Target {
            median_f0: p.median_f0_hz,
            formant_scale: p.formant_scale,
        }));
        if let Some(running) = &live.running {
            running.controls.set_mix(live.mix);
        }
    }

    fn adjust_live(&mut self, direction: i32) {
        let cycle = |index: usize, len: usize| (index as i64 + direction as i64).rem_euclid(len.max(1) as i64) as usize;
        let step = |value: f32, by: f32, limit: limits::Limit| {
            limit.clamp(((value + by * direction as f32) * 100.0).round() / 100.0)
        };
        let live = &mut self.live;
        match LiveControl::ALL[live.control] {
            LiveControl::Input | LiveControl::Output | LiveControl::Engine if live.running.is_some() => {
                self.status = "stop the live conversion (Space) before changing devices or the engine".into();
                return;
            }
            LiveControl::Engine => {
                live.engine = Engine::from_index(cycle(live.engine.index(), Engine::ALL.len()));
            }
            LiveControl::Input => live.input = cycle(live.input, live.inputs.len()),
            LiveControl::Output => live.output = cycle(live.output, live.outputs.len()),
            LiveControl::Preset => {
                live.preset = cycle(live.preset, live.presets.len() + 1);
                if let Some((_, settings)) = live.preset.checked_sub(1).and_then(|i| live.presets.get(i)) {
                    live.pitch = settings.pitch_semitones;
                    live.formant = settings.formant_ratio;
                    live.mix = settings.mix;
                    live.engine = settings.engine;
                    live.params.set_profile_amount(settings.profile_amount);
                    live.profile = settings
                        .profile
                        .as_ref()
                        .and_then(|name| self.profiles.iter().position(|p| &p.name == name))
                        .map_or(0, |i| i + 1);
                }
            }
            LiveControl::Profile => live.profile = cycle(live.profile, self.profiles.len() + 1),
            LiveControl::Pitch => live.pitch = step(live.pitch, 0.5, limits::PITCH_SEMITONES),
            LiveControl::Formant => live.formant = step(live.formant, 0.02, limits::FORMANT_RATIO),
            LiveControl::Mix => live.mix = step(live.mix, 0.05, limits::MIX),
        }
        self.apply_live_settings();
    }

    /// Whether time passing changes the screen: meters above silence, playback progress, a running batch's clock.
    pub fn animating(&self) -> bool {
        self.speaking.is_some()
            || self.live.running.is_some()
            || self.batch.running
            || [self.out_level, self.live.in_level, self.live.out_level].iter().any(|level| *level > METER_FLOOR)
    }

    /// Why Speak cannot play now, for the status line.
    fn no_output_message(&self) -> Option<String> {
        if self.live.running.is_some() || self.live.starting {
            // One device, one user: two streams on a device without a mixer would fail.
            return Some("Live is using the sound devices; stop it (Space on the Live screen) to speak".into());
        }
        self.output.as_ref().err().map(|problem| format!("no audio output ({problem}); Ctrl-S still saves to WAV"))
    }

    fn speak(&mut self) -> Option<Job> {
        if self.speaking.is_some() {
            self.stop_speaking();
            return None;
        }
        if let Some(message) = self.no_output_message() {
            self.status = message;
            return None;
        }
        if self.text.trim().is_empty() {
            self.status = "nothing to speak: type some text first (i)".into();
            return None;
        }
        if self.voices.is_empty() {
            self.status = "no voices installed: run `demod-voice setup`".into();
            return None;
        }
        let (id, stop) = self.start_speaking(self.text.clone(), false);
        self.status = "speaking ... (Ctrl-P or x stops)".into();
        let voice = self.voices.get(self.voice).map(|v| v.name.clone());
        Some(Job::Speak { id, text: self.text.clone(), voice, scales: self.scales(), stop })
    }

    fn start_speaking(&mut self, text: String, replay: bool) -> (u64, Arc<AtomicBool>) {
        let id = self.next_id;
        self.next_id += 1;
        let stop = Arc::new(AtomicBool::new(false));
        let base_played = self.output.as_ref().map_or(0, |o| o.state.played.load(Ordering::Relaxed));
        self.speaking = Some(Speaking {
            id,
            text,
            audio: Vec::new(),
            base_played,
            queued_all: false,
            stop: stop.clone(),
            started: Instant::now(),
            first_audio: None,
            replay,
        });
        (id, stop)
    }

    fn replay(&mut self) -> Option<Job> {
        if self.speaking.is_some() {
            self.status = "already playing; x stops it".into();
            return None;
        }
        if let Some(message) = self.no_output_message() {
            self.status = message;
            return None;
        }
        let Some(entry) = self.history.get(self.history_sel) else {
            self.status = "nothing to replay yet: Ctrl-P speaks the text".into();
            return None;
        };
        let source = match (&entry.audio, &entry.path, &entry.outcome) {
            (_, _, Err(_)) => {
                self.status = "that entry failed; there is nothing to play".into();
                return None;
            }
            (Some(audio), _, _) => PlaySource::Samples(audio.clone()),
            (None, Some(path), _) => PlaySource::File(path.clone()),
            (None, None, _) => {
                self.status =
                    format!("only the {HISTORY_AUDIO} newest spoken entries keep their audio; speak it again");
                return None;
            }
        };
        let text = entry.text.clone();
        let (id, stop) = self.start_speaking(text, true);
        self.status = "replaying ... (x stops)".into();
        Some(Job::Play { id, source, stop })
    }

    fn stop_speaking(&mut self) {
        let Some(speaking) = self.speaking.take() else { return };
        speaking.stop.store(true, Ordering::Relaxed);
        if let Ok(output) = &self.output {
            output.state.flush.store(true, Ordering::Release);
        }
        self.status = "stopped".into();
        if !speaking.replay && !speaking.audio.is_empty() {
            self.remember_spoken(speaking);
        }
    }

    fn remember_spoken(&mut self, speaking: Speaking) {
        let rate = self.output.as_ref().map_or(1, |o| o.rate.max(1));
        let seconds = speaking.audio.len() as f32 / rate as f32;
        self.history.insert(
            0,
            Utterance { text: speaking.text, path: None, audio: Some(Arc::new(speaking.audio)), outcome: Ok(seconds) },
        );
        self.history.truncate(HISTORY_ENTRIES);
        // Audio is big (a minute at 48 kHz is 11 MB): only the newest spoken entries keep theirs.
        for entry in self.history.iter_mut().filter(|e| e.audio.is_some()).skip(HISTORY_AUDIO) {
            entry.audio = None;
        }
        self.history_sel = 0;
    }

    /// Meters decay, progress moves, and an utterance that has been heard to its end goes to the history.
    fn tick(&mut self) -> Option<Job> {
        if let Some(running) = &self.live.running {
            self.live.in_level = running.state.input_meter.take().max(self.live.in_level * 0.6);
            self.live.out_level = running.state.output_meter.take().max(self.live.out_level * 0.6);
            if running.state.device.lost.load(Ordering::Acquire) {
                self.live.running = None;
                self.live.error = Some(
                    "stopped: a sound device went away (unplugged?); check the devices (d), then start again".into(),
                );
                self.status = "live conversion stopped: a sound device went away".into();
                return Some(Job::StopLive);
            }
        }
        let Ok(output) = &self.output else { return None };
        if output.state.device.lost.swap(false, Ordering::AcqRel) {
            let was_speaking = self.speaking.is_some();
            self.stop_speaking();
            if was_speaking {
                self.status = "the output device went away (unplugged?); playback stopped".into();
            }
            return None;
        }
        let peak = output.state.meter.take();
        self.out_level = peak.max(self.out_level * 0.6);
        let output = output.clone();
        let Some(speaking) = &mut self.speaking else { return None };
        let played = speaking.played(&output);
        if played > 0 && speaking.first_audio.is_none() {
            speaking.first_audio = Some(speaking.started.elapsed());
        }
        if speaking.queued_all && played >= speaking.audio.len() {
            let speaking = self.speaking.take()?;
            let seconds = speaking.audio.len() as f32 / output.rate.max(1) as f32;
            self.status = match speaking.first_audio {
                Some(first) => format!("spoke {seconds:.1} s (first audio after {} ms)", first.as_millis()),
                None => format!("spoke {seconds:.1} s"),
            };
            if !speaking.replay {
                self.remember_spoken(speaking);
            }
        }
        None
    }

    /// Audio of utterance `id` was queued.
    pub fn queued(&mut self, id: u64, samples: Vec<f32>) {
        if let Some(speaking) = self.speaking.as_mut().filter(|s| s.id == id) {
            speaking.audio.extend_from_slice(&samples);
        }
    }

    /// Utterance `id` is fully queued, or failed.
    pub fn speak_done(&mut self, id: u64, outcome: std::result::Result<(), String>) {
        let Some(speaking) = self.speaking.as_mut().filter(|s| s.id == id) else { return };
        match outcome {
            Ok(()) => speaking.queued_all = true,
            Err(problem) => {
                let text = speaking.text.clone();
                self.stop_speaking();
                self.status = format!("speaking failed: {problem}");
                self.history.insert(0, Utterance { text, path: None, audio: None, outcome: Err(problem) });
                self.history_sel = 0;
            }
        }
    }

    fn adjust(&mut self, direction: i32) -> Option<Job> {
        if self.screen == Screen::Live {
            self.adjust_live(direction);
            return None;
        }
        if self.screen != Screen::Synthesize {
            return None;
        }
        let control = Control::ALL[self.control];
        let cycle = |index: usize, len: usize| {
            if len == 0 {
                0
            } else {
                (index as i64 + direction as i64).rem_euclid(len as i64) as usize
            }
        };
        match control {
            Control::Voice => {
                self.voice = cycle(self.voice, self.voices.len());
                self.speaker = 0;
            }
            Control::Speaker => {
                self.speaker = cycle(self.speaker, self.voices.get(self.voice).map_or(0, |v| v.speaker_names.len()))
            }
            Control::Preset => self.preset = cycle(self.preset, self.presets.len()),
            Control::Output => {
                if self.live.running.is_some() {
                    self.status = "the Live screen is using the devices; stop it first".into();
                    return None;
                }
                self.output_pick = cycle(self.output_pick, self.live.outputs.len());
                self.stop_speaking();
                let device = (self.output_pick > 0).then(|| self.live.outputs.get(self.output_pick).cloned()).flatten();
                self.status = format!("opening {} ...", device.as_deref().unwrap_or("the default output device"));
                return Some(Job::OpenOutput { device });
            }
            _ => {
                let (step, low, high) = control.range();
                let value = match control {
                    Control::Length => &mut self.length,
                    Control::Noise => &mut self.noise,
                    Control::NoiseW => &mut self.noise_w,
                    Control::Silence => &mut self.silence,
                    _ => &mut self.volume,
                };
                *value = ((*value + step * direction as f32) * 1000.0).round() / 1000.0;
                *value = value.clamp(low, high);
            }
        }
        None
    }

    fn save(&mut self) -> Option<Job> {
        if self.busy.is_some() {
            self.status = "still saving the previous take; wait for it to finish".into();
            return None;
        }
        if self.text.trim().is_empty() {
            self.status = "nothing to save: type some text first".into();
            return None;
        }
        if self.voices.is_empty() {
            self.status = "no voices installed: run `demod-voice setup`".into();
            return None;
        }
        let path = loop {
            let candidate = self.out_dir.join(format!("take-{:03}.wav", self.next_take));
            self.next_take += 1;
            if !candidate.exists() {
                break candidate;
            }
        };
        self.busy = Some(path.clone());
        self.busy_text = self.text.clone();
        self.status = format!("saving {} ...", path.display());
        let scales = self.scales();
        let voice = self.voices.get(self.voice).map(|v| v.name.clone());
        Some(Job::Synthesize { text: self.text.clone(), path, voice, scales })
    }

    /// The Synthesize screen's settings, as `speak`'s flags.
    fn scales(&self) -> ScaleArgs {
        ScaleArgs {
            preset: (self.preset > 0).then(|| self.presets[self.preset].clone()),
            speaker: self.voices.get(self.voice).and_then(|v| v.speaker_names.get(self.speaker)).cloned(),
            length_scale: Some(self.length),
            noise_scale: Some(self.noise),
            noise_w: Some(self.noise_w),
            sentence_silence: Some(self.silence),
            volume: Some(self.volume),
            ..ScaleArgs::default()
        }
    }

    fn add_profile(&mut self) -> Option<Job> {
        let reference = PathBuf::from(self.prompt.trim());
        if self.adding_profile {
            self.status = "still adding the previous profile; wait for it to finish".into();
            return None;
        }
        let Some(name) = reference.file_stem().map(|stem| stem.to_string_lossy().into_owned()) else {
            self.status = "type the path of a WAV file, e.g. ~/me.wav".into();
            return None;
        };
        if !reference.is_file() {
            self.status = format!("{} is not a file; type the path of a WAV recording", reference.display());
            return None;
        }
        self.mode = Mode::Normal;
        self.adding_profile = true;
        self.status = format!("analysing {} for profile `{name}` ...", reference.display());
        Some(Job::AddProfile { name, reference })
    }

    /// A profile job finished.
    pub fn profile_added(&mut self, name: String, outcome: std::result::Result<Vec<ProfileInfo>, String>) {
        self.adding_profile = false;
        match outcome {
            Ok(profiles) => {
                self.profiles = profiles;
                self.status = format!("added profile `{name}`");
            }
            Err(problem) => self.status = format!("adding profile `{name}` failed: {problem}"),
        }
    }

    fn start_batch(&mut self, manifest: PathBuf) -> Job {
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.batch = BatchView {
            manifest: Some(manifest.clone()),
            running: true,
            started: Some(std::time::Instant::now()),
            cancel: cancel.clone(),
            ..BatchView::default()
        };
        self.status = format!("running {} ...", manifest.display());
        Job::RunBatch { manifest, cancel }
    }

    fn start_watch(&mut self, manifest: PathBuf) -> Job {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.batch = BatchView {
            manifest: Some(manifest.clone()),
            running: true,
            watching: true,
            started: Some(std::time::Instant::now()),
            cancel: stop.clone(),
            ..BatchView::default()
        };
        self.status = format!("following the run of {} ...", manifest.display());
        Job::WatchBatch { manifest, stop }
    }

    /// Batch progress arrived.
    pub fn batch_event(&mut self, event: AppEvent) {
        match event {
            AppEvent::BatchRun { started_unix, pid, jobs } => {
                self.batch.expected = Some(jobs);
                let now =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                let ago = Duration::from_secs_f64((now - started_unix).max(0.0));
                self.batch.started = Instant::now().checked_sub(ago).or(self.batch.started);
                self.status = format!("following the run of process {pid}; c stops following");
            }
            AppEvent::BatchNote(note) => self.status = note,
            AppEvent::BatchLoaded { rows, invalid } => {
                self.batch.rows = rows
                    .into_iter()
                    .map(|(row, output)| BatchRow { row, output, status: JobStatus::Pending })
                    .collect();
                self.batch.invalid = invalid;
            }
            AppEvent::Batch(event) => self.batch.apply(event),
            AppEvent::BatchDone(outcome) => {
                self.batch.running = false;
                self.batch.elapsed = self.batch.started.map(|s| s.elapsed().as_secs_f64());
                let cancelled = self.batch.cancel.load(std::sync::atomic::Ordering::Relaxed);
                let verb = match (self.batch.watching, cancelled) {
                    (true, true) => "no longer watched",
                    (true, false) => "watched batch finished",
                    (false, true) => "batch cancelled",
                    (false, false) => "batch finished",
                };
                self.status = match outcome {
                    Ok(()) => format!(
                        "{verb}: {} of {} processed, {} failed, {} invalid row(s){}",
                        self.batch.processed(),
                        self.batch.rows.len(),
                        self.batch.failed(),
                        self.batch.invalid.len(),
                        if self.batch.failed() > 0 { "; R runs it again (done jobs are skipped)" } else { "" }
                    ),
                    Err(problem) => {
                        self.batch.error = Some(problem.clone());
                        format!("batch failed: {problem}")
                    }
                };
            }
            _ => {}
        }
    }

    /// Fresh health checks arrived.
    pub fn health_checked(&mut self, outcome: std::result::Result<Vec<CheckInfo>, String>) {
        match outcome {
            Ok(checks) => {
                let problems = checks.iter().filter(|c| c.status != crate::health::Status::Ok).count();
                self.checks = checks;
                self.status = format!("health checked: {problems} problem(s)");
            }
            Err(problem) => self.status = format!("health check failed: {problem}"),
        }
    }

    /// A background job finished.
    pub fn saved(&mut self, path: PathBuf, outcome: std::result::Result<f32, String>) {
        self.busy = None;
        self.status = match &outcome {
            Ok(seconds) => format!("saved {} ({seconds:.1} s)", path.display()),
            Err(problem) => format!("saving {} failed: {problem}", path.display()),
        };
        self.history
            .insert(0, Utterance { text: std::mem::take(&mut self.busy_text), path: Some(path), audio: None, outcome });
        self.history.truncate(HISTORY_ENTRIES);
        self.history_sel = 0;
    }
}

/// Draw, wait for an event, apply it; until the user quits. Jobs go to `spawn`, which sends their results back.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    events: &Receiver<AppEvent>,
    mut spawn: impl FnMut(Job),
) -> Result<()> {
    let mut redraw = true;
    while !app.quit {
        if redraw {
            terminal.draw(|frame| frame.render_widget(&*app, frame.area()))?;
        }
        let Ok(event) = events.recv() else { break };
        // A tick changes the screen only while something on it moves; anything else may change it.
        redraw = !matches!(event, AppEvent::Tick) || app.animating();
        match event {
            AppEvent::Key(key) => {
                if let Some(job) = app.action_for(key).and_then(|action| app.update(action)) {
                    spawn(job);
                }
            }
            AppEvent::Resize => terminal.autoresize()?,
            AppEvent::Tick => {
                if let Some(job) = app.update(Action::Tick) {
                    spawn(job);
                }
            }
            AppEvent::Queued { id, samples } => app.queued(id, samples),
            AppEvent::SpeakDone { id, outcome } => app.speak_done(id, outcome),
            AppEvent::LiveStarted(outcome) => app.live_started(outcome),
            AppEvent::OutputOpened(outcome) => app.output_opened(outcome),
            AppEvent::Devices { inputs, outputs } => app.devices_listed(inputs, outputs),
            AppEvent::Saved { path, outcome } => app.saved(path, outcome),
            AppEvent::ProfileAdded { name, outcome } => app.profile_added(name, outcome),
            AppEvent::HealthChecked(outcome) => app.health_checked(outcome),
            batch @ (AppEvent::BatchLoaded { .. }
            | AppEvent::Batch(_)
            | AppEvent::BatchDone(_)
            | AppEvent::BatchRun { .. }
            | AppEvent::BatchNote(_)) => app.batch_event(batch),
        }
    }
    Ok(())
}

/// A context for one background job, built afresh so config edits apply. Quiet: a summary line on stderr would
/// tear the full-screen display.
fn quiet_context(global: &GlobalArgs) -> Result<Context> {
    Context::new(GlobalArgs { quiet: true, verbose: 0, ..global.clone() })
}

/// Save: the speech pipeline into a WAV file, exactly as `demod-voice speak -o` does; the WAV's length in seconds.
fn synthesize(
    global: &GlobalArgs,
    text: String,
    path: &std::path::Path,
    voice: Option<String>,
    scales: ScaleArgs,
) -> Result<f32> {
    let mut ctx = quiet_context(global)?;
    ctx.apply_speech_flags(&scales)?;
    ctx.set_voice(voice.as_deref(), "the voice picker");
    let voice = ctx.settings.load_voice(None)?;
    let speech = Speech::new(&voice, &ctx.settings)?;
    let spoken = speech.to_file(&text, path, WavEncoding::from(ctx.settings.config.output.format))?;
    Ok(spoken.seconds() as f32)
}

/// Analyse a reference recording into a profile, as `voices add-profile` does; the profiles afterwards.
fn add_profile(global: &GlobalArgs, name: &str, reference: PathBuf) -> Result<Vec<ProfileInfo>> {
    let ctx = quiet_context(global)?;
    demod_voice_core::library::add_profile(&ctx.settings.profiles_dir(), name, &[reference], false)?;
    Ok(profile_infos(&ctx))
}

fn profile_infos(ctx: &Context) -> Vec<ProfileInfo> {
    demod_voice_core::library::profiles(&ctx.settings.profiles_dir())
        .into_iter()
        .map(|row| ProfileInfo {
            name: row.name,
            median_f0_hz: row.median_f0_hz.unwrap_or(0.0),
            formant_scale: row.formant_scale.unwrap_or(0.0),
            voiced_seconds: row.voiced_seconds.unwrap_or(0.0),
            problem: row.problem,
        })
        .collect()
}

fn check_infos(ctx: &Context) -> Vec<CheckInfo> {
    crate::health::collect(ctx, false, None)
        .checks
        .into_iter()
        .map(|check| CheckInfo {
            name: check.name.to_string(),
            status: check.status,
            message: check.message,
            hint: check.hint,
        })
        .collect()
}

/// Seconds per frame of drawing the Batch screen with `jobs` jobs (half done, every tenth failed) on an off-screen
/// terminal of `width` x `height`, for `frames` frames; for `bench --app-frame`.
pub fn batch_frame_times(jobs: usize, width: u16, height: u16, frames: usize) -> Result<Vec<f64>> {
    let mut app = App::new(Vec::new(), Vec::new(), Vec::new(), PathBuf::from("."));
    app.screen = Screen::Batch;
    let _ = app.start_batch(PathBuf::from("manifest.csv"));
    let rows = (1..=jobs).map(|row| (row, format!("out/{row:06}.wav"))).collect();
    app.batch_event(AppEvent::BatchLoaded { rows, invalid: Vec::new() });
    for row in 1..=jobs / 2 {
        let output = format!("out/{row:06}.wav");
        app.batch.apply(if row % 10 == 0 {
            demod_voice_core::batch::Event::Failed { row, output, error: "voice not installed".into() }
        } else {
            demod_voice_core::batch::Event::Finished { row, output, audio_seconds: 3.0, seconds: 0.1 }
        });
    }
    let mut terminal = Terminal::new(ratatui::backend::TestBackend::new(width, height))?;
    let mut times = Vec::with_capacity(frames);
    for frame in 0..frames {
        app.batch.scroll = frame * 97 % jobs.max(1);
        let started = std::time::Instant::now();
        terminal.draw(|f| f.render_widget(&app, f.area()))?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(times)
}

/// Seconds from pressing Speak (Ctrl-P) to the device taking the first sample, `runs` times, for
/// `bench --speak-first-audio`: the app's own Speak path (update -> job -> synthesis -> queue -> device callback) on
/// the default output device, with the voice preloaded as the app does at start.
pub fn speak_first_audio_times(ctx: &Context, text: &str, runs: usize) -> Result<(String, Vec<f64>)> {
    let mut app = app_from_context(ctx)?;
    let playback = crate::devices::Playback::open(None).map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let device = format!("{} ({} Hz)", playback.device, playback.rate);
    let state = playback.state.clone();
    app.output = Ok(OutputInfo { device: playback.device.clone(), rate: playback.rate, state: state.clone() });
    let shared = Shared::default();
    *lock(&shared.playback) = Some(playback);
    let voice = app.voices.first().map(|v| v.name.clone());
    drop(kept_voice(&shared, &quiet_context(&ctx.global)?, voice.as_deref())?);
    app.text = text.to_string();
    let (sender, receiver) = mpsc::channel();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let Some(Job::Speak { id, text, voice, scales, stop }) = app.update(Action::Speak) else {
            anyhow::bail!("Speak did not start: {}", app.status);
        };
        let (global, shared, sender) = (ctx.global.clone(), shared.clone(), sender.clone());
        let job = std::thread::spawn(move || {
            let outcome = guarded(|| speak_job(&global, &shared, &sender, id, &text, voice, &scales, &stop));
            let _ = sender.send(AppEvent::SpeakDone { id, outcome });
        });
        let before = state.played.load(Ordering::Relaxed);
        let heard = loop {
            if state.played.load(Ordering::Relaxed) > before {
                break Some(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > Duration::from_secs(10) {
                break None;
            }
            std::thread::sleep(Duration::from_micros(100));
        };
        app.update(Action::StopSpeaking);
        let _ = job.join();
        while let Ok(event) = receiver.try_recv() {
            if let AppEvent::SpeakDone { outcome: Err(problem), .. } = event {
                anyhow::bail!("speaking failed: {problem}");
            }
        }
        times.push(heard.ok_or_else(|| anyhow::anyhow!("the device took no audio within 10 s"))?);
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok((device, times))
}

/// Gather what the screens show from the installed voices, presets and health checks.
pub fn app_from_context(ctx: &Context) -> Result<App> {
    let voices = demod_voice_core::library::voices(&ctx.settings.dirs.voices_dir());
    let presets = demod_voice_core::presets::all(&ctx.settings.dirs.config.join("presets"))
        .into_iter()
        .filter_map(|entry| entry.ok().map(|found| found.preset.name))
        .collect();
    let checks = check_infos(ctx);
    let out_dir = std::env::current_dir().context("finding the current folder for saved takes")?;
    let mut app = App::new(voices, presets, checks, out_dir);
    app.audio = ctx.settings.config.audio.clone();
    app.profiles = profile_infos(ctx);
    app.live.presets = demod_voice_core::presets::all(&ctx.settings.dirs.config.join("presets"))
        .into_iter()
        .filter_map(|entry| entry.ok().and_then(|found| found.preset.converter.map(|c| (found.preset.name, c))))
        .collect();
    Ok(app)
}

/// Open the app on the real terminal; the terminal is restored on every way out, panics included.
pub fn run(ctx: &Context) -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::error::usage(
            "the terminal app needs a terminal; use the subcommands (`demod-voice --help`) in scripts",
        ));
    }
    let mut app = app_from_context(ctx)?;
    app.live.inputs = device_list(Vec::new());
    app.live.outputs = device_list(Vec::new());
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A job's panic is caught and shown in the app (see `guarded`); any other ends the app, terminal restored.
        if std::thread::current().name() != Some(JOB_THREAD) {
            restore_terminal();
            restore_stderr();
            previous_hook(info);
        }
    }));
    // Sound libraries print to stderr (ALSA does, when a device is missing), which would tear the screen: while
    // the app is up, stderr goes to a log file.
    let log = ctx.settings.dirs.cache.join("app-stderr.log");
    let _stderr = StderrRedirect::to(&log);
    let shared = Shared::default();
    match crate::devices::Playback::open(ctx.settings.config.audio.output_device.as_deref()) {
        Ok(playback) => {
            app.output =
                Ok(OutputInfo { device: playback.device.clone(), rate: playback.rate, state: playback.state.clone() });
            *lock(&shared.playback) = Some(playback);
        }
        Err(problem) => {
            app.status = format!("no audio output ({problem}); Ctrl-S saves to WAV");
            app.output = Err(problem);
        }
    }
    let global = ctx.global.clone();
    if app.output.is_ok() {
        // Load the voice Speak will use now, so the first Speak does not wait for the model.
        let (shared, global) = (shared.clone(), global.clone());
        let voice = app.voices.first().map(|v| v.name.clone());
        let _ = std::thread::Builder::new().name(JOB_THREAD.into()).spawn(move || {
            let _ = guarded(|| {
                let ctx = quiet_context(&global)?;
                kept_voice(&shared, &ctx, voice.as_deref()).map(drop)
            });
        });
    }
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let (sender, receiver) = mpsc::channel();
    spawn_input_thread(sender.clone());

    let mut spawn = |job| {
        let sender: Sender<AppEvent> = sender.clone();
        let global = global.clone();
        let shared = shared.clone();
        let worker = move || match job {
            Job::Speak { id, text, voice, scales, stop } => {
                let outcome = guarded(|| speak_job(&global, &shared, &sender, id, &text, voice, &scales, &stop));
                let _ = sender.send(AppEvent::SpeakDone { id, outcome });
            }
            Job::Play { id, source, stop } => {
                let outcome = guarded(|| play_job(&shared, &sender, id, source, &stop));
                let _ = sender.send(AppEvent::SpeakDone { id, outcome });
            }
            Job::StartLive { input, output, engine, params, mix } => {
                let outcome = guarded(|| start_live(&global, &shared, input, output, engine, params, mix));
                let _ = sender.send(AppEvent::LiveStarted(outcome));
            }
            Job::StopLive => drop(lock(&shared.live).take()),
            Job::Synthesize { text, path, voice, scales } => {
                let outcome = guarded(|| synthesize(&global, text, &path, voice, scales));
                let _ = sender.send(AppEvent::Saved { path, outcome });
            }
            Job::AddProfile { name, reference } => {
                let outcome = guarded(|| add_profile(&global, &name, reference));
                let _ = sender.send(AppEvent::ProfileAdded { name, outcome });
            }
            Job::RunBatch { manifest, cancel } => {
                let outcome = guarded(|| {
                    quiet_context(&global).and_then(|mut ctx| {
                        let loaded =
                            |jobs: &[demod_voice_core::batch::Job], errors: &[demod_voice_core::batch::RowError]| {
                                let rows = jobs.iter().map(|j| (j.row, j.output_as_written.clone())).collect();
                                let invalid = errors.iter().map(ToString::to_string).collect();
                                let _ = sender.send(AppEvent::BatchLoaded { rows, invalid });
                            };
                        let events = std::sync::Mutex::new(sender.clone());
                        let forward = |event| {
                            let _ = events.lock().unwrap_or_else(|p| p.into_inner()).send(AppEvent::Batch(event));
                        };
                        run_batch(&mut ctx, &manifest, cancel, loaded, &forward)
                    })
                })
                .map(|_| ());
                let _ = sender.send(AppEvent::BatchDone(outcome));
            }
            Job::WatchBatch { manifest, stop } => {
                let outcome = guarded(|| watch_batch(&manifest, &stop, &sender));
                let _ = sender.send(AppEvent::BatchDone(outcome));
            }
            Job::CheckHealth => {
                let outcome = guarded(|| quiet_context(&global).map(|ctx| check_infos(&ctx)));
                let _ = sender.send(AppEvent::HealthChecked(outcome));
            }
            Job::OpenOutput { device } => {
                let mut playback = lock(&shared.playback);
                *playback = None;
                let outcome = crate::devices::Playback::open(device.as_deref()).map(|opened| {
                    let info =
                        OutputInfo { device: opened.device.clone(), rate: opened.rate, state: opened.state.clone() };
                    *playback = Some(opened);
                    info
                });
                drop(playback);
                let _ = sender.send(AppEvent::OutputOpened(outcome));
            }
            Job::ListDevices => {
                let inputs = device_list(crate::devices::device_names(true));
                let outputs = device_list(crate::devices::device_names(false));
                let _ = sender.send(AppEvent::Devices { inputs, outputs });
            }
        };
        // As std::thread::spawn does, only an exhausted system fails here.
        std::thread::Builder::new().name(JOB_THREAD.into()).spawn(worker).expect("spawning a job thread");
    };
    // Listing devices can take a while (some hosts open each one to ask): the Live screen's pickers fill in when
    // it is done.
    spawn(Job::ListDevices);
    let result = run_loop(&mut terminal, &mut app, &receiver, &mut spawn);
    restore_terminal();
    result
}

/// A device picker's entries: "(default)" first, then the devices by name.
fn device_list(names: Vec<String>) -> Vec<String> {
    std::iter::once("(default)".to_string()).chain(names).collect()
}

/// Below this peak (-90 dBFS) a meter shows silence.
pub const METER_FLOOR: f32 = 3e-5;

/// Entries the history keeps.
const HISTORY_ENTRIES: usize = 50;
/// Spoken entries that keep their audio for replay.
const HISTORY_AUDIO: usize = 10;

/// What job threads share: the output device and the voice kept loaded between Speaks.
#[derive(Clone, Default)]
struct Shared {
    playback: Arc<Mutex<Option<crate::devices::Playback>>>,
    /// The running live conversion (its streams and worker).
    live: Arc<Mutex<Option<crate::devices::Live>>>,
    /// Loaded voices, shared with `bench` and batch runs through core's cache.
    voices: Arc<VoiceCache>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The voice `name` (None: the configured one), loaded once and kept; the app keeps one voice loaded at a time.
fn kept_voice(shared: &Shared, ctx: &Context, name: Option<&str>) -> Result<Arc<demod_voice_core::piper::PiperVoice>> {
    let spec = name.unwrap_or(&ctx.settings.config.tts.voice);
    shared.voices.keep_only(spec);
    Ok(shared.voices.get(spec, |spec| ctx.settings.load_voice(Some(spec)))?)
}

/// Resample `samples` to the output rate, tell the app, and queue them for the device (waiting while the queue
/// is full; giving up when `stop` is set). The playback's generation after queuing.
fn queue_for_output(
    shared: &Shared,
    sender: &Sender<AppEvent>,
    id: u64,
    samples: Vec<f32>,
    rate: u32,
    stop: &AtomicBool,
) -> Result<u64> {
    let mut playback = lock(&shared.playback);
    let Some(playback) = playback.as_mut() else { anyhow::bail!("the audio output is closed") };
    let samples =
        if rate == playback.rate { samples } else { demod_voice_core::wav::resample(&samples, rate, playback.rate)? };
    // The app learns of the samples before the device can play them, so its progress never runs ahead.
    let _ = sender.send(AppEvent::Queued { id, samples: samples.clone() });
    playback.queue(&samples, stop).map_err(|problem| anyhow::anyhow!("{problem}"))?;
    Ok(playback.generation())
}

/// Speak `text` through the output device, sentence by sentence as each is synthesized (same pipeline as
/// `speak`). Stopping is not an error.
#[allow(clippy::too_many_arguments)]
fn speak_job(
    global: &GlobalArgs,
    shared: &Shared,
    sender: &Sender<AppEvent>,
    id: u64,
    text: &str,
    voice: Option<String>,
    scales: &ScaleArgs,
    stop: &AtomicBool,
) -> Result<()> {
    let mut ctx = quiet_context(global)?;
    ctx.apply_speech_flags(scales)?;
    let voice = kept_voice(shared, &ctx, voice.as_deref())?;
    let mut speech = Speech::new(&voice, &ctx.settings)?;
    // Straight to the device's rate: one resampling step, not two.
    if let Some(rate) = lock(&shared.playback).as_ref().map(|playback| playback.rate) {
        speech.output_rate_hz = rate;
    }
    let rate = speech.output_rate_hz;
    let mut mine = None;
    let spoken = speech.run(text, |samples| {
        if !stop.load(Ordering::Relaxed) {
            mine = Some(queue_for_output(shared, sender, id, samples.to_vec(), rate, stop)?);
        }
        if stop.load(Ordering::Relaxed) {
            anyhow::bail!("stopped");
        }
        Ok(())
    });
    if let Some(mine) = mine {
        crate::devices::close_when_played(&shared.playback, stop, mine);
    }
    match spoken {
        _ if stop.load(Ordering::Relaxed) => Ok(()),
        Err(error) => Err(error),
        Ok(_) => Ok(()),
    }
}

/// A batch run from the Batch screen: every job of `manifest` with the configured defaults, one worker, progress through
/// `events`, stopping early when `cancel` is set. `loaded` hears the valid jobs and the invalid rows first.
fn run_batch(
    ctx: &mut Context,
    manifest_path: &std::path::Path,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    loaded: impl FnOnce(&[batch::Job], &[batch::RowError]),
    events: &(dyn Fn(BatchEvent) + Sync),
) -> Result<batch::Summary> {
    let manifest = Manifest::load(manifest_path).map_err(|e| crate::error::usage(e.to_string()))?;
    loaded(&manifest.jobs, &manifest.errors);
    ctx.check()?;
    let options =
        RunOptions { cancel: Some(cancel), ..RunOptions::sequential(batch::journal_path(manifest_path, None, None)) };
    let worker = SpeechWorker::new(&ctx.settings);
    let mut summary = batch::run(&manifest.jobs, &options, &|job, deadline| worker.run(job, deadline), events)?;
    summary.invalid = manifest.errors.len();
    Ok(summary)
}

/// Follow the progress log of a batch that another process runs, until the run ends, its process is gone, or
/// `stop` is set. `path` is the manifest (whose log sits beside it), or the log itself (`.events.jsonl`, for runs
/// with `--state` or `--shard`; its rows then appear as the run reaches them).
fn watch_batch(path: &std::path::Path, stop: &AtomicBool, sender: &Sender<AppEvent>) -> Result<()> {
    use demod_voice_core::batch::LogLine;
    let given_log = path.to_string_lossy().ends_with(".events.jsonl");
    let (rows, invalid): (Vec<(usize, String)>, Vec<String>) = if given_log {
        (Vec::new(), Vec::new())
    } else {
        let loaded = batch::Manifest::load(path).map_err(|e| crate::error::usage(e.to_string()))?;
        (
            loaded.jobs.iter().map(|j| (j.row, j.output_as_written.clone())).collect(),
            loaded.errors.iter().map(ToString::to_string).collect(),
        )
    };
    let send_rows = || {
        let _ = sender.send(AppEvent::BatchLoaded { rows: rows.clone(), invalid: invalid.clone() });
    };
    send_rows();
    let manifest = path;
    let log = if given_log { path.to_path_buf() } else { batch::events_path(&batch::journal_path(path, None, None)) };
    let mut reader = batch::EventLogReader::new(log.clone());
    let mut pid = None;
    let mut waiting_said = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Checked before reading, so the lines a finished process wrote last are still read.
        let process_gone = pid.is_some_and(|pid| !process_alive(pid));
        match reader.poll().with_context(|| format!("reading {}", log.display()))? {
            None if !waiting_said => {
                waiting_said = true;
                let note = if given_log {
                    format!("waiting for a run to write {}", log.display())
                } else {
                    format!(
                        "waiting for `demod-voice batch {}` to start (no progress log at {} yet)",
                        manifest.display(),
                        log.display()
                    )
                };
                let _ = sender.send(AppEvent::BatchNote(note));
            }
            None => {}
            Some(lines) => {
                for line in lines {
                    match line {
                        LogLine::Run { pid: run_pid, started_unix, jobs } => {
                            // A new run rewrote the log: every row starts over.
                            pid = Some(run_pid);
                            send_rows();
                            let _ = sender.send(AppEvent::BatchRun { started_unix, pid: run_pid, jobs });
                        }
                        LogLine::Job(event) => {
                            let _ = sender.send(AppEvent::Batch(event));
                        }
                        LogLine::End { .. } => return Ok(()),
                    }
                }
            }
        }
        if process_gone {
            anyhow::bail!(
                "the run (process {}) ended without finishing its log: it was killed or crashed; run it again to resume",
                pid.unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether process `pid` still exists.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists and may be signalled; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Open the devices and start converting; the speech output is closed first (one device, one user).
fn start_live(
    global: &GlobalArgs,
    shared: &Shared,
    input: Option<String>,
    output: Option<String>,
    engine: Engine,
    params: Arc<demod_voice_core::convert::dsp::DspParams>,
    mix: f32,
) -> Result<LiveInfo> {
    let ctx = quiet_context(global)?;
    if let Some(playback) = lock(&shared.playback).as_mut() {
        playback.close();
    }
    let mut live = lock(&shared.live);
    *live = None;
    let setup = crate::devices::LiveSetup {
        input,
        output,
        converter: engine.build(params),
        realtime: ctx.settings.config.realtime.clone(),
        mix,
    };
    let started = crate::devices::Live::start(setup).map_err(|problem| anyhow::anyhow!("{problem}"))?;
    let info = LiveInfo {
        input: started.input.clone(),
        output: started.output.clone(),
        rate: started.rate,
        latency_seconds: started.latency_seconds(),
        state: started.state.clone(),
        stats: started.stats.clone(),
        controls: started.controls.clone(),
    };
    *live = Some(started);
    Ok(info)
}

/// Play a history entry again.
fn play_job(shared: &Shared, sender: &Sender<AppEvent>, id: u64, source: PlaySource, stop: &AtomicBool) -> Result<()> {
    let (samples, rate) = match source {
        PlaySource::Samples(samples) => {
            let rate = lock(&shared.playback).as_ref().map_or(0, |p| p.rate);
            (samples.as_ref().clone(), rate)
        }
        PlaySource::File(path) => demod_voice_core::wav::read_wav_mono(&path)?,
    };
    let mine = queue_for_output(shared, sender, id, samples, rate, stop)?;
    crate::devices::close_when_played(&shared.playback, stop, mine);
    Ok(())
}

/// Sends stderr to a file until dropped (or until a panic restores it to print its message).
struct StderrRedirect;

/// The original stderr while redirected, else -1.
static SAVED_STDERR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

impl StderrRedirect {
    fn to(path: &std::path::Path) -> Option<StderrRedirect> {
        use std::os::fd::AsRawFd;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ok()?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok()?;
        // SAFETY: dup/dup2 on descriptors this process owns; `file` stays open until dup2 has copied it.
        let saved = unsafe { libc::dup(2) };
        if saved < 0 || unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
            return None;
        }
        SAVED_STDERR.store(saved, Ordering::SeqCst);
        Some(StderrRedirect)
    }
}

/// Put the original stderr back (idempotent).
fn restore_stderr() {
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor dup'ed in `StderrRedirect::to`, owned by this process.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

impl Drop for StderrRedirect {
    fn drop(&mut self) {
        restore_stderr();
    }
}

/// The name of background job threads.
const JOB_THREAD: &str = "demod-voice-job";

/// Run a job's work; its error, or a panic in it, becomes the one line the app shows.
fn guarded<T>(work: impl FnOnce() -> Result<T>) -> std::result::Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(crate::one_line(&error)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(format!("internal error (a bug, please report it): {message}"))
        }
    }
}

fn restore_terminal() {
    let _ = ratatui::try_restore();
}

/// How often meters and progress move.
const TICK: Duration = Duration::from_millis(33);

fn spawn_input_thread(sender: Sender<AppEvent>) {
    let mut last_tick = Instant::now();
    std::thread::spawn(move || loop {
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if sender.send(AppEvent::Tick).is_err() {
                return;
            }
        }
        match event::poll(TICK) {
            Ok(true) => {
                let forwarded = match event::read() {
                    Ok(Event::Key(key)) => sender.send(AppEvent::Key(key)),
                    Ok(Event::Resize(..)) => sender.send(AppEvent::Resize),
                    Ok(_) => Ok(()),
                    Err(_) => return,
                };
                if forwarded.is_err() {
                    return;
                }
            }
            Ok(false) => {}
            Err(_) => return,
        }
    });
}

#[cfg(test)]
mod tests;
