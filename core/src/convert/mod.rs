//! Voice converters: one [`Converter`] trait, several engines.
//!
//! - [`Passthrough`]: output = input; used to measure the real-time engine's latency exactly.
//! - [`dsp::DspConverter`]: pitch and formant matching with no model (PSOLA with grain resampling).
//! - [`tone::ToneColorConverter`] (live: [`tone::LiveToneConverter`]), [`rvc::RvcConverter`]: installed neural models.
//!
//! A converter processes one block at a time on the real-time worker thread (never on the audio thread, so it may
//! allocate, although the engines here do not after `prepare`). A block is `context | hop | lookahead`: the left
//! context gives block-based (stateless) models history; the lookahead is what the worker needs for its SOLA
//! overlap and what [`Converter::latency`] asks for. The output is time-aligned with the input block.

pub mod dsp;
pub mod rmvpe;
pub mod rvc;
pub mod spectrogram;
pub mod timbre;
pub mod tone;

/// A voice converter driven by the real-time engine (and by `convert` offline, through the same engine).
pub trait Converter: Send {
    /// Short engine name (`passthrough`, `dsp`).
    fn name(&self) -> &'static str;

    /// The rate this converter wants to run at; `None` runs at the host rate (no resampling).
    fn sample_rate(&self) -> Option<u32>;

    /// Allocate for `sample_rate_hz` and hops of at most `max_hop` samples (and blocks of at most `max_block`).
    fn prepare(&mut self, sample_rate_hz: u32, max_hop: usize, max_block: usize);

    /// Samples of input needed to the right of a sample before that sample's output is final.
    fn latency(&self) -> usize;

    /// Convert `input` (`context | hop | lookahead`, with the hop at `hop_start..hop_start + hop_len`) into
    /// `output` (same length, time-aligned). A stateful converter advances its state by the hop only: the
    /// lookahead part is a preview that the next block recomputes.
    fn process(&mut self, input: &[f32], hop_start: usize, hop_len: usize, output: &mut [f32]);

    /// Forget all history (a new stream starts).
    fn reset(&mut self);

    /// True when consecutive hops already join sample-exactly (a stateful streaming converter); the engine then
    /// skips the SOLA search and cross-fade, and their lookahead.
    fn continuous(&self) -> bool {
        false
    }
}

/// The installed model `converter.model` names for a model `engine` (its folder's parent and its manifest);
/// refused with what to do when none is named or installed. Each engine checks the model's kind itself.
pub(crate) fn installed_model(
    settings: &crate::settings::Settings,
    engine: Engine,
) -> crate::error::Result<(std::path::PathBuf, crate::neural::Manifest)> {
    let name =
        settings.converter.as_ref().and_then(|c| c.model.as_deref()).ok_or_else(|| crate::error::Error::Setting {
            key: "converter.model".into(),
            problem: format!("{engine} runs an installed model: give --model NAME (see `demod-voice models list`)"),
        })?;
    let models_dir = settings.models_dir();
    let manifest = crate::neural::find(&models_dir, name)?;
    Ok((models_dir, manifest))
}

/// The converter a live path runs for `engine`: a model-free one reading `params`, or the RVC model the settings
/// name (`converter.model`; its pitch shift taken from `params` now, fixed until the next start), or the tone colour
/// model it names toward the profile's tone (`converter.profile`; the live input's own tone measured as it comes).
pub fn build_live(
    engine: Engine,
    params: std::sync::Arc<dsp::DspParams>,
    settings: &crate::settings::Settings,
) -> crate::error::Result<Box<dyn Converter>> {
    match engine {
        Engine::Rvc => Ok(Box::new(rvc::RvcSetup::from_settings(settings)?.converter(params.pitch_semitones())?)),
        Engine::ToneColor => {
            Ok(Box::new(tone::ToneSetup::from_settings(settings, settings.converter_profile()?)?.live()?))
        }
        _ => engine.build(params),
    }
}

