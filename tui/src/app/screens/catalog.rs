//! The Voices screen's catalogue view (`c`): Piper's voice catalogue, filtered by language (`f`) and quality
//! (← →), with the selected voice downloaded (`d`, a progress gauge while it runs) or removed (`x`).

use anyhow::Result;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Row, StatefulWidget, Table, TableState, Widget};

use demod_voice_core::catalog::{self, human_age, human_size};

use super::voices::VoiceInfo;
use crate::app::jobs::quiet_context;
use crate::app::messages::{AppEvent, Job};
use crate::app::{App, Mode, PromptFor};
use crate::cli::GlobalArgs;

/// The quality filter's choices, in the order ← → cycle them (`None`: every quality).
pub const QUALITIES: [Option<&str>; 5] = [None, Some("high"), Some("medium"), Some("low"), Some("x_low")];

/// One catalogue voice as the view lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogRow {
    pub key: String,
    /// `de_DE`.
    pub code: String,
    /// `Deutsch (German)`.
    pub names: String,
    pub quality: String,
    pub speakers: u32,
    pub size_bytes: u64,
    pub installed: bool,
}

/// A download in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloading {
    pub key: String,
    pub done: u64,
    pub total: u64,
}

/// The catalogue view's state.
#[derive(Debug, Default)]
pub struct CatalogView {
    /// The Voices screen shows the catalogue (else the installed voices).
    pub shown: bool,
    /// Asked for and not arrived yet.
    pub loading: bool,
    /// Every voice of the catalogue.
    pub rows: Vec<CatalogRow>,
    /// Where it came from and how old it is, or why it could not be had.
    pub origin: String,
    pub error: Option<String>,
    /// Language filter (`de`, `pt-BR`), as typed.
    pub language: Option<String>,
    /// Index into [`QUALITIES`].
    pub quality: usize,
    /// Index into the filtered rows.
    pub selected: usize,
    pub downloading: Option<Downloading>,
}

impl CatalogView {
    /// The rows the filters let through, in the catalogue's order (language, best quality first).
    pub fn filtered(&self) -> Vec<&CatalogRow> {
        let quality = QUALITIES[self.quality.min(QUALITIES.len() - 1)];
        self.rows
            .iter()
            .filter(|row| {
                // A code (`de`, `pt-BR`) by its language; three letters or more also by name (`German`, `Deutsch`).
                self.language.as_deref().is_none_or(|l| {
                    demod_voice_core::library::speaks(&row.code, l)
                        || (l.chars().count() >= 3 && row.names.to_lowercase().contains(&l.to_lowercase()))
                })
            })
            .filter(|row| quality.is_none_or(|q| row.quality == q))
            .collect()
    }

    fn selected_row(&self) -> Option<&CatalogRow> {
        self.filtered().get(self.selected).copied()
    }

    fn mark_installed(&mut self, installed: &[VoiceInfo]) {
        for row in &mut self.rows {
            row.installed = installed.iter().any(|v| v.name == row.key);
        }
    }
}

impl App {
    /// `c`: show the catalogue (fetching it the first time) or the installed voices again.
    pub(crate) fn toggle_catalog(&mut self) -> Option<Job> {
        self.catalog.shown = !self.catalog.shown;
        if !self.catalog.shown {
            self.status = "installed voices; c shows the catalogue".into();
            return None;
        }
        self.status = "catalogue: ↑↓ pick, d download, x remove, f language, ← → quality, r refresh, c back".into();
        if self.catalog.rows.is_empty() && !self.catalog.loading {
            return self.load_catalog(false);
        }
        None
    }

    /// `r`: fetch the catalogue again.
    pub(crate) fn load_catalog(&mut self, refresh: bool) -> Option<Job> {
        if self.catalog.loading {
            return None;
        }
        self.catalog.loading = true;
        self.catalog.error = None;
        Some(Job::LoadCatalog { refresh })
    }

    /// `f`: type a language to filter by (empty: all).
    pub(crate) fn start_language_filter(&mut self) {
        self.mode = Mode::Prompt;
        self.prompt_for = PromptFor::Language;
        self.prompt = self.catalog.language.clone().unwrap_or_default();
        self.status = "language code or name to list (de, pt-BR, German); empty lists all; Enter, Esc".into();
    }

