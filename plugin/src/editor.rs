//! The plugin's window (egui through nice-plug-egui, OpenGL through baseview): level meters with peak hold, the
//! engine, the parameters as sliders (each drag is one host gesture, so automation and undo see it), the profile
//! and preset pickers, the latency, the worker's state and counters, and a one-line status.
//!
//! The window reads the audio thread's levels through atomics ([`View`]) and everything else from what activation
//! and the watchdog publish; nothing it does waits on, or is waited on by, the audio thread. The profile and preset
//! lists are read from disk when the window opens and when asked (the Refresh button), never per frame.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use demod_voice_core::convert::dsp::DspParams;
use demod_voice_core::convert::Engine;
use demod_voice_core::realtime::Stats;
use demod_voice_core::settings::Settings;
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{EguiEditorHandle, EguiEditorState, EguiNiceSettings, NiceEguiApp, RepaintNotifier};

use crate::params::{EngineChoice, VoiceParams, PLUGIN_ENGINES};

/// The window's size when the project has none stored, logical pixels.
pub const DEFAULT_SIZE: (u32, u32) = (560, 520);
/// The smallest size the window may be resized to, logical pixels.
const MIN_SIZE: (f32, f32) = (440.0, 420.0);
/// How fast a meter falls, dB per second; and how long its peak mark holds, seconds.
const METER_FALL_DB_S: f32 = 24.0;
const PEAK_HOLD_S: f32 = 1.5;
/// How long the worker shows as falling behind after a late block, seconds.
const BEHIND_FOR_S: f32 = 2.0;
/// The meters' floor, dBFS.
const METER_FLOOR_DB: f32 = -60.0;

/// What the plugin publishes for the window. The audio thread only stores the block peaks (single writer; the
/// window takes them with a swap); activation and the watchdog write the rest.
#[derive(Debug, Default)]
pub struct View {
    input_peak: AtomicU32,
    output_peak: AtomicU32,
    /// The latency reported to the host, samples.
    pub latency_samples: AtomicU32,
    /// The host's sample rate, Hz (0 before the first activation).
    pub sample_rate_hz: AtomicU32,
    /// The running engines' statistics (set on activation, cleared on deactivation).
    pub stats: RwLock<Vec<(Engine, Arc<Stats>)>>,
}

impl View {
    /// Record a block's input and output peaks (absolute sample values). Audio thread: two atomic stores.
    #[inline]
    pub fn record_peaks(&self, input: f32, output: f32) {
        for (slot, peak) in [(&self.input_peak, input), (&self.output_peak, output)] {
            if peak > f32::from_bits(slot.load(Ordering::Relaxed)) {
                slot.store(peak.to_bits(), Ordering::Relaxed);
            }
        }
    }

    /// The highest input and output samples since the last call.
    pub fn take_peaks(&self) -> (f32, f32) {
        (
            f32::from_bits(self.input_peak.swap(0, Ordering::Relaxed)),
            f32::from_bits(self.output_peak.swap(0, Ordering::Relaxed)),
        )
    }
}

/// The plugin's editor: a fresh egui window per opening, at the size the project stored.
pub struct VoiceEditor {
    params: Arc<VoiceParams>,
    dsp: Arc<DspParams>,
    view: Arc<View>,
    state: Mutex<Option<Arc<EguiEditorState>>>,
    repaint: RepaintNotifier,
}

impl VoiceEditor {
    /// An editor over the plugin's parameters, its dsp settings and what it publishes.
    pub fn new(params: Arc<VoiceParams>, dsp: Arc<DspParams>, view: Arc<View>) -> VoiceEditor {
        VoiceEditor { params, dsp, view, state: Mutex::new(None), repaint: RepaintNotifier::new() }
    }

    fn stored_size(&self) -> (u32, u32) {
        let (w, h) = self.params.editor_size.read().map(|s| *s).unwrap_or(DEFAULT_SIZE);
        (w.max(MIN_SIZE.0 as u32), h.max(MIN_SIZE.1 as u32))
    }

    fn resize_hint() -> ResizeHint {
        ResizeHint::resizable().with_min_logical_size(nice_plug::editor::dpi::LogicalSize::new(MIN_SIZE.0, MIN_SIZE.1))
    }
}

impl Editor for VoiceEditor {
    type Handle = EguiEditorHandle;

