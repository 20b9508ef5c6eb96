//! The plugin's parameters and persisted state. Ids are short and stable so fields can be renamed freely.

use std::sync::RwLock;

use nice_plug::prelude::*;

/// Which converter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum EngineChoice {
    /// Pitch and formant matching, no model.
    #[id = "dsp"]
    #[name = "DSP"]
    Dsp,
    /// Output = input delayed by the latency (for checking delay compensation).
    #[id = "passthrough"]
    #[name = "Passthrough"]
    Passthrough,
}

#[derive(Params)]
pub struct VoiceParams {
    /// Conversion engine (switching is seamless: all engines share one latency).
    #[id = "engine"]
    pub engine: EnumParam<EngineChoice>,

    /// Pitch shift, semitones (-24..24). Read by the worker each hop, which smooths ratio changes itself.
    #[id = "pitch"]
    pub pitch: FloatParam,

    /// Formant (vocal-tract) ratio, 0.5..2.0.
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

    /// Factory or user preset whose real-time settings (hop, cross-fade, context, underrun) and profile apply.
    #[persist = "preset"]
    pub preset: RwLock<String>,

    /// Why the profile or preset could not be loaded the last time, for the user and support requests.
    #[persist = "status"]
    pub status: RwLock<String>,
}

impl Default for VoiceParams {
    fn default() -> Self {
        VoiceParams {
            engine: EnumParam::new("Engine", EngineChoice::Dsp),
            pitch: FloatParam::new("Pitch", 0.0, FloatRange::Linear { min: -24.0, max: 24.0 })
                .with_step_size(0.01)
                .with_unit(" st")
                .with_value_to_string(formatters::v2s_f32_rounded(2)),
            formant: FloatParam::new(
                "Formant",
                1.0,
                FloatRange::Skewed { min: 0.5, max: 2.0, factor: FloatRange::skew_factor(-1.0) },
            )
            .with_value_to_string(formatters::v2s_f32_rounded(3)),
            amount: FloatParam::new("Profile Match", 1.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_unit("%")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            mix: FloatParam::new("Mix", 1.0, FloatRange::Linear { min: 0.0, max: 1.0 })
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
            preset: RwLock::new(String::new()),
            status: RwLock::new(String::new()),
        }
    }
}
