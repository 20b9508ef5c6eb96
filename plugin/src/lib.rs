//! DeMoD Voice: real-time voice conversion in a DAW (VST3 and CLAP, built on nice-plug, the published
//! continuation of nih-plug).
//!
//! `process` only calls the core real-time engine's audio side (plus gain). Everything that allocates or touches
//! files happens in `activate`: the engines are built for the host's rate and maximum block size, the profile
//! and preset are loaded, the worker threads start, and the latency goes to the host. `deactivate` stops them.
//!
//! Every engine the plugin offers ([`params::PLUGIN_ENGINES`]) runs side by side with the same latency (each padded
//! to the longest), so switching the engine parameter is seamless and never changes the reported latency. The
//! installed model the project names (RVC or tone colour) runs in its engine's slot; a model engine without one (or
//! with one that will not load) passes the input through, aligned, and the status says why. With a model loaded, the
//! latency is the model's (the longest). Settings (config file, preset, profile) are resolved by core's
//! [`Settings`], exactly as for the command line.

#![warn(missing_docs)]

mod clap_entry;
mod editor;
mod params;

use std::sync::Arc;

use demod_voice_core::config::RealtimeSection;
use demod_voice_core::convert::dsp::DspParams;
use demod_voice_core::convert::Engine;
use demod_voice_core::monitor::SimilarityMonitor;
use demod_voice_core::realtime::{AudioSide, Controls, RtConfig, RtEngine, WorkerThread};
use demod_voice_core::settings::Settings;
use nice_plug::prelude::*;

pub use editor::View;
pub use params::{EngineChoice, VoiceParams, PLUGIN_ENGINES};

/// The plugin's CLAP id, as C text (the preset provider names the plugin its presets are for).
pub(crate) const CLAP_ID_C: &std::ffi::CStr = c"com.demod.voice";

/// The plugin's name, as hosts and its window show it.
pub const PLUGIN_NAME: &str = "DeMoD Voice";

/// Mono or stereo.
const MAX_CHANNELS: usize = 2;

/// The plugin: its parameters and, once activated, one real-time engine per [`Engine`] with its worker thread.
pub struct DemodVoice {
    /// The parameters and persisted state (shared with the host and the wrapper).
    params: Arc<VoiceParams>,
    /// Converter settings shared with the dsp worker (pitch, formant, profile match).
    dsp: Arc<DspParams>,
    /// The engines' audio sides, indexed by [`Engine::index`]; empty until activated.
    engines: Vec<AudioSide>,
    controls: Vec<Arc<Controls>>,
    workers: Vec<WorkerThread>,
    /// Watches the workers for a death (a converter that panicked) and puts it in the status; off the audio thread.
    watchdog: Option<Watchdog>,
    /// A copy of the output for the similarity monitor, when the profile has a speaker embedding.
    tap: Option<demod_voice_core::monitor::Tap>,
    /// Copies of the input, so the in-place buffer can be both read and written (sized in `activate`).
    scratch: Vec<Vec<f32>>,
    /// Where the inactive engine's output goes (it keeps running so a switch is seamless).
    discard: Vec<Vec<f32>>,
    latency: u32,
    /// What the editor window shows: levels from `process`, the latency and engine stats from `activate`.
    view: Arc<View>,
}

impl Default for DemodVoice {
    fn default() -> Self {
        DemodVoice {
            params: Arc::new(VoiceParams::default()),
            dsp: Arc::new(DspParams::default()),
            engines: Vec::new(),
            controls: Vec::new(),
            workers: Vec::new(),
            watchdog: None,
            tap: None,
            scratch: Vec::new(),
            discard: Vec::new(),
            latency: 0,
            view: Arc::new(View::default()),
        }
    }
}

impl DemodVoice {
    /// Resolve the settings as the command line does (config file, the project's preset, the project's profile)
    /// off the audio thread. A missing file leaves the plugin usable with its parameters; the problem is logged
    /// and kept in the persisted status.
    fn load_profile_and_preset(&self) -> Loaded {
        let profile_name = self.params.profile.read().map(|p| p.clone()).unwrap_or_default();
        let preset_name = self.params.preset.read().map(|p| p.clone()).unwrap_or_default();
        let (settings, profile, problems) = Settings::for_plugin(&preset_name, &profile_name);
        self.dsp.set_target(profile.as_ref().map(|p| p.target()));
        let status = problems.join("; ");
        if !status.is_empty() {
            nice_error!("DeMoD Voice: {status}");
        }
        if let Ok(mut slot) = self.params.status.write() {
            *slot = status.clone();
        }
        // The rolling similarity needs the profile's embedding and an installed speaker encoder (the plugin never
        // downloads); without either the plugin works as before.
        let similarity =
            profile.and_then(|p| p.embedding.map(|e| (p.name, e))).and_then(|(name, target)| {
                match settings.installed_speaker_encoder()? {
                    Ok(encoder) => Some((name, encoder, target)),
                    Err(e) => {
                        nice_error!("DeMoD Voice: no similarity display: {e}");
                        None
                    }
                }
            });
        let model = self.params.model.read().map(|m| m.clone()).unwrap_or_default();
        let (model_engine, model_problems) = self.load_model(&settings, &model);
        Loaded { realtime: settings.config.realtime, status, similarity, model_engine, model_problems }
    }

