//! Drawing: `impl Widget for &App`, one function per screen.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Gauge, Paragraph, Row, Table, Tabs, Widget, Wrap};

use super::{App, BatchView, Control, JobStatus, LiveControl, Mode, PromptFor, Screen};
use crate::health::Status;

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
            Screen::Synthesize => synthesize(self, body, buf),
            Screen::Live => live(self, body, buf),
            Screen::Voices => voices(self, body, buf),
            Screen::Batch => self.batch.render(body, buf),
            Screen::Health => health(self, body, buf),
        }
        let mode = match (self.screen, self.mode) {
            (Screen::Synthesize, Mode::Editing) => "EDIT (Esc: controls) ",
            (_, Mode::Prompt) if self.prompt_for == PromptFor::Manifest => "OPEN MANIFEST ",
            (_, Mode::Prompt) if self.prompt_for == PromptFor::Watch => "WATCH BATCH ",
            (_, Mode::Prompt) => "ADD PROFILE ",
            _ => "",
        };
        let status_text = if self.mode == Mode::Prompt {
            match self.prompt_for {
                PromptFor::Profile => format!("reference WAV: {}▏  (Enter adds, Esc cancels)", self.prompt),
                PromptFor::Manifest => format!("manifest: {}▏  (Enter runs, Esc cancels)", self.prompt),
                PromptFor::Watch => format!("manifest being run: {}▏  (Enter follows, Esc cancels)", self.prompt),
            }
        } else {
            self.status.clone()
        };
        Line::from(vec![Span::styled(mode, Style::new().add_modifier(Modifier::BOLD)), Span::raw(status_text)])
            .render(status, buf);
        if self.show_help {
            help(area, buf);
        }
    }
}