    fn spawn(
        &self,
        parent: Option<ParentWindowHandle>,
        wait_for_parent: bool,
        fallback_scale_factor: Option<f64>,
        gui_context: nice_plug::context::gui::GuiContext,
        host: Option<nice_plug::editor::HostMethods>,
    ) -> Result<nice_plug::editor::SpawnedEditor<Self::Handle>, Box<dyn std::error::Error>> {
        let (w, h) = self.stored_size();
        let state = EguiEditorState::from_size(nice_plug::editor::dpi::LogicalSize::new(w, h), 1.0);
        if let Ok(mut slot) = self.state.lock() {
            *slot = Some(Arc::clone(&state));
        }
        let window = Window::new(Arc::clone(&self.params), Arc::clone(&self.dsp), Arc::clone(&self.view));
        let settings = EguiNiceSettings::new().with_tile(crate::PLUGIN_NAME).with_resize_hint(Self::resize_hint());
        let editor = nice_plug_egui::create_egui_editor(state, self.repaint.clone(), settings, window)
            .ok_or("the editor could not be created")?;
        editor.spawn(parent, wait_for_parent, fallback_scale_factor, gui_context, host)
    }

    fn size(&self) -> nice_plug::editor::dpi::NativeSize<u32> {
        let state = self.state.lock().ok().and_then(|s| s.clone());
        match state {
            Some(state) => {
                let size = state.physical_size();
                nice_plug::editor::dpi::NativeSize::new(size.width, size.height)
            }
            None => {
                let (w, h) = self.stored_size();
                nice_plug::editor::dpi::NativeSize::new(w, h)
            }
        }
    }

    fn resize_hint(&self) -> ResizeHint {
        Self::resize_hint()
    }
}

/// One entry of a picker: the name stored, and what the list shows.
#[derive(Debug, Clone, PartialEq)]
struct Choice {
    name: String,
    label: String,
    /// For a model: the engine that runs it (choosing the model selects it).
    engine: Option<Engine>,
}

/// The window's own state (the parameters live in the plugin).
struct Window {
    params: Arc<VoiceParams>,
    dsp: Arc<DspParams>,
    view: Arc<View>,
    gui: Option<nice_plug::context::gui::GuiContext>,
    profiles: Vec<Choice>,
    presets: Vec<Choice>,
    /// Installed models the plugin's model engines run (RVC voice models, tone colour pairs).
    models: Vec<Choice>,
    /// A problem met by the window itself (a profile that would not load), shown in the status line.
    problem: Option<String>,
    meters: [Meter; 2],
    last_frame: Option<std::time::Instant>,
    /// The active engine's late blocks when last seen, and when they last rose (the worker is "falling behind"
    /// for [`BEHIND_FOR_S`] after a late block).
    late_seen: u64,
    late_at: Option<std::time::Instant>,
}

impl Window {
    fn new(params: Arc<VoiceParams>, dsp: Arc<DspParams>, view: Arc<View>) -> Window {
        let mut window = Window {
            params,
            dsp,
            view,
            gui: None,
            profiles: Vec::new(),
            presets: Vec::new(),
            models: Vec::new(),
            problem: None,
            meters: [Meter::default(), Meter::default()],
            last_frame: None,
            late_seen: 0,
            late_at: None,
        };
        window.refresh();
        window
    }

    /// Read the installed profiles (with each one's similarity, when measured) and the presets.
    fn refresh(&mut self) {
        let (profiles, presets, models) = choices();
        self.profiles = profiles;
        self.presets = presets;
        self.models = models;
    }

    /// Use profile `name` (empty: none): stored in the project, matched at once, and reloaded whole (with the
    /// similarity display) when the host restarts the plugin, which it is asked to.
    fn choose_profile(&mut self, name: &str) {
        if let Ok(mut slot) = self.params.profile.write() {
            name.clone_into(&mut slot);
        }
        let preset = self.params.preset.read().map(|p| p.clone()).unwrap_or_default();
        let (_, profile, problems) = Settings::for_plugin(&preset, name);
        self.dsp.set_target(profile.as_ref().map(|p| p.target()));
        self.problem = (!problems.is_empty()).then(|| problems.join("; "));
        if let Some(gui) = &self.gui {
            gui.request_restart();
        }
    }