    /// The project's installed model (`model`) loaded for the engine of its kind (RVC or tone colour; sessions and
    /// all, off the audio thread), and, for each model engine left without one, why (for the status while that
    /// engine is selected).
    fn load_model(&self, settings: &Settings, model: &str) -> (Option<(Engine, BoxedConverter)>, ModelProblems) {
        let model_engines = PLUGIN_ENGINES.iter().copied().filter(|e| e.needs_model());
        if model.is_empty() {
            let problems = model_engines
                .map(|e| {
                    let label = e.label();
                    (e, format!("{label} has no model: choose one in the plugin's window (`demod-voice models add` installs one)"))
                })
                .collect();
            return (None, problems);
        }
        let engine = demod_voice_core::neural::find(&settings.models_dir(), model).map_err(|e| e.to_string()).and_then(
            |manifest| {
                Engine::from_name(&manifest.engine)
                    .filter(|e| e.needs_model())
                    .ok_or_else(|| format!("`{model}` is a {} model, which no engine runs on its own", manifest.engine))
            },
        );
        let engine = match engine {
            Ok(engine) => engine,
            Err(problem) => {
                nice_error!("DeMoD Voice: model {model}: {problem}");
                return (None, model_engines.map(|e| (e, format!("model {model}: {problem}"))).collect());
            }
        };
        let mut settings = settings.clone();
        settings.set(demod_voice_core::settings::Setting::Model(model.to_string()), "plugin");
        let mut problems: Vec<(Engine, String)> = model_engines
            .filter(|e| *e != engine)
            .map(|e| (e, format!("{} has no model: `{model}` is a {engine} model (choose a {e} model)", e.label())))
            .collect();
        match demod_voice_core::convert::build_live(engine, self.dsp.clone(), &settings) {
            Ok(converter) => (Some((engine, converter)), problems),
            Err(e) => {
                nice_error!("DeMoD Voice: {engine} model {model}: {e}");
                problems.push((engine, format!("{} model {model}: {e}", engine.label())));
                (None, problems)
            }
        }
    }

    fn push_parameters(&self) {
        let p = &self.params;
        self.dsp.set_pitch_semitones(p.pitch.value());
        self.dsp.set_formant_ratio(p.formant.value());
        self.dsp.set_profile_amount(p.amount.value());
        let mix = if p.bypass.value() { 0.0 } else { p.mix.value() };
        for controls in &self.controls {
            controls.set_mix(mix);
        }
    }
}