/// A converter kept loaded across clips (offline: each clip's engine borrows it through a lock on the worker
/// thread, never the audio thread), so speech with a model engine loads the model once, not once per sentence.
pub(crate) struct Shared<C: Converter>(pub(crate) std::sync::Arc<std::sync::Mutex<C>>);

impl<C: Converter> Shared<C> {
    fn with<R>(&self, f: impl FnOnce(&mut C) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl<C: Converter> Converter for Shared<C> {
    fn name(&self) -> &'static str {
        self.with(|c| c.name())
    }
    fn sample_rate(&self) -> Option<u32> {
        self.with(|c| c.sample_rate())
    }
    fn prepare(&mut self, sample_rate_hz: u32, max_hop: usize, max_block: usize) {
        self.with(|c| c.prepare(sample_rate_hz, max_hop, max_block));
    }
    fn latency(&self) -> usize {
        self.with(|c| c.latency())
    }
    fn process(&mut self, input: &[f32], hop_start: usize, hop_len: usize, output: &mut [f32]) {
        self.with(|c| c.process(input, hop_start, hop_len, output));
    }
    fn reset(&mut self) {
        self.with(|c| c.reset());
    }
    fn continuous(&self) -> bool {
        self.with(|c| c.continuous())
    }
}

/// A model engine's block: `converted` into `output`, or the dry input when the model failed (the dry signal rather
/// than silence; said once per converter, on the worker thread, never the audio thread).
pub(crate) fn converted_or_dry(
    converted: crate::error::Result<Vec<f32>>,
    input: &[f32],
    output: &mut [f32],
    warned: &mut bool,
    engine: &str,
) {
    match converted {
        Ok(converted) => output.copy_from_slice(&converted),
        Err(e) => {
            if !*warned {
                tracing::warn!("{engine} conversion failed, passing the input through: {e}");
                *warned = true;
            }
            output.copy_from_slice(input);
        }
    }
}

/// Output equals input.
#[derive(Debug, Default, Clone)]
pub struct Passthrough {
    /// Run at this rate instead of the host's (tests use it to exercise resampling).
    pub forced_rate: Option<u32>,
}

impl Converter for Passthrough {
    fn name(&self) -> &'static str {
        "passthrough"
    }
    fn sample_rate(&self) -> Option<u32> {
        self.forced_rate
    }
    fn prepare(&mut self, _sample_rate_hz: u32, _max_hop: usize, _max_block: usize) {}
    fn latency(&self) -> usize {
        0
    }
    fn process(&mut self, input: &[f32], _hop_start: usize, _hop_len: usize, output: &mut [f32]) {
        output.copy_from_slice(input);
    }
    fn reset(&mut self) {}
}

/// The converter engines a user can pick. Everything that offers a choice of engine (the command line's value
/// parser, presets, batch manifests, the app's picker, the plugin's enum parameter) derives it from this type, so
/// adding an engine means adding a variant here and its arms below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Pitch and formant matching with no model (the embedded default).
    #[default]
    Dsp,
    /// Output = input delayed by the latency (for hearing and checking the latency alone).
    Passthrough,
    /// An installed OpenVoice-format tone colour model (`--model NAME`), toward a voice profile's tone.
    ToneColor,
    /// An installed RVC voice model (`--model NAME`) with a content encoder.
    Rvc,
}

