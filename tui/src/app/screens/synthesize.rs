//! The Synthesize screen: text, voice and speech controls, Speak through the output device, Save to WAV, the
//! history; its state lives in [`App`] (the screen the app opens on), its background work in the job functions
//! below.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget, Wrap};

use crate::app::messages::{Job, TakeAudio};
use crate::app::view::{level_ratio, meter};
use crate::app::{App, Mode, Screen};
use crate::cli::ScaleArgs;

/// The controls of the Synthesize screen, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Voice,
    Speaker,
    Preset,
    /// The profile each take is scored against (speaker-encoder similarity in the history).
    Compare,
    /// The output device Speak plays through.
    Output,
    Length,
    Noise,
    NoiseW,
    Silence,
    Volume,
}

impl Control {
    pub const ALL: [Control; 10] = [
        Control::Voice,
        Control::Speaker,
        Control::Preset,
        Control::Compare,
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
            Control::Compare => "similarity to",
            Control::Length => "length",
            Control::Noise => "noise",
            Control::NoiseW => "noise-w",
            Control::Silence => "sentence silence",
            Control::Volume => "volume",
        }
    }

    /// Step, lower and upper bound of a numeric control.
    pub(crate) fn range(self) -> (f32, f32, f32) {
        match self {
            Control::Length => (0.05, 0.25, 4.0),
            Control::Noise | Control::NoiseW => (0.05, 0.0, 2.0),
            Control::Silence => (0.05, 0.0, 5.0),
            Control::Volume => (0.05, 0.0, 4.0),
            Control::Voice | Control::Speaker | Control::Preset | Control::Compare | Control::Output => (0.0, 0.0, 0.0),
        }
    }
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
    /// Which take this is (scores find their take by it).
    pub id: u64,
    /// Its similarity to the compared profile, once scored: (profile, cosine), or why it could not be.
    pub similarity: Option<std::result::Result<(String, f32), String>>,
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

/// Entries the history keeps.
pub(crate) const HISTORY_ENTRIES: usize = 50;

/// Spoken entries that keep their audio for replay.
pub(crate) const HISTORY_AUDIO: usize = 10;

impl App {
    /// The output device for Speak was opened (or not).
    pub fn output_opened(&mut self, outcome: std::result::Result<OutputInfo, String>) {
        self.status = match &outcome {
            Ok(output) => format!("Speak plays through {} ({} Hz)", output.device, output.rate),
            Err(problem) => format!("no audio output ({problem}); Ctrl-S still saves to WAV"),
        };
        self.output = outcome;
    }

    /// Why Speak cannot play now, for the status line.
    pub(crate) fn no_output_message(&self) -> Option<String> {
        if self.live.running.is_some() || self.live.starting {
            // One device, one user: two streams on a device without a mixer would fail.
            return Some("Live is using the sound devices; stop it (Space on the Live screen) to speak".into());
        }
        self.output.as_ref().err().map(|problem| format!("no audio output ({problem}); Ctrl-S still saves to WAV"))
    }