    /// Use preset `name`: its converter settings become the parameters' values (as host gestures), its profile
    /// becomes the project's, and the plugin is restarted for its real-time settings.
    fn choose_preset(&mut self, name: &str) {
        if let Ok(mut slot) = self.params.preset.write() {
            name.clone_into(&mut slot);
        }
        let settings = Settings::load(None).unwrap_or_else(|_| Settings::defaults());
        match demod_voice_core::presets::find(name, &settings.presets_dir()) {
            Ok(found) => {
                // A preset without converter settings means the defaults (no shift, the whole match, fully wet).
                let converter = found.preset.converter.clone().unwrap_or_default();
                if let Some(gui) = &self.gui {
                    let setter = gui.param_setter();
                    let p = &self.params;
                    let set = |param: &FloatParam, value: f32| {
                        setter.begin_set_parameter(param);
                        setter.set_parameter(param, value);
                        setter.end_set_parameter(param);
                    };
                    set(&p.pitch, converter.pitch_semitones);
                    set(&p.formant, converter.formant_ratio);
                    set(&p.amount, converter.profile_amount);
                    set(&p.mix, converter.mix);
                    if PLUGIN_ENGINES.contains(&converter.engine) {
                        setter.begin_set_parameter(&p.engine);
                        setter.set_parameter(&p.engine, EngineChoice(converter.engine));
                        setter.end_set_parameter(&p.engine);
                    }
                }
                if let Some(model) = &converter.model {
                    if let Ok(mut slot) = self.params.model.write() {
                        model.clone_into(&mut slot);
                    }
                }
                self.choose_profile(converter.profile.as_deref().unwrap_or(""));
            }
            Err(e) => self.problem = Some(e.to_string()),
        }
    }

    fn meters_ui(&mut self, ui: &mut egui::Ui) {
        let now = std::time::Instant::now();
        let dt = self.last_frame.map_or(0.0, |t| now.duration_since(t).as_secs_f32());
        self.last_frame = Some(now);
        let (input, output) = self.view.take_peaks();
        for ((meter, peak), label) in self.meters.iter_mut().zip([input, output]).zip(["In ", "Out"]) {
            meter.update(peak, dt);
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new(label).monospace());
                meter.draw(ui);
            });
        }
    }

    fn engine_ui(&self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let current = self.params.engine.value().0;
        egui::ComboBox::from_id_salt("engine").selected_text(current.label()).show_ui(ui, |ui| {
            for &engine in PLUGIN_ENGINES {
                if ui.selectable_label(engine == current, engine.label()).clicked() && engine != current {
                    setter.begin_set_parameter(&self.params.engine);
                    setter.set_parameter(&self.params.engine, EngineChoice(engine));
                    setter.end_set_parameter(&self.params.engine);
                }
            }
        });
    }

    fn pickers_ui(&mut self, ui: &mut egui::Ui) {
        let profile = self.params.profile.read().map(|p| p.clone()).unwrap_or_default();
        let preset = self.params.preset.read().map(|p| p.clone()).unwrap_or_default();
        let model = self.params.model.read().map(|m| m.clone()).unwrap_or_default();
        let (mut chosen_profile, mut chosen_preset, mut chosen_model) = (None, None, None);
        egui::Grid::new("pickers").num_columns(2).spacing([12.0, 6.0]).show(ui, |ui| {
            chosen_profile = picker(ui, "Profile", &self.profiles, &profile, true);
            chosen_preset = picker(ui, "Preset", &self.presets, &preset, false);
            chosen_model = picker(ui, "Model", &self.models, &model, true);
        });
        if ui.button("Refresh lists").clicked() {
            self.refresh();
        }
        if let Some(name) = chosen_profile.filter(|n| *n != profile) {
            self.choose_profile(&name);
        }
        if let Some(name) = chosen_preset.filter(|n| *n != preset) {
            self.choose_preset(&name);
        }
        if let Some(name) = chosen_model.filter(|n| *n != model) {
            // Its engine is selected (a host gesture), and the model loads when the host restarts the plugin (off
            // the audio thread), as activation does.
            let engine = self.models.iter().find(|c| c.name == name).and_then(|c| c.engine);
            if let Ok(mut slot) = self.params.model.write() {
                *slot = name;
            }
            if let Some(gui) = &self.gui {
                if let Some(engine) = engine.filter(|e| PLUGIN_ENGINES.contains(e)) {
                    let setter = gui.param_setter();
                    setter.begin_set_parameter(&self.params.engine);
                    setter.set_parameter(&self.params.engine, EngineChoice(engine));
                    setter.end_set_parameter(&self.params.engine);
                }
                gui.request_restart();
            }
        }
    }

    fn engine_state_ui(&mut self, ui: &mut egui::Ui) {
        let latency = self.view.latency_samples.load(Ordering::Relaxed);
        let rate = self.view.sample_rate_hz.load(Ordering::Relaxed);
        let active = self.params.engine.value().0;
        let stats =
            self.view.stats.read().ok().and_then(|s| s.iter().find(|(e, _)| *e == active).map(|(_, s)| s.clone()));
        match (stats, rate) {
            (Some(stats), rate) if rate > 0 => {
                ui.label(format!(
                    "Latency: {latency} samples ({:.1} ms at {rate} Hz)",
                    latency as f32 * 1000.0 / rate as f32
                ));
                let snapshot = stats.snapshot();
                if snapshot.underruns > self.late_seen {
                    self.late_at = Some(std::time::Instant::now());
                }
                self.late_seen = snapshot.underruns;
                let behind = self.late_at.is_some_and(|t| t.elapsed().as_secs_f32() < BEHIND_FOR_S);
                let state = if stats.worker_death().is_some() {
                    "dead (reload the plugin)"
                } else if behind {
                    "falling behind"
                } else {
                    "running"
                };
                ui.label(format!(
                    "Worker: {state} · {} hops · {} late blocks · {:.2} ms per hop on average",
                    snapshot.hops,
                    snapshot.underruns,
                    snapshot.worker_mean.as_secs_f64() * 1000.0
                ));
            }
            _ => {
                ui.label("Latency: not running (the host has not started the plugin)");
            }
        }
    }
}

