//! Offline matching toward a voice: what every path with the whole clip at hand does (`clone`, `convert --to`,
//! speech with a profile, batch rows, the app's Save), as opposed to the live converter, which must guess the input's
//! median as it goes.
//!
//! The clip is analysed whole by the [`crate::vocoder`]; its median F0 is moved onto the goal's (correction passes
//! land it within a fraction of a semitone whatever the clip's length), its log-F0 excursions scaled toward the
//! goal's spread, its envelope's frequency axis scaled (the vocal tract), its long-term spectrum equalised
//! toward the goal's, and its breathiness moved toward the goal's where both recordings tell it. With a fit ([`crate::clone::CloneFit`], made against the speaker encoder for one base voice)
//! the fitted scale, spread and equaliser apply; without one they are measured from the clip and the goal.
//! The result is levelled to the input's loudness and never clips.

use crate::analysis::envelope::{absolute_scale, EnvelopeAnalyzer};
use crate::clone::{
    apply_equaliser, breath_change, equaliser, long_term_spectrum, measurable_breathiness, pitch_stats, CloneFit,
};
use crate::error::Result;
use crate::presets::ConverterSettings;
use crate::profile::VoiceProfile;
use crate::vocoder::{Analysis, Breathiness};

/// A converted clip's median pitch within this many semitones of the aim needs no correction.
const MEDIAN_TOLERANCE_ST: f32 = 0.25;
/// Renders after the first that may correct a missed median.
const MAX_CORRECTIONS: usize = 2;
/// How far the vocal-tract scale may follow the pitch: up to the pitch ratio to this power (1.8 -> 1.27).
const FORMANT_REACH: f32 = 0.4;
/// The vocal-tract scale may always move this far in the pitch's direction.
const MIN_FORMANT_REACH: f32 = 1.1;
/// The spread of the pitch is scaled by at most this much either way.
pub(crate) const SPREAD_LIMITS: (f32, f32) = (0.7, 1.3);
/// The highest sample a matched clip may reach after levelling.
const PEAK_CEILING: f64 = 0.98;

/// The voice matched toward.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// Median F0, Hz.
    pub median_hz: f32,
    /// Standard deviation of ln F0, when known.
    pub log_std: Option<f32>,
    /// Absolute formant scale ([`crate::analysis::envelope::absolute_scale`]), when known.
    pub formant_scale: Option<f32>,
    /// Long-term spectrum (dB per band) and the highest frequency it tells, when known.
    pub spectrum: Option<(Vec<f32>, f32)>,
    /// Breathiness, when the goal's recordings were clean enough to tell it.
    pub breath_db: Option<Breathiness>,
    /// How `median_hz` was measured: the output's median is landed by the same measure.
    pub median_of: MedianMeasure,
}

/// How a voice's median pitch is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MedianMeasure {
    /// The median of every voiced frame's pitch, as a voice profile's median is measured (and as people measure).
    EveryFrame,
    /// The centre of the frames' pitches folded into one octave around their median ([`pitch_stats`]): octave
    /// errors of the tracker do not pull it; a clone's reference is measured so.
    Folded,
}

impl Goal {
    /// What a voice profile says of its voice (older profiles know only the median and the formant scale).
    pub fn of_profile(profile: &VoiceProfile) -> Goal {
        Goal {
            median_hz: profile.median_f0_hz,
            log_std: profile.timbre.as_ref().map(|t| t.f0_log_std),
            formant_scale: Some(profile.formant_scale),
            spectrum: profile.timbre.as_ref().map(|t| (t.spectrum_db.clone(), t.top_hz)),
            breath_db: profile.timbre.as_ref().and_then(|t| t.breath_db),
            median_of: MedianMeasure::EveryFrame,
        }
    }
}

/// The user's adjustments on top of the match: how much of it, and a pitch and formant change after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adjust {
    /// How much of the match applies, 0..1 (pitch, spread, vocal tract and equaliser alike).
    pub amount: f32,
    /// Semitones added after matching.
    pub semitones: f32,
    /// Formant ratio applied after matching.
    pub formant: f32,
}

impl Adjust {
    /// The whole match, nothing added.
    pub const FULL: Adjust = Adjust { amount: 1.0, semitones: 0.0, formant: 1.0 };

    /// What converter settings ask for.
    pub fn of(settings: &ConverterSettings) -> Adjust {
        Adjust {
            amount: settings.profile_amount.clamp(0.0, 1.0),
            semitones: settings.pitch_semitones,
            formant: settings.formant_ratio,
        }
    }
}

/// Offline matching toward a goal, with a fit when one was made for the speaking voice.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineMatch {
    /// The voice matched toward.
    pub goal: Goal,
    /// Fitted settings for the input's voice, if the input is a base voice that was fitted.
    pub fit: Option<CloneFit>,
}