    pub(crate) fn speak(&mut self) -> Option<Job> {
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

    pub(crate) fn start_speaking(&mut self, text: String, replay: bool) -> (u64, Arc<AtomicBool>) {
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

    pub(crate) fn replay(&mut self) -> Option<Job> {
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

    pub(crate) fn stop_speaking(&mut self) {
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

    pub(crate) fn remember_spoken(&mut self, speaking: Speaking) {
        let rate = self.output.as_ref().map_or(1, |o| o.rate.max(1));
        let seconds = speaking.audio.len() as f32 / rate as f32;
        let audio = Arc::new(speaking.audio);
        let id = self.take_id();
        self.score_take(id, TakeAudio::Samples(audio.clone(), rate));
        self.history.insert(
            0,
            Utterance {
                text: speaking.text,
                path: None,
                audio: Some(audio),
                outcome: Ok(seconds),
                id,
                similarity: None,
            },
        );
        self.history.truncate(HISTORY_ENTRIES);
        // Audio is big (a minute at 48 kHz is 11 MB): only the newest spoken entries keep theirs.
        for entry in self.history.iter_mut().filter(|e| e.audio.is_some()).skip(HISTORY_AUDIO) {
            entry.audio = None;
        }
        self.history_sel = 0;
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
                let id = self.take_id();
                self.history.insert(
                    0,
                    Utterance { text, path: None, audio: None, outcome: Err(problem), id, similarity: None },
                );
                self.history_sel = 0;
            }
        }
    }

    pub(crate) fn adjust(&mut self, direction: i32) -> Option<Job> {
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
            Control::Compare => {
                self.compare = cycle(self.compare, self.profiles.len() + 1);
                if let Some(profile) = self.compared_profile().filter(|p| p.embedding.is_none()) {
                    self.status = format!("profile {} has no embedding: add it again to measure one", profile.name);
                }
            }
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

    pub(crate) fn save(&mut self) -> Option<Job> {
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
    pub(crate) fn scales(&self) -> ScaleArgs {
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

    /// A background job finished.
    pub fn saved(&mut self, path: PathBuf, outcome: std::result::Result<f32, String>) {
        self.busy = None;
        self.status = match &outcome {
            Ok(seconds) => format!("saved {} ({seconds:.1} s)", path.display()),
            Err(problem) => format!("saving {} failed: {problem}", path.display()),
        };
        let id = self.take_id();
        if outcome.is_ok() {
            self.score_take(id, TakeAudio::File(path.clone()));
        }
        let text = std::mem::take(&mut self.busy_text);
        self.history.insert(0, Utterance { text, path: Some(path), audio: None, outcome, id, similarity: None });
        self.history.truncate(HISTORY_ENTRIES);
        self.history_sel = 0;
    }

    fn take_id(&mut self) -> u64 {
        self.take_ids += 1;
        self.take_ids
    }

    /// The profile takes are compared with, when one is picked and has an embedding.
    pub(crate) fn compared_profile(&self) -> Option<&super::voices::ProfileInfo> {
        self.compare.checked_sub(1).and_then(|i| self.profiles.get(i))
    }

    /// Ask for take `id` to be scored against the compared profile (on a job thread: the encoder is a model).
    fn score_take(&mut self, take: u64, source: TakeAudio) {
        let Some(profile) = self.compared_profile() else { return };
        let Some(target) = profile.embedding.clone() else { return };
        self.pending.push(Job::Score { take, source, profile: profile.name.clone(), target });
    }

    /// A take's score arrived.
    pub fn scored(&mut self, take: u64, outcome: std::result::Result<(String, f32), String>) {
        if let Some(entry) = self.history.iter_mut().find(|e| e.id == take) {
            entry.similarity = Some(outcome);
        }
    }
}

pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    // The controls need their rows plus the border; the text takes the rest (at least three lines).
    let controls_height = Control::ALL.len() as u16 + 2;
    let [text_area, lower] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(controls_height.max(area.height / 2))]).areas(area);
    let editing = app.mode == Mode::Editing;
    let text_block = Block::new()
        .borders(Borders::ALL)
        .title(if editing { " Text (typing; Ctrl-S saves) " } else { " Text (i to edit) " })
        .border_style(if editing { Style::new().fg(Color::Yellow) } else { Style::new() });
    let shown = if app.text.is_empty() && !editing {
        Line::styled("(empty: press i and type what to say)", Style::new().fg(Color::DarkGray)).into()
    } else {
        let mut text = app.text.clone();
        if editing {
            text.push('▏');
        }
        ratatui::text::Text::from(text)
    };
    // Long text scrolls so the end (where typing goes) stays in view.
    let paragraph = Paragraph::new(shown).wrap(Wrap { trim: false });
    let inner = text_block.inner(text_area);
    let lines = paragraph.line_count(inner.width);
    let scroll = lines.saturating_sub(usize::from(inner.height));
    paragraph.scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0)).block(text_block).render(text_area, buf);