impl NiceEguiApp for Window {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui: nice_plug::context::gui::GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.gui = Some(gui);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        let frame = egui::Frame::new().inner_margin(egui::Margin::same(12)).fill(ui.visuals().panel_fill);
        frame.show(ui, |ui| {
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
                ui.heading(crate::PLUGIN_NAME);
                ui.separator();
                self.meters_ui(ui);
                ui.separator();
                ui.horizontal(|ui| {
                    ui.label("Engine");
                    self.engine_ui(ui, &setter);
                    let mut bypass = self.params.bypass.value();
                    if ui.checkbox(&mut bypass, "Bypass").changed() {
                        setter.begin_set_parameter(&self.params.bypass);
                        setter.set_parameter(&self.params.bypass, bypass);
                        setter.end_set_parameter(&self.params.bypass);
                    }
                });
                egui::Grid::new("sliders").num_columns(2).spacing([12.0, 6.0]).show(ui, |ui| {
                    let p = &self.params;
                    for (label, param) in [
                        ("Pitch", &p.pitch),
                        ("Formant", &p.formant),
                        ("Profile match", &p.amount),
                        ("Mix", &p.mix),
                        ("Output gain", &p.gain),
                    ] {
                        ui.label(label);
                        ui.add(ParamSlider::for_param(param, &setter).with_width(240.0));
                        ui.end_row();
                    }
                });
                ui.separator();
                self.pickers_ui(ui);
                ui.separator();
                self.engine_state_ui(ui);
                let status = self.params.status.read().map(|s| s.clone()).unwrap_or_default();
                let line = match (&self.problem, status.is_empty()) {
                    (Some(problem), _) => problem.clone(),
                    (None, false) => status,
                    (None, true) => "OK".to_string(),
                };
                ui.label(egui::RichText::new(format!("Status: {line}")).strong());
            });
        });
        // Meters move: draw again soon.
        ui.ctx().request_repaint_after(std::time::Duration::from_millis(33));
    }

    fn resized(&mut self, new_size: nice_plug_egui::baseview::WindowSize) {
        let size = (new_size.logical.width.round() as u32, new_size.logical.height.round() as u32);
        if let Ok(mut slot) = self.params.editor_size.write() {
            *slot = size;
        }
    }
}

