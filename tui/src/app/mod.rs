//! The full-screen terminal app (`demod-voice` on a terminal, or `demod-voice tui`).
//!
//! Shape: [`App`] holds all state; keys become an [`Action`] ([`App::action_for`]); [`App::update`] applies it and
//! may hand back a [`Job`] for a background thread, whose result comes back through the same event channel as the
//! keys. Drawing is `impl Widget for &App`, and [`run_loop`] is generic over the ratatui `Backend`, so tests drive
//! the whole thing on a `TestBackend`.
//!
//! This first slice has the Synthesize (text, voice, preset and scale controls, save to WAV, history), Voices and
//! Health screens. Playback through an audio device, the Live and Batch screens are not built yet.

mod view;

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use anyhow::{Context as _, Result};
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::Terminal;

use crate::cli::{GlobalArgs, ScaleArgs, SpeakArgs, VoiceArgs};
use crate::context::Context;

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Synthesize,
    Voices,
    Batch,
    Health,
}

impl Screen {
    pub const ALL: [Screen; 4] = [Screen::Synthesize, Screen::Voices, Screen::Batch, Screen::Health];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Synthesize => "Synthesize",
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
    Preset,
    Length,
    Noise,
    NoiseW,
    Silence,
    Volume,
}

impl Control {
    pub const ALL: [Control; 7] = [
        Control::Voice,
        Control::Preset,
        Control::Length,
        Control::Noise,
        Control::NoiseW,
        Control::Silence,
        Control::Volume,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Control::Voice => "voice",
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
            Control::Voice | Control::Preset => (0.0, 0.0, 0.0),
        }
    }
}

/// One installed voice as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceInfo {
    pub name: String,
    pub language: String,
    pub quality: String,
    pub sample_rate: u32,
    pub speakers: u32,
    pub problem: Option<String>,
}

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

    fn apply(&mut self, event: demod_voice_core::batch::Event) {
        use demod_voice_core::batch::Event;
        let (row, status) = match event {
            Event::Started { row, .. } => (row, JobStatus::Running),
            Event::Finished { row, audio_seconds, seconds, .. } => (row, JobStatus::Done { audio_seconds, seconds }),
            Event::Skipped { row, reason, .. } => (row, JobStatus::Skipped(reason)),
            Event::Failed { row, error, .. } => (row, JobStatus::Failed(error)),
        };
        // Rows arrive in manifest order, so the row number finds its place by binary search.
        if let Ok(index) = self.rows.binary_search_by_key(&row, |r| r.row) {
            self.rows[index].status = status;
        }
    }
}

/// What the prompt line is asking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptFor {
    Profile,
    Manifest,
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
    pub path: PathBuf,
    pub outcome: std::result::Result<f32, String>,
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
    RefreshHealth,
    StartAddProfile,
    OpenManifest,
    CancelBatch,
    RerunBatch,
    Submit,
    Cancel,
}

/// Background work asked for by [`App::update`].
#[derive(Debug, Clone)]
pub enum Job {
    Synthesize { text: String, path: PathBuf, voice: Option<String>, scales: ScaleArgs },
    AddProfile { name: String, reference: PathBuf },
    CheckHealth,
    RunBatch { manifest: PathBuf, cancel: std::sync::Arc<std::sync::atomic::AtomicBool> },
}