impl OfflineMatch {
    /// Convert `samples` (at `rate`) toward the goal. Allocates (offline use).
    pub fn convert(&self, samples: &[f32], rate: u32, adjust: &Adjust) -> Result<Vec<f32>> {
        let mut analysis = Analysis::of(samples, rate)?;
        let amount = adjust.amount.clamp(0.0, 1.0);
        let breath = match (&self.fit, &self.goal.breath_db) {
            (Some(fit), _) => fit.breath_db,
            (None, Some(goal)) => measurable_breathiness(samples, rate, &analysis, rate as f32 / 2.0)
                .map(|source| breath_change(&source, goal))
                .unwrap_or_default(),
            (None, None) => [0.0; 4],
        };
        analysis.breathe(&breath.map(|db| db * amount));
        let shift = 2f32.powf(adjust.semitones / 12.0);
        // Pitch: (source median, aim, spread), when anything is voiced.
        let pitch = pitch_stats(samples, rate).map(|source| {
            let aim = source.median_hz * (self.goal.median_hz / source.median_hz).powf(amount) * shift;
            let spread = match (&self.fit, self.goal.log_std) {
                (Some(fit), _) => fit.f0_spread,
                (None, Some(log_std)) => (log_std / source.log_std).clamp(SPREAD_LIMITS.0, SPREAD_LIMITS.1),
                (None, None) => 1.0,
            };
            (source.median_hz, aim, spread.powf(amount))
        });
        let pitch_ratio = pitch.map_or(1.0, |(source, _, _)| self.goal.median_hz / source);
        let natural = match &self.fit {
            Some(fit) => fit.formant_ratio,
            None => self.measured_formant_ratio(samples, rate, pitch_ratio),
        };
        let formant_ratio = natural.powf(amount) * adjust.formant;
        let render = |aim: Option<f32>| -> Result<Vec<f32>> {
            let mut moved = analysis.clone();
            if let (Some((source, _, spread)), Some(aim)) = (pitch, aim) {
                moved.map_pitch(source, aim, spread);
            }
            moved.warp(formant_ratio);
            moved.synthesise()
        };
        let aim = pitch.map(|(_, aim, _)| aim);
        let first = render(aim)?;
        let eq_db: Vec<f32> = match (&self.fit, &self.goal.spectrum) {
            (Some(fit), _) => fit.eq_db.clone(),
            (None, Some((goal, top_hz))) => match long_term_spectrum(&first, rate)? {
                Some((spectrum, _)) => equaliser(&spectrum, goal, *top_hz),
                None => Vec::new(),
            },
            (None, None) => Vec::new(),
        };
        let eq_db: Vec<f32> = eq_db.iter().map(|db| db * amount).collect();
        let equalise = |x: Vec<f32>| if eq_db.is_empty() { x } else { apply_equaliser(&x, rate, &eq_db) };
        let mut output = equalise(first);
        // The heard median (measured as the goal's was) can miss the commanded one: the spread moves creaky frames
        // out of the tracker's range, the equaliser changes which period it prefers, a short clip has few frames. Up
        // to [`MAX_CORRECTIONS`] renders, each aimed by the last miss, land it; the closest is kept.
        if let Some(aim) = aim {
            let measure = self.goal.median_of;
            let miss = |x: &[f32]| heard_median(x, rate, measure).map(|landed| 12.0 * (landed / aim).log2());
            let mut best = miss(&output);
            let mut command = aim;
            for _ in 0..MAX_CORRECTIONS {
                let Some(missed) = best.filter(|m| m.abs() >= MEDIAN_TOLERANCE_ST) else { break };
                command *= 2f32.powf(-missed / 12.0);
                let retry = equalise(render(Some(command))?);
                match miss(&retry) {
                    Some(now) if now.abs() < missed.abs() => {
                        output = retry;
                        best = Some(now);
                    }
                    _ => break,
                }
            }
        }
        match_level(&mut output, samples);
        Ok(output)
    }

    /// The vocal-tract scale from the goal's absolute formant scale over the clip's, kept within what the pitch
    /// change makes plausible ([`formant_reach`]); 1 when either is unknown.
    fn measured_formant_ratio(&self, samples: &[f32], rate: u32, pitch_ratio: f32) -> f32 {
        let Some(goal) = self.goal.formant_scale else { return 1.0 };
        let mut analyzer = EnvelopeAnalyzer::new(rate);
        analyzer.add_signal(samples);
        let Some(scale) = analyzer.envelope().and_then(|env| absolute_scale(&env)) else { return 1.0 };
        let (low, high) = formant_reach(pitch_ratio);
        (goal / scale).clamp(low, high)
    }
}

