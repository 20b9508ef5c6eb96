//! What the `dsp` converter is told: the target voice (from a profile) and the settings the plugin or the app edit
//! while it runs (atomics and a briefly held lock, never waited on by the worker for long).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use crate::convert::timbre::TargetSpectrum;

/// A target voice, from a profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The target's median F0, Hz.
    pub median_f0: f32,
    /// The target's formant scale (vocal-tract length relative to an average voice).
    pub formant_scale: f32,
    /// The standard deviation of the target's ln F0 (how far its intonation moves), when known: the input's
    /// excursions around its running median are scaled by the ratio of the two.
    pub f0_log_std: Option<f32>,
    /// The target's long-term spectrum, when known: the output is equalised toward it ([`super::timbre`]).
    pub spectrum: Option<TargetSpectrum>,
}

impl Target {
    /// A target known by its median pitch and formant scale only.
    pub fn new(median_f0: f32, formant_scale: f32) -> Target {
        Target { median_f0, formant_scale, f0_log_std: None, spectrum: None }
    }
}

/// Settings shared with the thread that edits them (plugin parameters, UI). Reading never blocks the worker
/// for long: scalars are atomics, the target is behind a briefly held mutex (never touched by the audio thread).
#[derive(Debug)]
pub struct DspParams {
    pitch_semitones: AtomicU32,
    formant_ratio: AtomicU32,
    profile_amount: AtomicU32,
    target: Mutex<Option<Target>>,
}

impl Default for DspParams {
    fn default() -> Self {
        DspParams {
            pitch_semitones: AtomicU32::new(0.0f32.to_bits()),
            formant_ratio: AtomicU32::new(1.0f32.to_bits()),
            profile_amount: AtomicU32::new(1.0f32.to_bits()),
            target: Mutex::new(None),
        }
    }
}

impl DspParams {
    /// Pitch shift in semitones (clamped to [`crate::limits::PITCH_SEMITONES`]).
    pub fn set_pitch_semitones(&self, semitones: f32) {
        self.pitch_semitones.store(crate::limits::PITCH_SEMITONES.clamp(semitones).to_bits(), Ordering::Relaxed);
    }
    /// The pitch shift, semitones.
    pub fn pitch_semitones(&self) -> f32 {
        f32::from_bits(self.pitch_semitones.load(Ordering::Relaxed))
    }
    /// Formant ratio (clamped to [`crate::limits::FORMANT_RATIO`]).
    pub fn set_formant_ratio(&self, ratio: f32) {
        self.formant_ratio.store(crate::limits::FORMANT_RATIO.clamp(ratio).to_bits(), Ordering::Relaxed);
    }
    /// The formant ratio.
    pub fn formant_ratio(&self) -> f32 {
        f32::from_bits(self.formant_ratio.load(Ordering::Relaxed))
    }
    /// How much of the profile match to apply, 0..1.
    pub fn set_profile_amount(&self, amount: f32) {
        self.profile_amount.store(crate::limits::PROFILE_AMOUNT.clamp(amount).to_bits(), Ordering::Relaxed);
    }
    /// How much of the profile match applies, 0..1.
    pub fn profile_amount(&self) -> f32 {
        f32::from_bits(self.profile_amount.load(Ordering::Relaxed))
    }
    /// The voice profile to match, or none.
    pub fn set_target(&self, target: Option<Target>) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = target;
    }
    /// The voice profile being matched, if any.
    pub fn target(&self) -> Option<Target> {
        *self.target.lock().unwrap_or_else(|p| p.into_inner())
    }
}
