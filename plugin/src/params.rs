//! The plugin's parameters and persisted state. Ids are short and stable so fields can be renamed freely.

use std::sync::RwLock;

use demod_voice_core::convert::Engine;
use demod_voice_core::limits;
use nice_plug::prelude::*;

/// The engines the plugin offers: core's model-free live engines ([`Engine::LIVE`]), RVC and tone colour, which run
/// the installed model the project names (`model`). Their names and labels come from [`Engine`] (new ones go last:
/// hosts store the index too).
pub const PLUGIN_ENGINES: &[Engine] = &[Engine::Dsp, Engine::Passthrough, Engine::Rvc, Engine::ToneColor];
const PLUGIN_ENGINE_NAMES: &[&str] = &["dsp", "passthrough", "rvc", "tone-color"];
const PLUGIN_ENGINE_LABELS: &[&str] = &["DSP", "Passthrough", "RVC", "Tone colour"];

/// Which converter runs, as a plugin parameter (saved by name, so the list may grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineChoice(pub Engine);

impl Enum for EngineChoice {
    fn variants() -> &'static [&'static str] {
        PLUGIN_ENGINE_LABELS
    }

    fn ids() -> Option<&'static [&'static str]> {
        Some(PLUGIN_ENGINE_NAMES)
    }

    fn to_index(self) -> usize {
        PLUGIN_ENGINES.iter().position(|e| *e == self.0).unwrap_or(0)
    }

    fn from_index(index: usize) -> Self {
        EngineChoice(PLUGIN_ENGINES.get(index).copied().unwrap_or_default())
    }
}

/// Everything the host automates or the project stores.
#[derive(Params)]
pub struct VoiceParams {
    /// Conversion engine (switching is seamless: all engines share one latency, the longest of those loaded).
    #[id = "engine"]
    pub engine: EnumParam<EngineChoice>,

    /// Pitch shift, semitones ([`limits::PITCH_SEMITONES`]). Read by the worker each hop, which smooths ratio changes itself.
    #[id = "pitch"]
    pub pitch: FloatParam,

    /// Formant (vocal-tract) ratio ([`limits::FORMANT_RATIO`]).
    #[id = "formant"]
    pub formant: FloatParam,

    /// How much of the voice-profile match to apply, 0..1 (shown as 0-100%).
    #[id = "amount"]
    pub amount: FloatParam,

    /// Wet/dry mix, 0..1 (shown as 0-100%). The dry signal is delayed by the latency, so the mix is aligned.
    #[id = "mix"]
    pub mix: FloatParam,

    /// Output gain, linear (shown in dB); smoothed per sample.
    #[id = "gain"]
    pub gain: FloatParam,

    /// Bypass: the latency-aligned dry signal, so toggling never shifts the track in time.
    #[id = "bypass"]
    pub bypass: BoolParam,

    /// Voice profile to match (a name in the voice library); empty for none. Loaded on activation.
    #[persist = "profile"]
    pub profile: RwLock<String>,

    /// The installed model (an RVC voice model or a tone colour pair, `demod-voice models list`) that its engine
    /// runs; empty for none. Loaded on activation, off the audio thread.
    #[persist = "model"]
    pub model: RwLock<String>,

    /// Factory or user preset whose real-time settings (hop, cross-fade, context, underrun) and profile apply.
    #[persist = "preset"]
    pub preset: RwLock<String>,

    /// Why the profile or preset could not be loaded the last time, for the user and support requests.
    #[persist = "status"]
    pub status: RwLock<String>,

    /// The editor window's size (logical pixels), kept with the project.
    #[persist = "editor-size"]
    pub editor_size: RwLock<(u32, u32)>,
}

impl Default for VoiceParams {
    fn default() -> Self {
        VoiceParams {
            engine: EnumParam::new("Engine", EngineChoice(Engine::default())),
            pitch: FloatParam::new(
                "Pitch",
                0.0,
                FloatRange::Linear { min: limits::PITCH_SEMITONES.min, max: limits::PITCH_SEMITONES.max },
            )
            .with_step_size(0.01)
            .with_unit(" st")
            .with_value_to_string(formatters::v2s_f32_rounded(2)),
            formant: FloatParam::new(
                "Formant",
                1.0,
                FloatRange::Skewed {
                    min: limits::FORMANT_RATIO.min,
                    max: limits::FORMANT_RATIO.max,
                    factor: FloatRange::skew_factor(-1.0),
                },
            )
            .with_value_to_string(formatters::v2s_f32_rounded(3)),
            amount: FloatParam::new(
                "Profile Match",
                1.0,
                FloatRange::Linear { min: limits::PROFILE_AMOUNT.min, max: limits::PROFILE_AMOUNT.max },
            )
            .with_unit("%")
            .with_value_to_string(formatters::v2s_f32_percentage(0))
            .with_string_to_value(formatters::s2v_f32_percentage()),
            mix: FloatParam::new("Mix", 1.0, FloatRange::Linear { min: limits::MIX.min, max: limits::MIX.max })
                .with_unit("%")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            gain: FloatParam::new(
                "Output Gain",
                util::db_to_gain(0.0),
                FloatRange::Skewed {
                    min: util::db_to_gain(-36.0),
                    max: util::db_to_gain(12.0),
                    factor: FloatRange::gain_skew_factor(-36.0, 12.0),
                },
            )
            .with_smoother(SmoothingStyle::Logarithmic(30.0))
            .with_unit(" dB")
            .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
            .with_string_to_value(formatters::s2v_f32_gain_to_db()),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            profile: RwLock::new(String::new()),
            model: RwLock::new(String::new()),
            preset: RwLock::new(String::new()),
            status: RwLock::new(String::new()),
            editor_size: RwLock::new(crate::editor::DEFAULT_SIZE),
        }
    }
}