    pub(crate) fn set_language_filter(&mut self) {
        let typed = self.prompt.trim();
        self.catalog.language = (!typed.is_empty()).then(|| typed.to_string());
        self.catalog.selected = 0;
        self.mode = Mode::Normal;
        self.status = format!("{} voices listed", self.catalog.filtered().len());
    }

    /// ← →: the next or previous quality filter.
    pub(crate) fn cycle_quality(&mut self, step: isize) {
        let n = QUALITIES.len() as isize;
        self.catalog.quality = ((self.catalog.quality as isize + step).rem_euclid(n)) as usize;
        self.catalog.selected = 0;
    }

    pub(crate) fn select_catalog(&mut self, step: isize) {
        let last = self.catalog.filtered().len().saturating_sub(1);
        self.catalog.selected = self.catalog.selected.saturating_add_signed(step).min(last);
    }

    /// `d`: download the selected voice.
    pub(crate) fn download_selected(&mut self) -> Option<Job> {
        if let Some(running) = &self.catalog.downloading {
            self.status = format!("still downloading {}; one at a time", running.key);
            return None;
        }
        let Some(row) = self.catalog.selected_row().cloned() else {
            self.status = "no voice selected".into();
            return None;
        };
        if row.installed {
            self.status = format!("{} is installed already (x removes it)", row.key);
            return None;
        }
        self.catalog.downloading = Some(Downloading { key: row.key.clone(), done: 0, total: row.size_bytes });
        self.status = format!("downloading {} ({}) ...", row.key, human_size(row.size_bytes));
        Some(Job::DownloadVoice { key: row.key })
    }

    /// `x`: remove the selected voice, when installed.
    pub(crate) fn remove_selected(&mut self) -> Option<Job> {
        let Some(row) = self.catalog.selected_row().cloned() else {
            self.status = "no voice selected".into();
            return None;
        };
        if !row.installed {
            self.status = format!("{} is not installed", row.key);
            return None;
        }
        if self.catalog.downloading.is_some() {
            self.status = "wait for the download to finish".into();
            return None;
        }
        self.status = format!("removing {} ...", row.key);
        Some(Job::RemoveVoice { key: row.key })
    }

    /// Catalogue events from the job threads.
    pub(crate) fn catalog_event(&mut self, event: AppEvent) {
        match event {
            AppEvent::CatalogLoaded(outcome) => {
                self.catalog.loading = false;
                match outcome {
                    Ok((mut rows, origin)) => {
                        for row in &mut rows {
                            row.installed = self.voices.iter().any(|v| v.name == row.key);
                        }
                        self.catalog.rows = rows;
                        self.catalog.origin = origin;
                        self.catalog.selected = 0;
                    }
                    Err(problem) => {
                        self.status = format!("the catalogue cannot be read: {problem}");
                        self.catalog.error = Some(problem);
                    }
                }
            }
            AppEvent::DownloadProgress { key, done, total } => {
                if let Some(running) = self.catalog.downloading.as_mut().filter(|d| d.key == key) {
                    running.done = done;
                    running.total = total;
                }
            }
            AppEvent::VoicesChanged { key, what, outcome } => {
                self.catalog.downloading = None;
                match outcome {
                    Ok(voices) => {
                        self.set_voices(voices);
                        let installed = self.voices.clone();
                        self.catalog.mark_installed(&installed);
                        self.status = format!("{what} {key}");
                    }
                    Err(problem) => self.status = format!("{key}: {problem}"),
                }
            }
            _ => {}
        }
    }
}

/// The catalogue (cached, or fetched when stale) as the view's rows, and where it came from.
pub(crate) fn load_catalog(global: &GlobalArgs, refresh: bool) -> Result<(Vec<CatalogRow>, String)> {
    let ctx = quiet_context(global)?;
    let loaded = ctx.settings.catalog(refresh)?;
    let how = if loaded.from_cache { "cached" } else { "fetched now" };
    let mut origin = format!("{} ({how}, {} old)", loaded.url, human_age(loaded.age()));
    if let Some(warning) = &loaded.warning {
        origin = format!("{origin}; {warning}");
    }
    let rows = loaded
        .catalog
        .filter(None, None)
        .into_iter()
        .map(|v| CatalogRow {
            key: v.key.clone(),
            code: v.language.code.clone(),
            names: v.language_names(),
            quality: v.quality.clone(),
            speakers: v.num_speakers,
            size_bytes: v.download_bytes(),
            installed: false,
        })
        .collect();
    Ok((rows, origin))
}

