//! The app's messages: what the user asks for ([`Action`]), the background work [`App::update`](super::App::update)
//! hands out ([`Job`]) and what arrives on the run loop's channel ([`AppEvent`]).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use demod_voice_core::convert::Engine;
use ratatui::crossterm::event::KeyEvent;

use super::screens::catalog::CatalogRow;
use super::screens::health::CheckInfo;
use super::screens::live::LiveInfo;
use super::screens::synthesize::{OutputInfo, PlaySource};
use super::screens::voices::{ProfileInfo, VoiceInfo};
use super::Screen;
use crate::cli::ScaleArgs;

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
    /// Voices screen: show the catalogue or the installed voices.
    ToggleCatalog,
    /// Catalogue: fetch it again.
    RefreshCatalog,
    /// Catalogue: type a language to list.
    FilterLanguage,
    /// Catalogue: download the selected voice.
    DownloadVoice,
    /// Catalogue: remove the selected (installed) voice.
    RemoveVoice,
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
        /// The installed model a model engine runs (from the preset).
        model: Option<String>,
        /// The selected profile (the tone colour engine's target).
        profile: Option<String>,
        /// The tone colour engine's tau (from the preset).
        tau: f32,
        params: Arc<demod_voice_core::convert::dsp::DspParams>,
        mix: f32,
        similarity_target: demod_voice_core::monitor::Target,
    },
    StopLive,
    /// Score take `take` (its samples, or the WAV it was saved to) against a profile's embedding.
    Score {
        take: u64,
        source: TakeAudio,
        profile: String,
        target: demod_voice_core::speaker::Embedding,
    },
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
    /// Read the voice catalogue (fetched when stale or `refresh`).
    LoadCatalog {
        refresh: bool,
    },
    DownloadVoice {
        key: String,
    },
    RemoveVoice {
        key: String,
    },
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
    /// Take `take` was scored against the profile it names.
    Scored {
        take: u64,
        outcome: std::result::Result<(String, f32), String>,
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
    /// The voice catalogue's rows and where they came from, or why they could not be had.
    CatalogLoaded(std::result::Result<(Vec<CatalogRow>, String), String>),
    /// A voice download has `done` of `total` bytes.
    DownloadProgress {
        key: String,
        done: u64,
        total: u64,
    },
    /// A voice was installed or removed (`what`): the installed voices now, or why it failed.
    VoicesChanged {
        key: String,
        what: &'static str,
        outcome: std::result::Result<Vec<VoiceInfo>, String>,
    },
}

/// A take's audio for scoring.
#[derive(Debug, Clone)]
pub enum TakeAudio {
    /// What was heard, at `rate`.
    Samples(Arc<Vec<f32>>, u32),
    /// The WAV it was saved to.
    File(PathBuf),
}