impl Plugin for DemodVoice {
    const NAME: &'static str = PLUGIN_NAME;
    const VENDOR: &'static str = "DeMoD";
    const URL: &'static str = "https://github.com/demod/demod-voice";
    const EMAIL: &'static str = "voice@demod.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(1),
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];

    type Editor = editor::VoiceEditor;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        Some(editor::VoiceEditor::new(Arc::clone(&self.params), Arc::clone(&self.dsp), Arc::clone(&self.view)))
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        // Stop any previous workers before building anew (activate may run several times in a row).
        self.deactivate();
        let channels =
            audio_io_layout.main_output_channels.map(|c| c.get() as usize).unwrap_or(2).clamp(1, MAX_CHANNELS);
        let Loaded { realtime, status, similarity, model_engine, model_problems } = self.load_profile_and_preset();
        let max_block = (buffer_config.max_buffer_size as usize).clamp(1, demod_voice_core::realtime::MAX_BLOCK);
        let mut config =
            RtConfig::from_section(&realtime, buffer_config.sample_rate.round() as u32, max_block, channels);
        // When the host renders offline (faster than real time), wait for the conversion instead of falling back.
        config.offline = buffer_config.process_mode == ProcessMode::Offline;
        // Every engine reports the longest engine's latency, so a switch never moves the track.
        for &engine in Engine::LIVE {
            match config.latency_of(engine) {
                Ok(latency) => config.min_latency = config.min_latency.max(latency),
                Err(e) => {
                    nice_error!("DeMoD Voice: cannot start the {engine} engine: {e}");
                    return false;
                }
            }
        }
        // The model engine is built first (its latency is the longest) and the others padded to it.
        let mut built: Vec<Option<(AudioSide, demod_voice_core::realtime::Worker)>> =
            PLUGIN_ENGINES.iter().map(|_| None).collect();
        if let Some((engine, converter)) = model_engine {
            let slot = PLUGIN_ENGINES.iter().position(|e| *e == engine).unwrap_or(0);
            match RtEngine::build(&config, converter) {
                Ok((audio, worker)) => {
                    config.min_latency = config.min_latency.max(audio.latency());
                    built[slot] = Some((audio, worker));
                }
                Err(e) => nice_error!("DeMoD Voice: cannot start the {engine} engine: {e}"),
            }
        }
        for (slot, &engine) in PLUGIN_ENGINES.iter().enumerate() {
            if built[slot].is_some() {
                continue;
            }
            // A model engine without its model passes the input through, aligned like the rest.
            let engine = if engine.needs_model() { Engine::Passthrough } else { engine };
            match engine.build(self.dsp.clone()).and_then(|c| RtEngine::build(&config, c)) {
                Ok(pair) => built[slot] = Some(pair),
                Err(e) => {
                    nice_error!("DeMoD Voice: cannot start the {engine} engine: {e}");
                    self.deactivate();
                    return false;
                }
            }
        }
        for (audio, worker) in built.into_iter().flatten() {
            match worker.spawn() {
                Ok(thread) => self.workers.push(thread),
                Err(e) => {
                    nice_error!("DeMoD Voice: cannot start a worker thread: {e}");
                    self.deactivate();
                    return false;
                }
            }
            self.controls.push(audio.controls());
            self.engines.push(audio);
        }
        debug_assert!(self.engines.iter().all(|e| e.latency() == self.engines[0].latency()));
        self.latency = self.engines[0].latency() as u32;
        context.set_latency_samples(self.latency);
        self.scratch = vec![vec![0.0; max_block]; channels];
        self.discard = vec![vec![0.0; max_block]; channels];
        self.push_parameters();
        let stats: Vec<_> = PLUGIN_ENGINES.iter().copied().zip(self.engines.iter().map(AudioSide::stats)).collect();
        self.view.latency_samples.store(self.latency, std::sync::atomic::Ordering::Relaxed);
        self.view.sample_rate_hz.store(config.sample_rate_hz, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut slot) = self.view.stats.write() {
            slot.clone_from(&stats);
        }
        let monitor = similarity.and_then(|(name, encoder, target)| {
            let (tap, pull) = demod_voice_core::monitor::tap(config.sample_rate_hz);
            let target = Arc::new(std::sync::Mutex::new(Some(target)));
            let monitor = SimilarityMonitor::spawn(pull, config.sample_rate_hz, target, encoder).ok()?;
            self.tap = Some(tap);
            Some((name, monitor))
        });
        self.watchdog = Watchdog::spawn(stats, monitor, status, model_problems, Arc::clone(&self.params));
        nice_log!(
            "DeMoD Voice: {} Hz, blocks up to {max_block}, {channels} channel(s), latency {} samples, {:?}",
            config.sample_rate_hz,
            self.latency,
            buffer_config.process_mode
        );
        true
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        _context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        self.push_parameters();
        if self.engines.len() < PLUGIN_ENGINES.len() {
            return ProcessStatus::Normal;
        }
        let active = self.params.engine.value().to_index();
        let frames = buffer.samples();
        let channels = buffer.as_slice();
        let input_peak = peak(channels);
        let used = channels.len().min(self.scratch.len());
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(self.scratch[0].len());
            for (copy, channel) in self.scratch.iter_mut().zip(channels.iter()) {
                copy[..n].copy_from_slice(&channel[done..done + n]);
            }
            let mut ins: [&[f32]; MAX_CHANNELS] = [&[], &[]];
            for (slot, copy) in ins.iter_mut().zip(self.scratch.iter()) {
                *slot = &copy[..n];
            }
            for (idx, engine) in self.engines.iter_mut().enumerate() {
                let mut outs: [&mut [f32]; MAX_CHANNELS] = [&mut [], &mut []];
                if idx == active {
                    let (first, rest) = channels.split_at_mut(1.min(channels.len()));
                    if let Some(left) = first.first_mut() {
                        outs[0] = &mut left[done..done + n];
                    }
                    if let Some(right) = rest.first_mut() {
                        outs[1] = &mut right[done..done + n];
                    }
                } else {
                    let split = 1.min(self.discard.len());
                    let (first, rest) = self.discard.split_at_mut(split);
                    if let Some(left) = first.first_mut() {
                        outs[0] = &mut left[..n];
                    }
                    if let Some(right) = rest.first_mut() {
                        outs[1] = &mut right[..n];
                    }
                }
                engine.process(&ins[..used], &mut outs[..used]);
            }
            // The heard output (before the gain) to the similarity monitor: a lock-free copy, dropped if it lags.
            if let (Some(tap), Some(left)) = (self.tap.as_mut(), channels.first()) {
                tap.push(&left[done..done + n]);
            }
            done += n;
        }
        // Output gain, smoothed per sample; never let a non-finite value out.
        for mut frame in buffer.iter_samples() {
            let gain = self.params.gain.smoothed.next();
            for sample in frame.iter_mut() {
                let value = *sample * gain;
                *sample = if value.is_finite() { value } else { 0.0 };
            }
        }
        self.view.record_peaks(input_peak, peak(buffer.as_slice()));
        ProcessStatus::Normal
    }

    fn deactivate(&mut self) {
        // Dropping the thread handles stops and joins the workers.
        if let Ok(mut slot) = self.view.stats.write() {
            slot.clear();
        }
        self.watchdog = None;
        self.tap = None;
        self.workers.clear();
        self.engines.clear();
        self.controls.clear();
    }
}