/// Download `key` as `voices download` does, reporting progress; the installed voices afterwards.
pub(crate) fn download_voice(
    global: &GlobalArgs,
    key: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<VoiceInfo>> {
    let ctx = quiet_context(global)?;
    if ctx.settings.offline {
        anyhow::bail!("the app was started with --offline: nothing is downloaded");
    }
    let loaded = ctx.settings.catalog(false)?;
    let voice = loaded.catalog.find(key).ok_or_else(|| anyhow::anyhow!("{key} is no longer in the catalogue"))?;
    let voices_dir = ctx.settings.dirs.voices_dir();
    let mut last = std::time::Instant::now();
    catalog::download(voice, &voices_dir, &ctx.settings.download_options(false), &mut |p| {
        if last.elapsed().as_millis() >= 100 || p.done == p.total {
            last = std::time::Instant::now();
            progress(p.done, p.total);
        }
    })?;
    Ok(demod_voice_core::library::voices(&voices_dir))
}

/// Remove `key` from the library; the installed voices afterwards.
pub(crate) fn remove_voice(global: &GlobalArgs, key: &str) -> Result<Vec<VoiceInfo>> {
    let ctx = quiet_context(global)?;
    let voices_dir = ctx.settings.dirs.voices_dir();
    catalog::remove(key, &voices_dir)?;
    Ok(demod_voice_core::library::voices(&voices_dir))
}

pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let view = &app.catalog;
    let quality = QUALITIES[view.quality.min(QUALITIES.len() - 1)].unwrap_or("any");
    let language = view.language.as_deref().unwrap_or("any");
    let rows = view.filtered();
    let title =
        format!(" Voice catalogue: {} of {} (language {language}, quality {quality}) ", rows.len(), view.rows.len());
    let [table_area, footer] = Layout::vertical([Constraint::Min(0), Constraint::Length(3)]).areas(area);
    let block = Block::new().borders(Borders::ALL).title(title);
    if view.rows.is_empty() {
        let text = match (&view.error, view.loading) {
            (_, true) => "reading the voice catalogue ...".to_string(),
            (Some(problem), _) => format!("the catalogue cannot be read: {problem}; r tries again"),
            (None, _) => "the catalogue is empty; r fetches it again".to_string(),
        };
        Paragraph::new(text).wrap(ratatui::widgets::Wrap { trim: false }).block(block).render(table_area, buf);
    } else {
        let header = Row::new(["KEY", "LANGUAGE", "QUALITY", "SPK", "SIZE", "HAVE"])
            .style(Style::new().add_modifier(Modifier::BOLD));
        let table_rows = rows.iter().map(|row| {
            let style = if row.installed { Style::new().fg(Color::Green) } else { Style::new() };
            Row::new([
                row.key.clone(),
                format!("{} {}", row.code, row.names),
                row.quality.clone(),
                row.speakers.to_string(),
                human_size(row.size_bytes),
                if row.installed { "yes".into() } else { "-".into() },
            ])
            .style(style)
        });
        let table = Table::new(
            table_rows,
            [
                Constraint::Length(30),
                Constraint::Min(12),
                Constraint::Length(7),
                Constraint::Length(3),
                Constraint::Length(8),
                Constraint::Length(4),
            ],
        )
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(block);
        let mut state = TableState::default().with_selected(Some(view.selected.min(rows.len().saturating_sub(1))));
        StatefulWidget::render(table, table_area, buf, &mut state);
    }
    let footer_block = Block::new().borders(Borders::ALL);
    match &view.downloading {
        Some(d) => {
            let ratio = if d.total == 0 { 0.0 } else { (d.done as f64 / d.total as f64).clamp(0.0, 1.0) };
            Gauge::default()
                .block(footer_block.title(format!(" downloading {} ", d.key)))
                .gauge_style(Style::new().fg(Color::Cyan))
                .ratio(ratio)
                .label(format!("{:.0}%  {} of {}", ratio * 100.0, human_size(d.done), human_size(d.total)))
                .render(footer, buf);
        }
        None => Paragraph::new(if view.origin.is_empty() { "-".to_string() } else { view.origin.clone() })
            .block(footer_block.title(" d download  x remove  f language  ← → quality  r refresh  c installed "))
            .render(footer, buf),
    }
}
