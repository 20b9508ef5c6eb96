//! The Health screen: the installation checks `demod-voice health` runs; `r` runs them again.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use crate::app::App;
use crate::context::Context;
use crate::health::Status;

/// One health check as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckInfo {
    pub name: String,
    pub status: crate::health::Status,
    pub message: String,
    pub hint: Option<String>,
}

impl App {
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
}

pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::new().borders(Borders::ALL).title(" Health (r: check again) ");
    if app.checks.is_empty() {
        Paragraph::new("no checks ran").block(block).render(area, buf);
        return;
    }
    let mut lines = Vec::new();
    for check in &app.checks {
        let (word, color) = match check.status {
            Status::Ok => ("ok     ", Color::Green),
            Status::Warning => ("warning", Color::Yellow),
            Status::Error => ("error  ", Color::Red),
        };
        lines.push(Line::from(vec![
            Span::styled(word, Style::new().fg(color)),
            Span::raw(format!(" {:<12} {}", check.name, check.message)),
        ]));
        if let Some(hint) = &check.hint {
            lines.push(Line::styled(format!("        {:<12} hint: {hint}", ""), Style::new().fg(Color::DarkGray)));
        }
    }
    Paragraph::new(lines).wrap(Wrap { trim: false }).block(block).render(area, buf);
}

pub(crate) fn check_infos(ctx: &Context) -> Vec<CheckInfo> {
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
