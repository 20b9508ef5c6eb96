//! The accepted range of every number a user sets for speech or conversion, in one place.
//!
//! The command line's value parsers, the config and preset validation, the app's controls and the plugin's
//! parameters all read these, so a range is changed here and nowhere else.

/// An inclusive range of accepted values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The smallest accepted value.
    pub min: f32,
    /// The largest accepted value.
    pub max: f32,
}

impl Limit {
    const fn new(min: f32, max: f32) -> Limit {
        Limit { min, max }
    }

    /// True when `value` is finite and inside the range (NaN never is).
    pub fn contains(self, value: f32) -> bool {
        value >= self.min && value <= self.max
    }

    /// `value` moved into the range; NaN becomes the lower end.
    pub fn clamp(self, value: f32) -> f32 {
        if value.is_nan() {
            self.min
        } else {
            value.clamp(self.min, self.max)
        }
    }

    /// `Ok(value)` inside the range, else `is VALUE, expected MIN..MAX` (callers name the key).
    pub fn check(self, value: f32) -> Result<f32, String> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(format!("is {value}, expected {}..{}", self.min, self.max))
        }
    }
}

/// Pitch shift, semitones.
pub const PITCH_SEMITONES: Limit = Limit::new(-24.0, 24.0);
/// Formant (vocal-tract) ratio.
pub const FORMANT_RATIO: Limit = Limit::new(0.5, 2.0);
/// How much of a voice profile's match to apply (0 = none, 1 = all).
pub const PROFILE_AMOUNT: Limit = Limit::new(0.0, 1.0);
/// Wet/dry mix (0 = dry, 1 = converted only).
pub const MIX: Limit = Limit::new(0.0, 1.0);
/// How far a tone colour model moves toward the target tone (OpenVoice's `tau`).
pub const TAU: Limit = Limit::new(0.0, 1.0);
/// Piper's length scale (speaking slowness).
pub const LENGTH_SCALE: Limit = Limit::new(0.05, 20.0);
/// Piper's noise scale (variation in the voice).
pub const NOISE_SCALE: Limit = Limit::new(0.0, 5.0);
/// Piper's noise-w scale (variation in phoneme lengths).
pub const NOISE_W: Limit = Limit::new(0.0, 5.0);
/// Silence after each sentence, seconds.
pub const SENTENCE_SILENCE: Limit = Limit::new(0.0, 60.0);
/// Output volume (linear gain after normalisation).
pub const VOLUME: Limit = Limit::new(0.0, 10.0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_infinities_are_outside_every_range() {
        for limit in [PITCH_SEMITONES, FORMANT_RATIO, MIX, LENGTH_SCALE, VOLUME] {
            assert!(!limit.contains(f32::NAN));
            assert!(!limit.contains(f32::INFINITY));
            assert!(!limit.contains(f32::NEG_INFINITY));
            assert_eq!(limit.clamp(f32::NAN), limit.min);
        }
        assert_eq!(PITCH_SEMITONES.check(30.0), Err("is 30, expected -24..24".to_string()));
        assert_eq!(PITCH_SEMITONES.check(-24.0), Ok(-24.0));
    }
}
