//! YIN pitch estimation (de Cheveigné and Kawahara, 2002): difference function, cumulative-mean normalisation,
//! absolute threshold, parabolic interpolation. Frames are causal: a frame ending at `t` uses `t - len .. t`.

/// Lowest and highest pitch searched, Hz. 55 Hz covers very deep voices; 1000 Hz covers sung soprano notes.
pub const F0_MIN: f32 = 55.0;
/// Highest pitch tracked, Hz.
pub const F0_MAX: f32 = 1000.0;

/// A frame's verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PitchEstimate {
    /// Fundamental frequency, Hz; `None` for unvoiced or silent frames.
    pub f0: Option<f32>,
    /// YIN's normalised difference at the chosen lag (0 = perfectly periodic).
    pub aperiodicity: f32,
    /// RMS level of the frame.
    pub rms: f32,
}

/// How much shallower than the deepest dip an earlier dip may be and still be taken as the period.
const OCTAVE_MARGIN: f32 = 0.1;

/// A reusable YIN estimator for one sample rate (allocates once).
#[derive(Debug, Clone)]
pub struct Yin {
    sample_rate: f32,
    tau_min: usize,
    tau_max: usize,
    window: usize,
    threshold: f32,
    /// Frames quieter than this RMS are silent.
    silence_rms: f32,
    /// Frames whose normalised difference at the chosen lag is above this are unvoiced.
    voicing_limit: f32,
    diff: Vec<f32>,
}

impl Yin {
    /// `fmin`/`fmax` bound the search; the integration window is one longest period.
    pub fn new(sample_rate_hz: u32, fmin: f32, fmax: f32) -> Yin {
        let rate = sample_rate_hz as f32;
        let tau_max = (rate / fmin).ceil() as usize;
        let tau_min = ((rate / fmax).floor() as usize).max(2);
        Yin {
            sample_rate: rate,
            tau_min,
            tau_max,
            window: tau_max,
            threshold: 0.15,
            silence_rms: 10f32.powf(-50.0 / 20.0),
            voicing_limit: 0.35,
            diff: vec![0.0; tau_max + 2],
        }
    }

    /// Frames above this aperiodicity (YIN's normalised difference, default 0.35) are unvoiced.
    pub fn set_voicing_limit(&mut self, limit: f32) {
        self.voicing_limit = limit;
    }

    /// Samples one frame needs.
    pub fn frame_len(&self) -> usize {
        self.window + self.tau_max + 1
    }

    /// Longest period searched, in samples.
    pub fn max_period(&self) -> usize {
        self.tau_max
    }