/// One labelled row of a picker grid: a drop-down of `choices` (with "(none)" first when `none` is allowed) showing
/// `current`; the name picked this frame, if any (empty for none).
fn picker(ui: &mut egui::Ui, label: &str, choices: &[Choice], current: &str, none: bool) -> Option<String> {
    let mut chosen = None;
    ui.label(label);
    let shown = match choices.iter().find(|c| c.name == current) {
        Some(choice) => choice.label.clone(),
        None if current.is_empty() => "(none)".to_string(),
        None => current.to_string(),
    };
    egui::ComboBox::from_id_salt(label).selected_text(shown).width(300.0).show_ui(ui, |ui| {
        if none && ui.selectable_label(current.is_empty(), "(none)").clicked() {
            chosen = Some(String::new());
        }
        for choice in choices {
            if ui.selectable_label(choice.name == current, &choice.label).clicked() {
                chosen = Some(choice.name.clone());
            }
        }
    });
    ui.end_row();
    chosen
}

/// A level meter: the level falls at [`METER_FALL_DB_S`], the peak mark holds for [`PEAK_HOLD_S`].
#[derive(Debug, Clone, Copy)]
struct Meter {
    level_db: f32,
    peak_db: f32,
    peak_age: f32,
}

impl Default for Meter {
    fn default() -> Self {
        Meter { level_db: METER_FLOOR_DB, peak_db: METER_FLOOR_DB, peak_age: 0.0 }
    }
}

impl Meter {
    fn update(&mut self, peak: f32, dt: f32) {
        let db = (20.0 * peak.max(1e-6).log10()).max(METER_FLOOR_DB);
        self.level_db = db.max(self.level_db - METER_FALL_DB_S * dt).max(METER_FLOOR_DB);
        self.peak_age += dt;
        if db >= self.peak_db || self.peak_age > PEAK_HOLD_S {
            self.peak_db = db.max(self.level_db);
            self.peak_age = 0.0;
        }
    }

    fn draw(&self, ui: &mut egui::Ui) {
        let width = (ui.available_width() - 90.0).max(100.0);
        let (rect, _) = ui.allocate_exact_size(egui::vec2(width, 14.0), egui::Sense::hover());
        let fraction = |db: f32| ((db - METER_FLOOR_DB) / -METER_FLOOR_DB).clamp(0.0, 1.0);
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
        let colour = if self.level_db > -3.0 {
            egui::Color32::from_rgb(220, 60, 40)
        } else {
            egui::Color32::from_rgb(60, 190, 90)
        };
        let mut bar = rect;
        bar.set_width(rect.width() * fraction(self.level_db));
        painter.rect_filled(bar, 2.0, colour);
        let x = rect.left() + rect.width() * fraction(self.peak_db);
        painter.line_segment([egui::pos2(x, rect.top()), egui::pos2(x, rect.bottom())], (2.0, egui::Color32::WHITE));
        ui.label(egui::RichText::new(format!("{:>6.1} dB", self.peak_db)).monospace());
    }
}

/// The installed profiles (labelled with each one's similarity before -> after, when measured for the configured
/// voice), the factory and user presets (labelled with their descriptions) and the installed models the model
/// engines run (labelled with their engine).
fn choices() -> (Vec<Choice>, Vec<Choice>, Vec<Choice>) {
    let settings = Settings::load(None).unwrap_or_else(|_| Settings::defaults());
    let voice = settings.voice_path(None).ok().map(|model| demod_voice_core::piper::synth::voice_name(&model));
    let profiles = demod_voice_core::library::profiles(&settings.profiles_dir())
        .into_iter()
        .filter(|row| row.problem.is_none())
        .map(|row| {
            let similarity = voice.as_deref().and_then(|voice| row.similarity(&settings.dirs.cache, voice));
            let label = match similarity {
                Some((before, after)) => format!("{}  (similarity {before:.2} -> {after:.2})", row.name),
                None => row.name.clone(),
            };
            Choice { name: row.name, label, engine: None }
        })
        .collect();
    let presets = demod_voice_core::presets::all(&settings.presets_dir())
        .into_iter()
        .flatten()
        .map(|found| {
            let label = if found.preset.description.is_empty() {
                found.preset.name.clone()
            } else {
                format!("{}: {}", found.preset.name, found.preset.description)
            };
            Choice { name: found.preset.name, label, engine: None }
        })
        .collect();
    let models = demod_voice_core::neural::list(&settings.models_dir())
        .into_iter()
        .filter_map(|(name, manifest)| {
            let engine = manifest.ok().and_then(|m| Engine::from_name(&m.engine)).filter(|e| e.needs_model())?;
            Some(Choice { label: format!("{name}  ({})", engine.label()), name, engine: Some(engine) })
        })
        .collect();
    (profiles, presets, models)
}
