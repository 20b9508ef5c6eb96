//! Drawing: `impl Widget for &App`, one function per screen.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Tabs, Widget};

use super::{screens, App, Mode, PromptFor, Screen};

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [tabs, body, status] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
        let titles = Screen::ALL.iter().enumerate().map(|(i, s)| format!("{} {}", i + 1, s.title()));
        Tabs::new(titles)
            .select(Screen::ALL.iter().position(|s| *s == self.screen).unwrap_or(0))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .render(tabs, buf);
        match self.screen {
            Screen::Synthesize => screens::synthesize::draw(self, body, buf),
            Screen::Live => screens::live::draw(self, body, buf),
            Screen::Voices => screens::voices::draw(self, body, buf),
            Screen::Batch => self.batch.render(body, buf),
            Screen::Health => screens::health::draw(self, body, buf),
        }
        let mode = match (self.screen, self.mode) {
            (Screen::Synthesize, Mode::Editing) => "EDIT (Esc: controls) ",
            (_, Mode::Prompt) if self.prompt_for == PromptFor::Manifest => "OPEN MANIFEST ",
            (_, Mode::Prompt) if self.prompt_for == PromptFor::Watch => "WATCH BATCH ",
            (_, Mode::Prompt) if self.prompt_for == PromptFor::Language => "LANGUAGE ",
            (_, Mode::Prompt) => "ADD PROFILE ",
            _ => "",
        };
        let status_text = if self.mode == Mode::Prompt {
            match self.prompt_for {
                PromptFor::Profile => format!("reference WAV: {}▏  (Enter adds, Esc cancels)", self.prompt),
                PromptFor::Manifest => format!("manifest: {}▏  (Enter runs, Esc cancels)", self.prompt),
                PromptFor::Watch => format!("manifest being run: {}▏  (Enter follows, Esc cancels)", self.prompt),
                PromptFor::Language => format!("language: {}▏  (Enter lists it, empty lists all, Esc)", self.prompt),
            }
        } else {
            self.status.clone()
        };
        Line::from(vec![Span::styled(mode, Style::new().add_modifier(Modifier::BOLD)), Span::raw(status_text)])
            .render(status, buf);
        if self.show_help {
            super::keys::help(area, buf);
        }
    }
}

/// Level in dBFS mapped onto 0..1 (-60 dB and below is empty).
pub(crate) fn level_ratio(peak: f32) -> f64 {
    if peak <= 0.0 {
        return 0.0;
    }
    ((20.0 * f64::from(peak).log10() + 60.0) / 60.0).clamp(0.0, 1.0)
}

/// A level meter: a bar with the peak in dBFS.
pub(crate) fn meter(label: &str, peak: f32, area: Rect, buf: &mut Buffer) {
    // Below -90 dBFS is silence for a meter.
    let db = if peak > super::METER_FLOOR { format!("{:>5.1} dB", 20.0 * peak.log10()) } else { "  -inf dB".into() };
    let color = if peak >= 0.99 {
        Color::Red
    } else if peak >= 0.5 {
        Color::Yellow
    } else {
        Color::Green
    };
    let text = format!("{label} {db} ");
    let bar_width = usize::from(area.width).saturating_sub(text.chars().count());
    let filled = (level_ratio(peak) * bar_width as f64).round() as usize;
    Line::from(vec![
        Span::raw(text),
        Span::styled("█".repeat(filled), Style::new().fg(color)),
        Span::styled("░".repeat(bar_width - filled), Style::new().fg(Color::DarkGray)),
    ])
    .render(area, buf);
}