/// What arrives on the run loop's channel.
#[derive(Debug)]
pub enum AppEvent {
    Key(KeyEvent),
    Resize,
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
    pub profiles: Vec<ProfileInfo>,
    /// The line typed at the add-profile prompt.
    pub prompt: String,
    pub prompt_for: PromptFor,
    pub adding_profile: bool,
    pub batch: BatchView,
    /// Preset names; index 0 is "(none)".
    pub presets: Vec<String>,
    pub preset: usize,
    pub length: f32,
    pub noise: f32,
    pub noise_w: f32,
    pub silence: f32,
    pub volume: f32,
    pub history: Vec<Utterance>,
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
            "no audio output in this build: Ctrl-S saves the text to a WAV file".to_string()
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
            profiles: Vec::new(),
            prompt: String::new(),
            prompt_for: PromptFor::Profile,
            adding_profile: false,
            batch: BatchView::default(),
            presets: preset_names,
            preset: 0,
            length: 1.0,
            noise: 0.667,
            noise_w: 0.8,
            silence: 0.2,
            volume: 1.0,
            history: Vec::new(),
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
            KeyCode::Char('2') => Some(Action::Goto(Screen::Voices)),
            KeyCode::Char('3') => Some(Action::Goto(Screen::Batch)),
            KeyCode::Char('4') => Some(Action::Goto(Screen::Health)),
            KeyCode::Char('o') if self.screen == Screen::Batch => Some(Action::OpenManifest),
            KeyCode::Char('c') if self.screen == Screen::Batch => Some(Action::CancelBatch),
            KeyCode::Char('R') if self.screen == Screen::Batch => Some(Action::RerunBatch),
            KeyCode::Char('i') | KeyCode::Enter if self.screen == Screen::Synthesize => Some(Action::StartEditing),
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
                self.status = "no profile added".into();
            }
            Action::Submit if self.prompt_for == PromptFor::Manifest => {
                let manifest = PathBuf::from(self.prompt.trim());
                if !manifest.is_file() {
                    self.status = format!("{} is not a file; type the path of a manifest", manifest.display());
                    return None;
                }
                self.mode = Mode::Normal;
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
            Action::SelectPrev => self.control = self.control.saturating_sub(1),
            Action::SelectNext => self.control = (self.control + 1).min(Control::ALL.len() - 1),
            Action::Decrease => self.adjust(-1),
            Action::Increase => self.adjust(1),
            Action::RefreshHealth => {
                self.status = "checking ...".into();
                return Some(Job::CheckHealth);
            }
            Action::Save => return self.save(),
        }
        None
    }

    fn adjust(&mut self, direction: i32) {
        if self.screen != Screen::Synthesize {
            return;
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
            Control::Voice => self.voice = cycle(self.voice, self.voices.len()),
            Control::Preset => self.preset = cycle(self.preset, self.presets.len()),
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
        let scales = ScaleArgs {
            preset: (self.preset > 0).then(|| self.presets[self.preset].clone()),
            speaker: None,
            length_scale: Some(self.length),
            noise_scale: Some(self.noise),
            noise_w: Some(self.noise_w),
            sentence_silence: Some(self.silence),
            volume: Some(self.volume),
            ..ScaleArgs::default()
        };
        let voice = self.voices.get(self.voice).map(|v| v.name.clone());
        Some(Job::Synthesize { text: self.text.clone(), path, voice, scales })
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

    /// Batch progress arrived.
    pub fn batch_event(&mut self, event: AppEvent) {
        match event {
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
                self.status = match outcome {
                    Ok(()) => format!(
                        "batch {}: {} of {} processed, {} failed, {} invalid row(s){}",
                        if cancelled { "cancelled" } else { "finished" },
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
        self.history.insert(0, Utterance { text: std::mem::take(&mut self.busy_text), path, outcome });
        self.history.truncate(50);
    }
}

/// Draw, wait for an event, apply it; until the user quits. Jobs go to `spawn`, which sends their results back.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    events: &Receiver<AppEvent>,
    mut spawn: impl FnMut(Job),
) -> Result<()> {
    while !app.quit {
        terminal.draw(|frame| frame.render_widget(&*app, frame.area()))?;
        let Ok(event) = events.recv() else { break };
        match event {
            AppEvent::Key(key) => {
                if let Some(job) = app.action_for(key).and_then(|action| app.update(action)) {
                    spawn(job);
                }
            }
            AppEvent::Resize => terminal.autoresize()?,
            AppEvent::Saved { path, outcome } => app.saved(path, outcome),
            AppEvent::ProfileAdded { name, outcome } => app.profile_added(name, outcome),
            AppEvent::HealthChecked(outcome) => app.health_checked(outcome),
            batch @ (AppEvent::BatchLoaded { .. } | AppEvent::Batch(_) | AppEvent::BatchDone(_)) => {
                app.batch_event(batch)
            }
        }
    }
    Ok(())
}

/// A context for one background job, built afresh so config edits apply. Quiet: a summary line on stderr would
/// tear the full-screen display.
fn quiet_context(global: &GlobalArgs) -> Result<Context> {
    Context::new(GlobalArgs { quiet: true, verbose: 0, ..global.clone() })
}

/// Run a synthesis job with the same pipeline as `demod-voice speak`; the WAV's length in seconds.
fn synthesize(
    global: &GlobalArgs,
    text: String,
    path: &std::path::Path,
    voice: Option<String>,
    scales: ScaleArgs,
) -> Result<f32> {
    let mut ctx = quiet_context(global)?;
    let args = SpeakArgs {
        text: Some(text),
        input: None,
        voice: VoiceArgs { voice },
        output: Some(path.to_path_buf()),
        output_raw: false,
        scales,
    };
    crate::speak::speak(&mut ctx, args)?;
    let reader = hound::WavReader::open(path).with_context(|| format!("reading back {}", path.display()))?;
    Ok(reader.duration() as f32 / reader.spec().sample_rate as f32)
}

/// Analyse a reference recording into a profile, as `voices add-profile` does; the profiles afterwards.
fn add_profile(global: &GlobalArgs, name: &str, reference: PathBuf) -> Result<Vec<ProfileInfo>> {
    let ctx = quiet_context(global)?;
    crate::convert_cmd::add_profile(&ctx, name, &[reference], false)?;
    Ok(profile_infos(&ctx))
}

fn profile_infos(ctx: &Context) -> Vec<ProfileInfo> {
    demod_voice_core::voice::list(&ctx.profiles_dir())
        .into_iter()
        .map(|(name, path)| match demod_voice_core::voice::VoiceProfile::load(&path) {
            Ok(p) => ProfileInfo {
                name,
                median_f0_hz: p.median_f0_hz,
                formant_scale: p.formant_scale,
                voiced_seconds: p.voiced_seconds,
                problem: None,
            },
            Err(e) => ProfileInfo {
                name,
                median_f0_hz: 0.0,
                formant_scale: 0.0,
                voiced_seconds: 0.0,
                problem: Some(e.to_string()),
            },
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

/// Gather what the screens show from the installed voices, presets and health checks.
pub fn app_from_context(ctx: &Context) -> Result<App> {
    let voices = crate::speak::voice_rows(ctx)
        .into_iter()
        .map(|row| VoiceInfo {
            name: row.name,
            language: row.language,
            quality: row.quality,
            sample_rate: row.sample_rate,
            speakers: row.speakers,
            problem: row.problem,
        })
        .collect();
    let presets = demod_voice_core::presets::all(&ctx.dirs.config.join("presets"))
        .into_iter()
        .filter_map(|entry| entry.ok().map(|found| found.preset.name))
        .collect();
    let checks = check_infos(ctx);
    let out_dir = std::env::current_dir().context("finding the current folder for saved takes")?;
    let mut app = App::new(voices, presets, checks, out_dir);
    app.profiles = profile_infos(ctx);
    Ok(app)
}

/// Open the app on the real terminal; the terminal is restored on every way out, panics included.
pub fn run(ctx: &Context) -> Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::speak::usage(
            "the terminal app needs a terminal; use the subcommands (`demod-voice --help`) in scripts",
        ));
    }
    let mut app = app_from_context(ctx)?;
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A job's panic is caught and shown in the app (see `guarded`); any other ends the app, terminal restored.
        if std::thread::current().name() != Some(JOB_THREAD) {
            restore_terminal();
            previous_hook(info);
        }
    }));
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let (sender, receiver) = mpsc::channel();
    spawn_input_thread(sender.clone());
    let global = ctx.global.clone();
    let result = run_loop(&mut terminal, &mut app, &receiver, |job| {
        let sender: Sender<AppEvent> = sender.clone();
        let global = global.clone();
        let worker = move || match job {
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
                        crate::batch_cmd::run_for_app(&mut ctx, &manifest, cancel, loaded, &forward)
                    })
                })
                .map(|_| ());
                let _ = sender.send(AppEvent::BatchDone(outcome));
            }
            Job::CheckHealth => {
                let outcome = guarded(|| quiet_context(&global).map(|ctx| check_infos(&ctx)));
                let _ = sender.send(AppEvent::HealthChecked(outcome));
            }
        };
        // As std::thread::spawn does, only an exhausted system fails here.
        std::thread::Builder::new().name(JOB_THREAD.into()).spawn(worker).expect("spawning a job thread");
    });
    restore_terminal();
    result
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

fn spawn_input_thread(sender: Sender<AppEvent>) {
    std::thread::spawn(move || loop {
        match event::poll(Duration::from_millis(250)) {
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