    let [controls, right] = Layout::horizontal([Constraint::Length(40), Constraint::Min(0)]).areas(lower);
    let [playback_area, history] = Layout::vertical([Constraint::Length(5), Constraint::Min(0)]).areas(right);
    playback(app, playback_area, buf);
    let rows = Control::ALL.iter().enumerate().map(|(i, control)| {
        let value = match control {
            // Voices are listed by language; a name that does not start with its language shows it.
            Control::Voice => app.voices.get(app.voice).map_or("(none installed)".to_string(), |v| {
                if v.name.starts_with(&v.language) {
                    v.name.clone()
                } else {
                    format!("{} ({})", v.name, v.language)
                }
            }),
            Control::Speaker => match app.voices.get(app.voice) {
                Some(v) if !v.speaker_names.is_empty() => format!(
                    "{} ({}/{})",
                    v.speaker_names.get(app.speaker).map_or("?", String::as_str),
                    app.speaker + 1,
                    v.speaker_names.len()
                ),
                _ => "(one speaker)".into(),
            },
            Control::Preset => app.presets.get(app.preset).cloned().unwrap_or_default(),
            Control::Compare => app.compared_profile().map_or_else(|| "(none)".into(), |p| p.name.clone()),
            Control::Output => app.live.outputs.get(app.output_pick).cloned().unwrap_or_else(|| "(default)".into()),
            Control::Length => format!("{:.2}", app.length),
            Control::Noise => format!("{:.3}", app.noise),
            Control::NoiseW => format!("{:.2}", app.noise_w),
            Control::Silence => format!("{:.2} s", app.silence),
            Control::Volume => format!("{:.2}", app.volume),
        };
        let style =
            if i == app.control && !editing { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
        Row::new([Cell::from(control.label()), Cell::from(value)]).style(style)
    });
    Table::new(rows, [Constraint::Length(17), Constraint::Min(0)])
        .block(Block::new().borders(Borders::ALL).title(" Controls (↑↓ pick, ←→ change) "))
        .render(controls, buf);

    let mut lines: Vec<Line> = Vec::new();
    if let Some(path) = &app.busy {
        lines.push(Line::styled(format!("… saving {}", path.display()), Style::new().fg(Color::Yellow)));
    }
    for (i, take) in app.history.iter().enumerate() {
        let marker = if i == app.history_sel { "▶ " } else { "  " };
        let name = match &take.path {
            Some(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            None => "spoken".into(),
        };
        let snippet: String = take.text.chars().take(40).collect::<String>().replace('\n', " ");
        let score = match &take.similarity {
            Some(Ok((profile, score))) => format!("  {score:.2} ~{profile}"),
            Some(Err(_)) => "  (not scored)".into(),
            None => String::new(),
        };
        lines.push(match &take.outcome {
            Ok(seconds) => Line::from(format!("{marker}{name}  {seconds:>5.1} s{score}  {snippet}")),
            Err(problem) => Line::styled(format!("{marker}{name}  failed: {problem}"), Style::new().fg(Color::Red)),
        });
    }
    if lines.is_empty() {
        lines.push(Line::styled("no takes yet", Style::new().fg(Color::DarkGray)));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::new().borders(Borders::ALL).title(" History ([ ] pick, p plays) "))
        .render(history, buf);
}

/// What is playing: output level, a waveform of the utterance (the heard part bright), and the time.
pub(crate) fn playback(app: &App, area: Rect, buf: &mut Buffer) {
    let title = match &app.output {
        Ok(output) => format!(" Playback: {} ({} Hz) ", output.device, output.rate),
        Err(_) => " Playback ".to_string(),
    };
    let block = Block::new().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let output = match &app.output {
        Ok(output) => output,
        Err(problem) => {
            Paragraph::new(vec![
                Line::styled(format!("no audio output: {problem}"), Style::new().fg(Color::Yellow)),
                Line::from("Ctrl-S still saves the text to a WAV file."),
            ])
            .wrap(Wrap { trim: true })
            .render(inner, buf);
            return;
        }
    };
    let [level, wave, time] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Length(1)]).areas(inner);
    // Trouble worth knowing about, beside the meter: the synthesis fell behind the device, or the device glitched.
    let count = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    let (gaps, xruns) = (count(&output.state.gaps), count(&output.state.device.xruns));
    let label = if gaps + xruns > 0 { format!("out (gaps {gaps}, xruns {xruns})") } else { "out".into() };
    meter(&label, app.out_level, level, buf);
    let Some(speaking) = &app.speaking else {
        Line::styled("idle: Ctrl-P speaks the text", Style::new().fg(Color::DarkGray)).render(wave, buf);
        return;
    };
    let played = speaking.played(output);
    waveform(&speaking.audio, played, wave, buf);
    let rate = output.rate.max(1) as f32;
    let state = if speaking.queued_all { "" } else { " synthesizing…" };
    Line::from(format!(
        "{} {:.1}/{:.1} s{state}",
        if speaking.replay { "replaying" } else { "speaking" },
        played as f32 / rate,
        speaking.audio.len() as f32 / rate
    ))
    .render(time, buf);
}

/// One row of bars, one per column: the peak of that stretch of `audio`; the part already heard is bright.
pub(crate) fn waveform(audio: &[f32], played: usize, area: Rect, buf: &mut Buffer) {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let width = usize::from(area.width);
    if width == 0 || audio.is_empty() {
        return;
    }
    let per_column = audio.len().div_ceil(width);
    for (column, stretch) in audio.chunks(per_column).enumerate().take(width) {
        let peak = stretch.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        let bar = BARS[((level_ratio(peak) * 7.0).round() as usize).min(7)];
        let heard = column * per_column < played;
        let style = if heard { Style::new().fg(Color::Cyan) } else { Style::new().fg(Color::DarkGray) };
        buf[(area.x + column as u16, area.y)].set_char(bar).set_style(style);
    }
}