/// The median pitch of the voiced 5 ms frames of `samples` by `measure`; `None` under 0.3 s voiced.
fn heard_median(samples: &[f32], rate: u32, measure: MedianMeasure) -> Option<f32> {
    match measure {
        MedianMeasure::Folded => pitch_stats(samples, rate).map(|p| p.median_hz),
        MedianMeasure::EveryFrame => {
            let mut voiced = crate::clone::voiced_f0s(samples, rate);
            if voiced.len() < crate::clone::MIN_VOICED_FRAMES {
                return None;
            }
            voiced.sort_by(f32::total_cmp);
            Some(voiced[voiced.len() / 2])
        }
    }
}

/// The vocal-tract scales plausible for a pitch change of `pitch_ratio`: the tract moves the way the pitch does (a
/// higher voice has a shorter tract) and by much less, between 1 and the pitch ratio to the power [`FORMANT_REACH`],
/// and at least [`MIN_FORMANT_REACH`] either way. Scales beyond can please a speaker encoder while muffling the
/// words (a male reference of the base voice's pitch fitted 1.35, and the recogniser lost a third of the words).
pub fn formant_reach(pitch_ratio: f32) -> (f32, f32) {
    let reach = pitch_ratio.max(1e-3).powf(FORMANT_REACH);
    if pitch_ratio >= 1.0 {
        (1.0, reach.max(MIN_FORMANT_REACH))
    } else {
        (reach.min(1.0 / MIN_FORMANT_REACH), 1.0)
    }
}

/// Scale `output` to the loudness (RMS) of `source`, and further down if that would clip: the equaliser and the
/// resynthesis change the level, and a clipped clip is heard as distortion (and mis-tracked as pitch).
pub fn match_level(output: &mut [f32], source: &[f32]) {
    let rms = |x: &[f32]| (x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / x.len().max(1) as f64).sqrt();
    let (want, have) = (rms(source), rms(output));
    if have <= 1e-9 {
        return;
    }
    let peak = output.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let gain = (want / have).min(PEAK_CEILING / f64::from(peak).max(1e-9)) as f32;
    output.iter_mut().for_each(|v| *v *= gain);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::synthetic;

    #[test]
    fn levelling_matches_the_source_and_never_clips() {
        let source = crate::analysis::synthetic::sine(200.0, 16_000, 0.5, 0.3);
        let mut louder: Vec<f32> = source.iter().map(|v| v * 3.0).collect();
        match_level(&mut louder, &source);
        assert!(louder.iter().zip(&source).all(|(a, b)| (a - b).abs() < 1e-4));
        let loud_source: Vec<f32> = source.iter().map(|v| v * 3.2).collect(); // peaks near 0.96
        let mut spiky = loud_source.clone();
        spiky[100] = 5.0;
        match_level(&mut spiky, &loud_source);
        assert!(spiky.iter().all(|v| v.abs() <= 0.98 + 1e-6));
    }

    #[test]
    fn the_vocal_tract_follows_the_pitch_by_less_than_the_pitch_moves() {
        // Same pitch: up to a tenth, in the pitch's direction only.
        assert_eq!(formant_reach(1.02), (1.0, 1.1));
        // Male to female (1.8): up to about 1.27, never down.
        let (low, high) = formant_reach(1.8);
        assert!(low == 1.0 && (high - 1.265).abs() < 0.01, "{high}");
        // Down an octave: as far as 0.76.
        let (low, high) = formant_reach(0.5);
        assert!((low - 0.758).abs() < 0.01 && high == 1.0, "{low}");
    }

    #[test]
    fn a_short_clip_lands_on_the_goals_median_whatever_its_own() {
        let rate = 22_050;
        // One second of a 110 Hz voice toward a 220 Hz goal: the whole clip is analysed, so it lands.
        let input = synthetic::voice(110.0, &[700.0, 1200.0, 2600.0], rate, 1.0);
        let matched = OfflineMatch {
            goal: Goal {
                median_hz: 220.0,
                log_std: None,
                formant_scale: None,
                spectrum: None,
                breath_db: None,
                median_of: MedianMeasure::Folded,
            },
            fit: None,
        };
        let output = matched.convert(&input, rate, &Adjust::FULL).unwrap();
        let landed = pitch_stats(&output, rate).unwrap().median_hz;
        assert!((12.0 * (landed / 220.0).log2()).abs() < 0.5, "landed on {landed} Hz");
        // Half the match, then a fifth up: 110 * sqrt(2) * 1.5.
        let half = Adjust { amount: 0.5, semitones: 7.0, formant: 1.0 };
        let output = matched.convert(&input, rate, &half).unwrap();
        let landed = pitch_stats(&output, rate).unwrap().median_hz;
        let want = 110.0 * 2f32.sqrt() * 2f32.powf(7.0 / 12.0);
        assert!((12.0 * (landed / want).log2()).abs() < 0.5, "landed on {landed} Hz, wanted {want}");
    }
}