impl Engine {
    /// Every engine, in the order pickers show them (the default first; declaration order).
    pub const ALL: &'static [Engine] = &[Engine::Dsp, Engine::Passthrough, Engine::ToneColor, Engine::Rvc];
    /// Their short names, in the same order.
    pub const NAMES: &'static [&'static str] = &["dsp", "passthrough", "tone-color", "rvc"];
    /// Their display names, in the same order.
    pub const LABELS: &'static [&'static str] = &["DSP", "Passthrough", "Tone colour", "RVC"];
    /// The engines that need no model, a prefix of [`Engine::ALL`]: what every live path can always build (the Live
    /// screen's picker, the soak; the plugin offers these and RVC, loaded from the project's model).
    pub const LIVE: &'static [Engine] = &[Engine::Dsp, Engine::Passthrough];
    /// The names of [`Engine::LIVE`] (static, for the plugin's enum parameter ids).
    pub const LIVE_NAMES: &'static [&'static str] = &["dsp", "passthrough"];
    /// The display names of [`Engine::LIVE`].
    pub const LIVE_LABELS: &'static [&'static str] = &["DSP", "Passthrough"];

    /// The short name used on the command line, in presets, manifests and saved state.
    pub fn name(self) -> &'static str {
        Engine::NAMES[self.index()]
    }

    /// The name shown in pickers and the plugin's parameter list.
    pub fn label(self) -> &'static str {
        Engine::LABELS[self.index()]
    }

    /// One line on what the engine does.
    pub fn description(self) -> &'static str {
        match self {
            Engine::Dsp => "pitch and formant matching, no model",
            Engine::Passthrough => "the input delayed by the latency (to hear the latency alone)",
            Engine::ToneColor => "an installed tone colour model (--model NAME) toward a profile's tone",
            Engine::Rvc => "an installed RVC voice model (--model NAME) with its content encoder",
        }
    }

    /// The engine called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Engine> {
        Engine::ALL.iter().copied().find(|engine| engine.name() == name)
    }

    /// Every engine's name, in picker order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Engine::NAMES.iter().copied()
    }

    /// Where this engine stands in [`Engine::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The engine at `index` in [`Engine::ALL`] (the default when out of range).
    pub fn from_index(index: usize) -> Engine {
        Engine::ALL.get(index).copied().unwrap_or_default()
    }

    /// True for engines that run an installed model (built from the model library by the sentence converter, not by
    /// [`Engine::build`]).
    pub fn needs_model(self) -> bool {
        !Engine::LIVE.contains(&self)
    }

    /// The converter for a model-free engine; `dsp` reads its settings from `params` (shared with whoever edits
    /// them). A model engine is refused with what it needs.
    pub fn build(self, params: std::sync::Arc<dsp::DspParams>) -> crate::error::Result<Box<dyn Converter>> {
        match self {
            Engine::Dsp => Ok(Box::new(dsp::DspConverter::new(params))),
            Engine::Passthrough => Ok(Box::new(Passthrough::default())),
            Engine::ToneColor | Engine::Rvc => Err(crate::error::Error::Setting {
                key: "converter.engine".into(),
                problem: format!("{self} runs an installed model: give --model NAME (see `demod-voice models list`)"),
            }),
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    /// An unknown name is refused with the list of known ones.
    fn from_str(name: &str) -> Result<Engine, String> {
        Engine::from_name(name).ok_or_else(|| {
            format!("`{name}` is not an engine; expected one of {}", Engine::names().collect::<Vec<_>>().join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_cover_every_engine() {
        assert_eq!(Engine::ALL.len(), Engine::NAMES.len());
        assert_eq!(Engine::ALL.len(), Engine::LABELS.len());
        assert_eq!(Engine::ALL[0], Engine::default());
    }

    #[test]
    fn every_engine_round_trips_through_its_name_and_builds_a_converter_of_that_name() {
        for &engine in Engine::ALL {
            assert_eq!(engine.name().parse::<Engine>(), Ok(engine));
            match engine.build(Default::default()) {
                Ok(converter) => assert_eq!(converter.name(), engine.name()),
                Err(e) => assert!(engine.needs_model() && e.to_string().contains("--model"), "{e}"),
            }
            assert_eq!(Engine::ALL[engine.index()], engine);
            assert_eq!(Engine::from_index(engine.index()), engine);
        }
        assert!("world".parse::<Engine>().unwrap_err().contains("dsp, passthrough, tone-color, rvc"));
        // The live list is a prefix of the whole one, so indices agree.
        assert_eq!(&Engine::ALL[..Engine::LIVE.len()], Engine::LIVE);
        assert_eq!(&Engine::NAMES[..Engine::LIVE.len()], Engine::LIVE_NAMES);
        assert_eq!(&Engine::LABELS[..Engine::LIVE.len()], Engine::LIVE_LABELS);
        assert!(Engine::LIVE.iter().all(|e| !e.needs_model()));
    }
}