/// The largest absolute sample of any channel.
fn peak(channels: &[&mut [f32]]) -> f32 {
    channels.iter().flat_map(|c| c.iter()).fold(0.0f32, |m, v| m.max(v.abs()))
}

/// What activation reads from the settings.
struct Loaded {
    realtime: RealtimeSection,
    /// The settings' problems (the status line's start).
    status: String,
    /// The profile's name, the speaker encoder and the profile's embedding, for the rolling similarity.
    similarity: Option<(String, demod_voice_core::speaker::SpeakerEncoder, demod_voice_core::speaker::Embedding)>,
    /// The project's model loaded for its engine (sessions and all) off the audio thread.
    model_engine: Option<(Engine, BoxedConverter)>,
    /// Why a model engine has no model, for the status while that engine is selected.
    model_problems: ModelProblems,
}

type BoxedConverter = Box<dyn demod_voice_core::convert::Converter>;
/// For each model engine left without a model, why.
type ModelProblems = Vec<(Engine, String)>;

/// A thread that looks at the engines' stats and the similarity monitor a few times a second and keeps the
/// persisted status up to date: the settings' problems, a worker's death (logged once; the audio side has already
/// fallen back per `underrun`, without waiting), and the output's similarity to the profile.
struct Watchdog {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn spawn(
        stats: Vec<(Engine, Arc<demod_voice_core::realtime::Stats>)>,
        monitor: Option<(String, SimilarityMonitor)>,
        base: String,
        model_problems: ModelProblems,
        params: Arc<VoiceParams>,
    ) -> Option<Watchdog> {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("demod-voice-watchdog".into())
            .spawn(move || {
                let mut reported = vec![false; stats.len()];
                let mut shown = base.clone();
                // At least once, however soon the plugin is deactivated (a short offline render).
                loop {
                    let mut parts: Vec<String> = Vec::new();
                    if !base.is_empty() {
                        parts.push(base.clone());
                    }
                    let selected = params.engine.value().0;
                    if let Some((_, problem)) = model_problems.iter().find(|(engine, _)| *engine == selected) {
                        parts.push(problem.clone());
                    }
                    for ((engine, stats), reported) in stats.iter().zip(reported.iter_mut()) {
                        if let Some(reason) = stats.worker_death() {
                            let line = format!("the {engine} engine stopped ({reason}); reload the plugin");
                            if !*reported {
                                *reported = true;
                                nice_error!("DeMoD Voice: {line}");
                            }
                            parts.push(line);
                        }
                    }
                    if let Some((name, monitor)) = &monitor {
                        if let Some(score) = monitor.score() {
                            parts.push(format!("similarity to {name}: {score:.2} (last 3 s of output)"));
                        }
                    }
                    let status = parts.join("; ");
                    if status != shown {
                        if let Ok(mut slot) = params.status.write() {
                            slot.clone_from(&status);
                        }
                        shown = status;
                    }
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                // The monitor stops with the watchdog.
                drop(monitor);
            })
            .ok()?;
        Some(Watchdog { stop, handle: Some(handle) })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl ClapPlugin for DemodVoice {
    const CLAP_ID: &'static str = match CLAP_ID_C.to_str() {
        Ok(id) => id,
        Err(_) => panic!("the CLAP id is ASCII"),
    };
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Real-time voice conversion: pitch, formants, voice profiles");
    const CLAP_MANUAL_URL: Option<&'static str> = Some(Self::URL);
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] =
        &[ClapFeature::AudioEffect, ClapFeature::PitchShifter, ClapFeature::Mono, ClapFeature::Stereo];
}

impl Vst3Plugin for DemodVoice {
    const VST3_CLASS_ID: [u8; 16] = *b"DeMoDVoiceConvrt";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Fx, Vst3SubCategory::PitchShift];
}

// The CLAP entry point is `clap_entry` (nice-plug's plugin plus a preset provider); VST3 is nice-plug's own.
nice_export_vst3!(DemodVoice);
