//! The Voices screen: installed voices and conversion profiles (and why any is unusable); `a` adds a profile.

use std::path::PathBuf;

use anyhow::Result;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget, Wrap};

use crate::app::jobs::quiet_context;
use crate::app::messages::Job;
use crate::app::{App, Mode};
use crate::cli::GlobalArgs;
use crate::context::Context;

/// One installed voice as the app shows it: the row `voices list` prints.
pub type VoiceInfo = demod_voice_core::library::VoiceRow;

/// One voice profile (for conversion) as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileInfo {
    pub name: String,
    pub median_f0_hz: f32,
    pub formant_scale: f32,
    pub voiced_seconds: f32,
    /// Similarity of the configured voice to the profile's recording before -> after cloning, when measured.
    pub similarity: Option<(f32, f32)>,
    /// The recording's speaker embedding, when measured (the Live screen's rolling similarity compares with it).
    pub embedding: Option<demod_voice_core::speaker::Embedding>,
    /// What the Live screen's converter matches toward (median, formants, spread, spectrum), when usable.
    pub target: Option<demod_voice_core::convert::dsp::Target>,
    pub problem: Option<String>,
}

impl App {
    pub(crate) fn add_profile(&mut self) -> Option<Job> {
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
}

pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let problems = app.profiles.iter().filter(|p| p.problem.is_some()).count();
    let profile_height = (app.profiles.len().max(1) + problems) as u16 + 3;
    let [area, profile_area] = Layout::vertical([Constraint::Min(0), Constraint::Length(profile_height)]).areas(area);
    profiles(app, profile_area, buf);
    if app.catalog.shown {
        super::catalog::draw(app, area, buf);
        return;
    }
    let block = Block::new().borders(Borders::ALL).title(" Installed voices (c: the catalogue, to download more) ");
    if app.voices.is_empty() {
        Paragraph::new("no voices installed; run `demod-voice setup` to install the default voice")
            .block(block)
            .render(area, buf);
        return;
    }
    let header =
        Row::new(["NAME", "LANGUAGE", "QUALITY", "RATE", "SPEAKERS"]).style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.voices.iter().map(|voice| match &voice.problem {
        None => Row::new([
            voice.name.clone(),
            voice.language.clone(),
            voice.quality.clone(),
            voice.sample_rate.to_string(),
            voice.speakers.to_string(),
        ]),
        Some(_) => Row::new([voice.name.clone(), "-".into(), "-".into(), "-".into(), "unusable".into()])
            .style(Style::new().fg(Color::Red)),
    });
    let problems: Vec<Line> = app
        .voices
        .iter()
        .filter_map(|voice| voice.problem.as_ref().map(|problem| Line::from(format!("{}: {problem}", voice.name))))
        .collect();
    let [area, problem_area] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(if problems.is_empty() { 0 } else { problems.len() as u16 + 2 }),
    ])
    .areas(area);
    if !problems.is_empty() {
        Paragraph::new(problems)
            .wrap(Wrap { trim: false })
            .style(Style::new().fg(Color::Red))
            .block(Block::new().borders(Borders::ALL).title(" Unusable voices "))
            .render(problem_area, buf);
    }
    Table::new(
        rows,
        [
            Constraint::Length(28),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Min(8),
        ],
    )
    .header(header)
    .block(block)
    .render(area, buf);
}

pub(crate) fn profiles(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::new().borders(Borders::ALL).title(" Conversion profiles (a: add from a WAV) ");
    if app.profiles.is_empty() {
        Paragraph::new("no profiles yet; press a and type the path of a WAV recording of the voice")
            .block(block)
            .render(area, buf);
        return;
    }
    let header = Row::new(["PROFILE", "MEDIAN F0", "FORMANT", "VOICED", "SIMILARITY"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.profiles.iter().map(|profile| match &profile.problem {
        None => Row::new([
            profile.name.clone(),
            format!("{:.1} Hz", profile.median_f0_hz),
            format!("{:.3}", profile.formant_scale),
            format!("{:.1} s", profile.voiced_seconds),
            // Before -> after cloning the configured voice toward it; `voices show NAME` measures it.
            profile.similarity.map_or_else(|| "-".into(), |(before, after)| format!("{before:.2} -> {after:.2}")),
        ]),
        Some(_) => Row::new([profile.name.clone(), "-".into(), "-".into(), "unusable".into(), "-".into()])
            .style(Style::new().fg(Color::Red)),
    });
    let problems: Vec<Line> = app
        .profiles
        .iter()
        .filter_map(|p| p.problem.as_ref().map(|problem| Line::from(format!("{}: unusable: {problem}", p.name))))
        .collect();
    let inner = block.inner(area);
    block.render(area, buf);
    let [table_area, problem_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(problems.len() as u16)]).areas(inner);
    Table::new(
        rows,
        [
            Constraint::Length(24),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Min(0),
        ],
    )
    .header(header)
    .render(table_area, buf);
    Paragraph::new(problems).style(Style::new().fg(Color::Red)).render(problem_area, buf);
}

/// Analyse a reference recording into a profile, as `voices add-profile` does; the profiles afterwards.
pub(crate) fn add_profile(global: &GlobalArgs, name: &str, reference: PathBuf) -> Result<Vec<ProfileInfo>> {
    let ctx = quiet_context(global)?;
    demod_voice_core::library::add_profile(&ctx.settings.profiles_dir(), name, &[reference], false, || {
        ctx.settings.speaker_encoder().ok()
    })?;
    Ok(profile_infos(&ctx))
}

pub(crate) fn profile_infos(ctx: &Context) -> Vec<ProfileInfo> {
    let voice = ctx.settings.voice_path(None).ok().map(|model| demod_voice_core::piper::synth::voice_name(&model));
    demod_voice_core::library::profiles(&ctx.settings.profiles_dir())
        .into_iter()
        .map(|row| ProfileInfo {
            similarity: voice.as_deref().and_then(|voice| row.similarity(&ctx.settings.dirs.cache, voice)),
            embedding: row.embedding,
            target: row.target,
            name: row.name,
            median_f0_hz: row.median_f0_hz.unwrap_or(0.0),
            formant_scale: row.formant_scale.unwrap_or(0.0),
            voiced_seconds: row.voiced_seconds.unwrap_or(0.0),
            problem: row.problem,
        })
        .collect()
}