fn synthesize(app: &App, area: Rect, buf: &mut Buffer) {
    let [text_area, lower] = Layout::vertical([Constraint::Percentage(50), Constraint::Min(0)]).areas(area);
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
            Control::Voice => app.voices.get(app.voice).map_or("(none installed)".to_string(), |v| v.name.clone()),
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
        lines.push(match &take.outcome {
            Ok(seconds) => Line::from(format!("{marker}{name}  {seconds:>5.1} s  {snippet}")),
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

/// Level in dBFS mapped onto 0..1 (-60 dB and below is empty).
fn level_ratio(peak: f32) -> f64 {
    if peak <= 0.0 {
        return 0.0;
    }
    ((20.0 * f64::from(peak).log10() + 60.0) / 60.0).clamp(0.0, 1.0)
}

/// A level meter: a bar with the peak in dBFS.
fn meter(label: &str, peak: f32, area: Rect, buf: &mut Buffer) {
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

/// What is playing: output level, a waveform of the utterance (the heard part bright), and the time.
fn playback(app: &App, area: Rect, buf: &mut Buffer) {
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
fn waveform(audio: &[f32], played: usize, area: Rect, buf: &mut Buffer) {
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

fn live(app: &App, area: Rect, buf: &mut Buffer) {
    let live = &app.live;
    let [controls, right] = Layout::horizontal([Constraint::Length(40), Constraint::Min(0)]).areas(area);
    let name_of = |names: &[String], index: usize| names.get(index).cloned().unwrap_or_else(|| "(default)".into());
    let rows = LiveControl::ALL.iter().enumerate().map(|(i, control)| {
        let value = match control {
            LiveControl::Input => name_of(&live.inputs, live.input),
            LiveControl::Output => name_of(&live.outputs, live.output),
            LiveControl::Preset => live
                .preset
                .checked_sub(1)
                .and_then(|i| live.presets.get(i))
                .map_or("(none)".into(), |(name, _)| name.clone()),
            LiveControl::Engine => live.engine.name().to_string(),
            LiveControl::Profile => live
                .profile
                .checked_sub(1)
                .and_then(|i| app.profiles.get(i))
                .map_or("(none)".into(), |p| format!("{} ({:.0} Hz)", p.name, p.median_f0_hz)),
            LiveControl::Pitch => format!("{:+.1}", live.pitch),
            LiveControl::Formant => format!("{:.2}", live.formant),
            LiveControl::Mix => format!("{:.0} % wet", live.mix * 100.0),
        };
        let style = if i == live.control { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
        Row::new([Cell::from(control.label()), Cell::from(value)]).style(style)
    });
    Table::new(rows, [Constraint::Length(18), Constraint::Min(0)])
        .block(Block::new().borders(Borders::ALL).title(" Controls (↑↓ ←→; d lists devices) "))
        .render(controls, buf);

    let title =
        if live.running.is_some() { " Live: converting (Space stops) " } else { " Live: stopped (Space starts) " };
    let block = Block::new().borders(Borders::ALL).title(title);
    let inner = block.inner(right);
    block.render(right, buf);
    let [input_meter, output_meter, details] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let Some(running) = &live.running else {
        let mut lines = vec![Line::from(
            "microphone -> converter -> speakers. Use headphones: the speakers would feed back into the microphone.",
        )];
        if live.starting {
            lines.push(Line::styled("opening the devices ...", Style::new().fg(Color::Yellow)));
        }
        if let Some(problem) = &live.error {
            lines.push(Line::styled(problem.clone(), Style::new().fg(Color::Red)));
        }
        Paragraph::new(lines).wrap(Wrap { trim: true }).render(inner, buf);
        return;
    };
    meter("in ", live.in_level, input_meter, buf);
    meter("out", live.out_level, output_meter, buf);
    let stats = running.stats.snapshot();
    let load = |d: std::time::Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let lines = vec![
        Line::from(format!("{} -> {} at {} Hz", running.input, running.output, running.rate)),
        Line::from(format!(
            "latency {:.0} ms (engine {:.0} ms)",
            running.latency_seconds * 1000.0,
            stats.latency_samples as f64 * 1000.0 / f64::from(running.rate.max(1))
        )),
        Line::from(format!(
            "underruns {}  starved {}  dropped {}  xruns {}",
            stats.underruns,
            running.state.input_starved.load(std::sync::atomic::Ordering::Relaxed),
            running.state.input_lost.load(std::sync::atomic::Ordering::Relaxed),
            running.state.device.xruns.load(std::sync::atomic::Ordering::Relaxed)
        )),
        Line::from(format!(
            "converter {} hops, {} mean, {} worst",
            stats.hops,
            load(stats.worker_mean),
            load(stats.worker_max)
        )),
        Line::styled(
            "underruns: converter late; starved: microphone late; dropped: microphone samples discarded (drift); \
             xruns: glitches the devices reported",
            Style::new().fg(Color::DarkGray),
        ),
    ];
    Paragraph::new(lines).wrap(Wrap { trim: true }).render(details, buf);
}

fn voices(app: &App, area: Rect, buf: &mut Buffer) {
    let problems = app.profiles.iter().filter(|p| p.problem.is_some()).count();
    let profile_height = (app.profiles.len().max(1) + problems) as u16 + 3;
    let [area, profile_area] = Layout::vertical([Constraint::Min(0), Constraint::Length(profile_height)]).areas(area);
    profiles(app, profile_area, buf);
    let block = Block::new().borders(Borders::ALL).title(" Installed voices ");
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

fn profiles(app: &App, area: Rect, buf: &mut Buffer) {
    let block = Block::new().borders(Borders::ALL).title(" Conversion profiles (a: add from a WAV) ");
    if app.profiles.is_empty() {
        Paragraph::new("no profiles yet; press a and type the path of a WAV recording of the voice")
            .block(block)
            .render(area, buf);
        return;
    }
    let header =
        Row::new(["PROFILE", "MEDIAN F0", "FORMANT", "VOICED"]).style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.profiles.iter().map(|profile| match &profile.problem {
        None => Row::new([
            profile.name.clone(),
            format!("{:.1} Hz", profile.median_f0_hz),
            format!("{:.3}", profile.formant_scale),
            format!("{:.1} s", profile.voiced_seconds),
        ]),
        Some(_) => Row::new([profile.name.clone(), "-".into(), "-".into(), "unusable".into()])
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
    Table::new(rows, [Constraint::Length(28), Constraint::Length(11), Constraint::Length(9), Constraint::Min(0)])
        .header(header)
        .render(table_area, buf);
    Paragraph::new(problems).style(Style::new().fg(Color::Red)).render(problem_area, buf);
}

/// The Batch screen: a pure function of the batch's own state.
impl Widget for &BatchView {
    fn render(self, area: Rect, buf: &mut Buffer) {
        batch(self, area, buf)
    }
}

fn batch(view: &BatchView, area: Rect, buf: &mut Buffer) {
    let block = Block::new()
        .borders(Borders::ALL)
        .title(" Batch (o: open and run, w: watch another run, c: cancel, R: run again) ");
    let Some(manifest) = &view.manifest else {
        Paragraph::new(
            "no batch yet: press o and type the path of a manifest (.csv, .jsonl, .yaml or .txt) to run it here, \
             or w to follow a `demod-voice batch` that runs elsewhere on this machine",
        )
        .wrap(Wrap { trim: true })
        .block(block)
        .render(area, buf);
        return;
    };
    let inner = block.inner(area);
    block.render(area, buf);
    let failures: Vec<Line> = view
        .rows
        .iter()
        .filter_map(|r| match &r.status {
            JobStatus::Failed(error) => Some(Line::from(format!("row {} ({}): {error}", r.row, r.output))),
            _ => None,
        })
        .chain(view.invalid.iter().map(|invalid| Line::from(format!("invalid {invalid}"))))
        .chain(view.error.iter().map(|error| Line::from(error.clone())))
        .collect();
    let failure_height = if failures.is_empty() { 0 } else { (failures.len() as u16).min(6) + 2 };
    let [head, gauge, table_area, failure_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(failure_height),
    ])
    .areas(inner);

    let total = view.total();
    let processed = view.processed();
    let elapsed = view.elapsed.or_else(|| view.started.map(|s| s.elapsed().as_secs_f64())).unwrap_or(0.0);
    let (audio, compute) = view.audio_and_compute();
    let rtf = if audio > 0.0 { format!("{:.3}", compute / audio) } else { "-".into() };
    let eta = if view.running && processed > 0 && processed < total {
        format!("{:.0} s", elapsed / processed as f64 * (total - processed) as f64)
    } else {
        "-".into()
    };
    let state = match (view.running, view.watching) {
        (true, true) => "watching",
        (true, false) => "running",
        (false, _) => "stopped",
    };
    Line::from(format!(
        "{}  {state}  {processed}/{total} jobs, {} failed, {} invalid  ETA {eta}  RTF {rtf}  {:.1} s audio",
        manifest.display(),
        view.failed(),
        view.invalid.len(),
        audio
    ))
    .render(head, buf);
    let ratio = if total == 0 { 0.0 } else { processed as f64 / total as f64 };
    Gauge::default()
        .ratio(ratio.clamp(0.0, 1.0))
        .label(format!("{:.0}%", ratio * 100.0))
        .gauge_style(Style::new().fg(Color::Green))
        .render(gauge, buf);

    // Only the rows that fit are built, so a manifest of any size draws in the same time.
    let visible = table_area.height.saturating_sub(1) as usize;
    let start = view.scroll.min(total.saturating_sub(1));
    let rows = view.rows.iter().skip(start).take(visible).map(|r| {
        let (status, detail, color) = match &r.status {
            JobStatus::Pending => ("pending", String::new(), Color::DarkGray),
            JobStatus::Running => ("running", String::new(), Color::Yellow),
            JobStatus::Done { audio_seconds, seconds } => {
                ("done", format!("{audio_seconds:.1} s audio in {seconds:.1} s"), Color::Green)
            }
            JobStatus::Skipped(reason) => ("skipped", reason.clone(), Color::Blue),
            JobStatus::Failed(error) => ("failed", error.clone(), Color::Red),
        };
        Row::new([r.row.to_string(), status.to_string(), r.output.clone(), detail]).style(Style::new().fg(color))
    });
    Table::new(rows, [Constraint::Length(6), Constraint::Length(8), Constraint::Length(28), Constraint::Min(0)])
        .header(Row::new(["ROW", "STATUS", "OUTPUT", "DETAIL"]).style(Style::new().add_modifier(Modifier::BOLD)))
        .render(table_area, buf);
    if !failures.is_empty() {
        Paragraph::new(failures)
            .wrap(Wrap { trim: true })
            .style(Style::new().fg(Color::Red))
            .block(Block::new().borders(Borders::TOP).title(" Problems "))
            .render(failure_area, buf);
    }
}

fn health(app: &App, area: Rect, buf: &mut Buffer) {
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

fn help(area: Rect, buf: &mut Buffer) {
    let lines = [
        "Tab / Shift-Tab   next / previous screen (1-5 jump)",
        "i or Enter        edit the text (Synthesize)",
        "Esc               stop editing",
        "↑ ↓ (k j)         pick a control",
        "← → (h l)         change it",
        "Ctrl-P / Space    speak the text; again stops (Synthesize)",
        "x                 stop speaking",
        "[ ] then p        pick a history entry, play it again",
        "Ctrl-S            save the text to take-NNN.wav",
        "Space / Enter     start / stop live conversion (Live)",
        "d                 list the sound devices again (Live)",
        "Ctrl-U            clear the text (while editing)",
        "a                 add a conversion profile (Voices)",
        "o / c / R         open a manifest / cancel / run again (Batch)",
        "w                 follow a batch another process runs (Batch)",
        "r                 run the health checks again (Health)",
        "?                 this help; any key closes it",
        "q / Ctrl-C        quit",
    ];
    let width = 64.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    Clear.render(popup, buf);
    Paragraph::new(lines.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
        .block(Block::new().borders(Borders::ALL).title(" Keys "))
        .render(popup, buf);
}
