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

mod jobs;
mod keys;
mod messages;
mod screens;
mod terminal;
mod view;

pub use messages::{Action, AppEvent, Job};
pub use screens::batch::{batch_frame_times, BatchView};
pub use screens::health::CheckInfo;
pub use screens::live::{LiveControl, LiveView};
pub use screens::speech::speak_first_audio_times;
pub use screens::synthesize::{Control, OutputInfo, Speaking, Utterance};
pub use screens::voices::{ProfileInfo, VoiceInfo};
pub(crate) use terminal::restore_after_signal;
pub use terminal::{follow_batch, run, OwnBatch};

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use anyhow::{Context as _, Result};
use ratatui::backend::Backend;
use ratatui::Terminal;

use crate::context::Context;
use screens::health::check_infos;
use screens::voices::profile_infos;

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

/// What the prompt line is asking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptFor {
    Profile,
    Manifest,
    /// The manifest of a batch another process runs.
    Watch,
    /// The catalogue's language filter.
    Language,
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
    /// The Voices screen's catalogue view.
    pub catalog: screens::catalog::CatalogView,
    /// Preset names; index 0 is "(none)".
    pub presets: Vec<String>,
    pub preset: usize,
    pub length: f32,
    pub noise: f32,
    pub noise_w: f32,
    pub silence: f32,
    pub volume: f32,
    pub history: Vec<Utterance>,
    /// Jobs the app asked for outside a key or tick (e.g. scoring a take that just finished); the loop starts them.
    pub pending: Vec<Job>,
    /// The profile takes are scored against (0: none, then `profiles`).
    pub compare: usize,
    /// The last take id handed out (history entries are matched to their scores by it).
    pub take_ids: u64,
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
            catalog: Default::default(),
            presets: preset_names,
            preset: 0,
            length: 1.0,
            noise: 0.667,
            noise_w: 0.8,
            silence: 0.2,
            volume: 1.0,
            history: Vec::new(),
            pending: Vec::new(),
            compare: 0,
            take_ids: 0,
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
            Action::CancelBatch if self.batch.running && self.batch.run_cancel.is_some() => {
                if let Some(cancel) = &self.batch.run_cancel {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                self.status = "cancelling: the running job finishes, the rest are left".into();
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
                    PromptFor::Language => "filter unchanged",
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
            Action::Submit if self.prompt_for == PromptFor::Language => self.set_language_filter(),
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
            Action::SelectPrev if self.screen == Screen::Voices && self.catalog.shown => self.select_catalog(-1),
            Action::SelectNext if self.screen == Screen::Voices && self.catalog.shown => self.select_catalog(1),
            Action::Decrease if self.screen == Screen::Voices && self.catalog.shown => self.cycle_quality(-1),
            Action::Increase if self.screen == Screen::Voices && self.catalog.shown => self.cycle_quality(1),
            Action::ToggleCatalog => return self.toggle_catalog(),
            Action::RefreshCatalog if self.catalog.shown => return self.load_catalog(true),
            Action::FilterLanguage if self.catalog.shown => self.start_language_filter(),
            Action::DownloadVoice if self.catalog.shown => return self.download_selected(),
            Action::RemoveVoice if self.catalog.shown => return self.remove_selected(),
            Action::RefreshCatalog | Action::FilterLanguage | Action::DownloadVoice | Action::RemoveVoice => {
                self.status = "c shows the voice catalogue first".into()
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

    /// Whether time passing changes the screen: meters above silence, playback progress, a running batch's clock.
    pub fn animating(&self) -> bool {
        self.speaking.is_some()
            || self.live.running.is_some()
            || self.batch.running
            || [self.out_level, self.live.in_level, self.live.out_level].iter().any(|level| *level > METER_FLOOR)
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
            AppEvent::Scored { take, outcome } => app.scored(take, outcome),
            catalog @ (AppEvent::CatalogLoaded(_)
            | AppEvent::DownloadProgress { .. }
            | AppEvent::VoicesChanged { .. }) => app.catalog_event(catalog),
        }
        for job in std::mem::take(&mut app.pending) {
            spawn(job);
        }
    }
    Ok(())
}

/// Gather what the screens show from the installed voices, presets and health checks.
pub fn app_from_context(ctx: &Context) -> Result<App> {
    let voices = by_language(demod_voice_core::library::voices(&ctx.settings.dirs.voices_dir()));
    let presets = demod_voice_core::presets::all(&ctx.settings.dirs.config.join("presets"))
        .into_iter()
        .filter_map(|entry| entry.ok().map(|found| found.preset.name))
        .collect();
    let checks = check_infos(ctx);
    let out_dir = std::env::current_dir().context("finding the current folder for saved takes")?;
    let mut app = App::new(voices, presets, checks, out_dir);
    app.start_from_settings(&ctx.settings);
    app.audio = ctx.settings.config.audio.clone();
    app.profiles = profile_infos(ctx);
    app.live.presets = demod_voice_core::presets::all(&ctx.settings.dirs.config.join("presets"))
        .into_iter()
        .filter_map(|entry| entry.ok().and_then(|found| found.preset.converter.map(|c| (found.preset.name, c))))
        .collect();
    Ok(app)
}

impl App {
    /// Start the Synthesize controls where the settings resolver says (config file, then the voice's own
    /// inference defaults), so Speak and Save with untouched controls sound exactly like `demod-voice speak`.
    fn start_from_settings(&mut self, settings: &demod_voice_core::settings::Settings) {
        let tts = &settings.config.tts;
        if let Some(index) = self.voices.iter().position(|v| v.name == tts.voice) {
            self.voice = index;
        }
        // `tts.language` / `--language`: the first installed voice of it (they are listed best quality first),
        // unless the configured voice speaks it. Nothing is downloaded here (the catalogue view, c on Voices, does).
        if let Some(language) = tts.language.as_deref() {
            let speaks = |v: &VoiceInfo| demod_voice_core::library::speaks(&v.language, language);
            if !self.voices.get(self.voice).is_some_and(speaks) {
                if let Some(index) = self.voices.iter().position(speaks) {
                    self.voice = index;
                }
            }
        }
        let inference = self.voices.get(self.voice).and_then(|voice| {
            let config = demod_voice_core::piper::VoiceConfig::path_for_model(&voice.model);
            demod_voice_core::piper::VoiceConfig::load(&config).ok().map(|config| config.inference)
        });
        if let Some(inference) = inference {
            self.length = inference.length_scale;
            self.noise = inference.noise_scale;
            self.noise_w = inference.noise_w;
        }
        self.length = tts.length_scale.unwrap_or(self.length);
        self.noise = tts.noise_scale.unwrap_or(self.noise);
        self.noise_w = tts.noise_w.unwrap_or(self.noise_w);
        self.silence = tts.sentence_silence;
        self.volume = tts.volume;
    }
}

/// Installed voices by language, best quality first, then by name (the Synthesize picker's and the Voices
/// screen's order).
pub(crate) fn by_language(mut voices: Vec<VoiceInfo>) -> Vec<VoiceInfo> {
    voices.sort_by(|a, b| {
        (a.language.as_str(), demod_voice_core::catalog::quality_rank(&a.quality), a.name.as_str()).cmp(&(
            b.language.as_str(),
            demod_voice_core::catalog::quality_rank(&b.quality),
            b.name.as_str(),
        ))
    });
    voices
}

impl App {
    /// The installed voices changed (a download or removal): keep the picked voice by name where it still is.
    pub(crate) fn set_voices(&mut self, voices: Vec<VoiceInfo>) {
        let picked = self.voices.get(self.voice).map(|v| v.name.clone());
        self.voices = by_language(voices);
        self.voice = picked.and_then(|name| self.voices.iter().position(|v| v.name == name)).unwrap_or(0);
        self.speaker = 0;
    }
}

/// Below this peak (-90 dBFS) a meter shows silence.
pub const METER_FLOOR: f32 = 3e-5;

#[cfg(test)]
mod tests;