    /// Estimate the pitch of `frame` (at least [`Yin::frame_len`] samples; the last ones are used).
    pub fn estimate(&mut self, frame: &[f32]) -> PitchEstimate {
        let need = self.frame_len();
        let frame = &frame[frame.len().saturating_sub(need)..];
        let w = self.window.min(frame.len().saturating_sub(self.tau_max + 1));
        let rms = (frame.iter().map(|x| x * x).sum::<f32>() / frame.len().max(1) as f32).sqrt();
        if w < self.tau_min || rms < self.silence_rms {
            return PitchEstimate { f0: None, aperiodicity: 1.0, rms };
        }
        // Difference function d(tau) = sum_j (x_j - x_{j+tau})^2.
        let tau_max = self.tau_max;
        for tau in 1..=tau_max {
            let mut sum = 0.0f32;
            for j in 0..w {
                let d = frame[j] - frame[j + tau];
                sum += d * d;
            }
            self.diff[tau] = sum;
        }
        // Cumulative mean normalised difference, in place.
        self.diff[0] = 1.0;
        let mut running = 0.0f32;
        for tau in 1..=tau_max {
            running += self.diff[tau];
            self.diff[tau] = if running > 0.0 { self.diff[tau] * tau as f32 / running } else { 1.0 };
        }
        // First dip under the threshold (then its local minimum), else the global minimum.
        let mut chosen = None;
        let mut tau = self.tau_min;
        while tau < tau_max {
            if self.diff[tau] < self.threshold {
                while tau + 1 < tau_max && self.diff[tau + 1] < self.diff[tau] {
                    tau += 1;
                }
                chosen = Some(tau);
                break;
            }
            tau += 1;
        }
        // No dip under the threshold: the first local minimum nearly as deep as the deepest. Taking the deepest
        // itself goes an octave low on voices whose cycles alternate (a doubled period matches a little better).
        let tau = chosen.unwrap_or_else(|| {
            let deepest =
                (self.tau_min..tau_max).min_by(|&a, &b| self.diff[a].total_cmp(&self.diff[b])).unwrap_or(self.tau_min);
            let limit = self.diff[deepest] + OCTAVE_MARGIN;
            (self.tau_min.max(1)..deepest)
                .find(|&t| {
                    self.diff[t] <= limit && self.diff[t] <= self.diff[t - 1] && self.diff[t] <= self.diff[t + 1]
                })
                .unwrap_or(deepest)
        });
        let aperiodicity = self.diff[tau];
        if aperiodicity > self.voicing_limit {
            return PitchEstimate { f0: None, aperiodicity, rms };
        }
        // Parabolic interpolation around the minimum.
        let refined = if tau > 1 && tau < tau_max {
            let (a, b, c) = (self.diff[tau - 1], self.diff[tau], self.diff[tau + 1]);
            let denom = a - 2.0 * b + c;
            if denom.abs() > 1e-12 {
                tau as f32 + 0.5 * (a - c) / denom
            } else {
                tau as f32
            }
        } else {
            tau as f32
        };
        PitchEstimate { f0: Some(self.sample_rate / refined), aperiodicity, rms }
    }
}

/// Pitch every `hop` samples over a whole signal (allocates; for offline analysis).
pub fn track(samples: &[f32], sample_rate_hz: u32, hop: usize) -> Vec<PitchEstimate> {
    let mut yin = Yin::new(sample_rate_hz, F0_MIN, F0_MAX);
    let len = yin.frame_len();
    let mut out = Vec::new();
    let mut end = len;
    while end <= samples.len() {
        out.push(yin.estimate(&samples[end - len..end]));
        end += hop.max(1);
    }
    out
}

/// Median of the voiced frames' F0, Hz.
pub fn median_f0(track: &[PitchEstimate]) -> Option<f32> {
    let mut voiced: Vec<f32> = track.iter().filter_map(|p| p.f0).collect();
    if voiced.is_empty() {
        return None;
    }
    voiced.sort_by(f32::total_cmp);
    Some(voiced[voiced.len() / 2])
}

/// Cents between two frequencies.
pub fn cents(a: f32, b: f32) -> f32 {
    1200.0 * (a / b).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f0: f32, rate: u32, seconds: f32) -> Vec<f32> {
        // A few harmonics, like a voice.
        crate::analysis::synthetic::harmonic_tone(f0, 5, |h| 1.0 / h, rate, (rate as f32 * seconds) as usize, 0.3)
    }

    #[test]
    fn finds_the_pitch_of_harmonic_tones_within_a_few_cents() {
        for f0 in [82.0, 110.0, 220.0, 440.0, 880.0] {
            let track = track(&tone(f0, 24_000, 0.5), 24_000, 120);
            let median = median_f0(&track).unwrap();
            assert!(cents(median, f0).abs() < 5.0, "{f0} Hz measured as {median}");
        }
    }

    #[test]
    fn noise_and_silence_are_unvoiced() {
        let noise = crate::analysis::synthetic::noise(1, 12_000);
        assert!(track(&noise, 24_000, 120).iter().filter(|p| p.f0.is_some()).count() < 5);
        assert!(track(&[0.0; 12_000], 24_000, 120).iter().all(|p| p.f0.is_none()));
    }
}
