//! The Live screen: microphone -> converter -> speakers through the real-time engine, its controls (applied while
//! it runs), meters, latency and counters.

use std::sync::Arc;

use anyhow::Result;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Widget, Wrap};

use crate::app::jobs::{lock, quiet_context, Shared};
use crate::app::messages::Job;
use crate::app::view::meter;
use crate::app::App;
use crate::cli::GlobalArgs;
use demod_voice_core::convert::Engine;
use demod_voice_core::limits;

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
    /// The rolling similarity of the output to the selected profile (None: the speaker encoder is not installed).
    pub similarity: Option<Arc<std::sync::atomic::AtomicU32>>,
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
    /// The installed model a model engine runs (set by a preset that names one).
    pub model: Option<String>,
    /// How far the tone colour engine moves toward the profile's tone (set by a preset).
    pub tau: f32,
    /// 0 is "(none)", then the app's profiles.
    pub profile: usize,
    pub pitch: f32,
    pub formant: f32,
    pub mix: f32,
    /// Shared with the converter while it runs: changes apply at once.
    pub params: Arc<demod_voice_core::convert::dsp::DspParams>,
    /// The selected profile's speaker embedding, for the rolling similarity (set with the other settings).
    pub similarity_target: demod_voice_core::monitor::Target,
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
            model: None,
            tau: demod_voice_core::presets::ConverterSettings::default().tau,
            profile: 0,
            pitch: 0.0,
            formant: 1.0,
            mix: 1.0,
            params: Arc::new(demod_voice_core::convert::dsp::DspParams::default()),
            similarity_target: Default::default(),
            running: None,
            starting: false,
            error: None,
            in_level: 0.0,
            out_level: 0.0,
        }
    }
}

impl App {
    pub(crate) fn toggle_live(&mut self) -> Option<Job> {
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
            model: self.live.model.clone(),
            profile: self.live.profile.checked_sub(1).and_then(|i| self.profiles.get(i)).map(|p| p.name.clone()),
            tau: self.live.tau,
            params: self.live.params.clone(),
            mix: self.live.mix,
            similarity_target: self.live.similarity_target.clone(),
        })
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
    pub(crate) fn apply_live_settings(&mut self) {
        let live = &mut self.live;
        live.params.set_pitch_semitones(live.pitch);
        live.params.set_formant_ratio(live.formant);
        let target = live.profile.checked_sub(1).and_then(|i| self.profiles.get(i)).filter(|p| p.problem.is_none());
        live.params.set_target(target.and_then(|p| p.target));
        *live.similarity_target.lock().unwrap_or_else(|p| p.into_inner()) = target.and_then(|p| p.embedding.clone());
        if let Some(running) = &live.running {
            running.controls.set_mix(live.mix);
        }
    }

    pub(crate) fn adjust_live(&mut self, direction: i32) {
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
                live.engine =
                    Engine::LIVE.get(cycle(live.engine.index(), Engine::LIVE.len())).copied().unwrap_or_default();
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
                    live.model = settings.model.clone();
                    live.tau = settings.tau;
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
}

pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
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
            LiveControl::Engine => match (&live.model, live.engine.needs_model()) {
                (Some(model), true) => format!("{} ({model})", live.engine.name()),
                _ => live.engine.name().to_string(),
            },
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
    let mut lines = vec![
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
    let profile = live.profile.checked_sub(1).and_then(|i| app.profiles.get(i));
    let similarity = match (&running.similarity, profile) {
        (None, _) => "similarity: install the speaker encoder (demod-voice setup) to see it".to_string(),
        (Some(_), None) => "similarity: pick a profile to compare the output with".to_string(),
        (Some(_), Some(p)) if p.embedding.is_none() => {
            format!("similarity: profile {} has no embedding (add it again to measure one)", p.name)
        }
        (Some(cell), Some(p)) => match demod_voice_core::monitor::read(cell) {
            Some(score) => format!("similarity to {}: {score:.2} (last 3 s of output)", p.name),
            None => format!("similarity to {}: listening ...", p.name),
        },
    };
    lines.insert(lines.len() - 1, Line::from(similarity));
    if live.engine == Engine::ToneColor {
        lines.insert(
            lines.len() - 1,
            Line::from(
                "tone colour: your own tone is measured from your first 3 s of speech (you hear yourself until \
                 then) and refreshed every 5 s",
            ),
        );
    }
    if let Some(reason) = running.stats.worker_death() {
        lines.insert(
            1,
            Line::styled(
                format!("converter stopped: {reason}; you hear the fallback. Stop and start again."),
                Style::new().fg(Color::Red),
            ),
        );
    }
    Paragraph::new(lines).wrap(Wrap { trim: true }).render(details, buf);
}

/// Open the devices and start converting; the speech output is closed first (one device, one user).
/// What the Live screen asks to start with (the fields of `Job::StartLive`).
pub(crate) struct LiveRequest {
    pub input: Option<String>,
    pub output: Option<String>,
    pub engine: Engine,
    pub model: Option<String>,
    pub profile: Option<String>,
    pub tau: f32,
    pub params: Arc<demod_voice_core::convert::dsp::DspParams>,
    pub mix: f32,
    pub similarity_target: demod_voice_core::monitor::Target,
}

pub(crate) fn start_live(global: &GlobalArgs, shared: &Shared, request: LiveRequest) -> Result<LiveInfo> {
    let LiveRequest { input, output, engine, model, profile, tau, params, mix, similarity_target } = request;
    let mut ctx = quiet_context(global)?;
    use demod_voice_core::settings::Setting;
    if let Some(model) = model {
        ctx.settings.set(Setting::Model(model), "preset");
    }
    // The tone colour engine moves toward the selected profile's tone.
    if let Some(profile) = profile {
        ctx.settings.set(Setting::Profile(profile), "the Live screen");
    }
    ctx.settings.set(Setting::Tau(tau), "preset");
    let converter = demod_voice_core::convert::build_live(engine, params, &ctx.settings)?;
    if let Some(playback) = lock(&shared.playback).as_mut() {
        playback.close();
    }
    let mut live = lock(&shared.live);
    *live = None;
    // The rolling similarity runs when the speaker encoder is installed (Live never downloads it).
    let similarity = ctx
        .settings
        .installed_speaker_encoder()
        .and_then(|loaded| loaded.ok())
        .map(|encoder| (encoder, similarity_target));
    let setup = crate::devices::LiveSetup {
        input,
        output,
        converter,
        realtime: ctx.settings.config.realtime.clone(),
        mix,
        similarity,
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
        similarity: started.similarity.clone(),
    };
    *live = Some(started);
    Ok(info)
}

/// A device picker's entries: "(default)" first, then the devices by name.
pub(crate) fn device_list(names: Vec<String>) -> Vec<String> {
    std::iter::once("(default)".to_string()).chain(names).collect()
}
