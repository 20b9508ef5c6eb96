//! Spectral envelopes and formant (vocal-tract length) scale.
//!
//! Each analysed frame gets an LPC (all-pole) envelope, which follows the formants rather than the harmonics;
//! log-envelopes are averaged on a log-frequency grid.
//! A formant scale between two envelopes is the shift along log frequency that best aligns them (normalised
//! cross-correlation, refined by parabolic interpolation): scaling a vocal tract by 1/r moves every formant by r.
//! The absolute scale of a voice is its shift against a neutral uniform-tube envelope (formants at 500, 1500,
//! 2500, 3500 Hz), so `target.scale / input.scale` is the ratio that makes one sound like the other.

/// The log-frequency grid: `BINS` bins from `LOW_HZ` to `HIGH_HZ`.
pub const LOW_HZ: f32 = 200.0;
/// Highest frequency the envelope covers, Hz.
pub const HIGH_HZ: f32 = 5000.0;
/// Frequency bins of an envelope (log-spaced up to [`HIGH_HZ`]).
pub const BINS: usize = 400;
/// Largest formant shift searched, as a ratio (both ways).
pub const MAX_SHIFT: f32 = 1.8;

fn octaves_per_bin() -> f32 {
    (HIGH_HZ / LOW_HZ).log2() / (BINS - 1) as f32
}

/// Centre frequency of grid bin `idx`.
pub fn bin_hz(idx: usize) -> f32 {
    LOW_HZ * 2f32.powf(idx as f32 * octaves_per_bin())
}

/// Averages the LPC log-envelopes of frames.
pub struct EnvelopeAnalyzer {
    /// Frame length at the analysis rate.
    frame_len: usize,
    /// Input rate / analysis rate.
    decimation: usize,
    lowpass: Vec<f32>,
    order: usize,
    window: Vec<f32>,
    buf: Vec<f32>,
    autocorr: Vec<f64>,
    lpc: Vec<f64>,
    scratch: Vec<f64>,
    /// cos/sin of each grid bin's angular frequency, for evaluating A(e^jw).
    grid: Vec<(f64, f64)>,
    sum: Vec<f64>,
    frames: usize,
}

impl std::fmt::Debug for EnvelopeAnalyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeAnalyzer").field("frames", &self.frames).finish()
    }
}

impl EnvelopeAnalyzer {
    /// An analyser for audio at `sample_rate_hz`.
    pub fn new(sample_rate_hz: u32) -> EnvelopeAnalyzer {
        // Analyse at about 11-16 kHz whatever the input rate, so the poles are spent below 5-8 kHz where
        // formants are, not on the top octaves (or on a resampler's cut-off).
        let decimation = (sample_rate_hz / 11_025).max(1) as usize;
        let rate = sample_rate_hz as f32 / decimation as f32;
        // 30 ms frames. LPC order 2 + rate/1000, the usual rule for formant analysis.
        let frame_len = (rate * 0.03) as usize;
        let order = 2 + (rate as usize / 1000).min(48);
        let window = crate::analysis::periodic_hann(frame_len);
        let grid = (0..BINS)
            .map(|idx| {
                let w = 2.0 * std::f64::consts::PI * f64::from(bin_hz(idx)) / f64::from(rate);
                (w.cos(), w.sin())
            })
            .collect();
        // Windowed-sinc low-pass at 0.45 of the analysis rate, for the decimation.
        let taps = if decimation > 1 { 8 * decimation + 1 } else { 1 };
        let cutoff = 0.45 / decimation as f32;
        let lowpass: Vec<f32> = (0..taps)
            .map(|i| {
                if taps == 1 {
                    return 1.0;
                }
                let m = i as f32 - (taps - 1) as f32 / 2.0;
                let sinc = if m == 0.0 {
                    2.0 * cutoff
                } else {
                    (2.0 * std::f32::consts::PI * cutoff * m).sin() / (std::f32::consts::PI * m)
                };
                let hann = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (taps - 1) as f32).cos();
                sinc * hann
            })
            .collect();
        EnvelopeAnalyzer {
            frame_len,
            decimation,
            lowpass,
            order,
            window,
            buf: vec![0.0; frame_len],
            autocorr: vec![0.0; order + 1],
            lpc: vec![0.0; order + 1],
            scratch: vec![0.0; order + 1],
            grid,
            sum: vec![0.0; BINS],
            frames: 0,
        }
    }

    /// Input samples per analysed frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len * self.decimation + self.lowpass.len()
    }

    /// Add every frame of `signal`, half-overlapping (the long-term envelope of a whole clip).
    pub fn add_signal(&mut self, signal: &[f32]) {
        let len = self.frame_len();
        let mut end = len;
        while end <= signal.len() {
            self.add_frame(&signal[end - len..end]);
            end += len / 2;
        }
    }

    /// Add one frame (the last `frame_len` samples of `frame`). Silent frames are ignored.
    pub fn add_frame(&mut self, frame: &[f32]) {
        let n = self.frame_len;
        let frame = &frame[frame.len().saturating_sub(self.frame_len())..];
        let taps = self.lowpass.len();
        // Pre-emphasis flattens the glottal tilt so the LPC poles follow the formants.
        let mut prev = 0.0f32;
        for i in 0..n {
            let at = i * self.decimation;
            let x: f32 = if taps == 1 {
                frame.get(at).copied().unwrap_or(0.0)
            } else {
                self.lowpass.iter().enumerate().map(|(k, h)| h * frame.get(at + k).copied().unwrap_or(0.0)).sum()
            };
            self.buf[i] = (x - 0.97 * prev) * self.window[i];
            prev = x;
        }
        for lag in 0..=self.order {
            self.autocorr[lag] = (lag..n).map(|i| f64::from(self.buf[i]) * f64::from(self.buf[i - lag])).sum();
        }
        if self.autocorr[0] < 1e-9 {
            return;
        }
        // Levinson-Durbin, with slight lag windowing for numerical safety.
        self.autocorr[0] *= 1.0 + 1e-6;
        self.lpc.iter_mut().for_each(|a| *a = 0.0);
        self.lpc[0] = 1.0;
        let mut error = self.autocorr[0];
        for i in 1..=self.order {
            let mut acc = self.autocorr[i];
            for j in 1..i {
                acc += self.lpc[j] * self.autocorr[i - j];
            }
            let k = -acc / error;
            self.scratch[..=i].copy_from_slice(&self.lpc[..=i]);
            for j in 1..i {
                self.lpc[j] = self.scratch[j] + k * self.scratch[i - j];
            }
            self.lpc[i] = k;
            error *= 1.0 - k * k;
            if error <= 0.0 {
                return;
            }
        }
        for (idx, &(c, s)) in self.grid.iter().enumerate() {
            // A(e^{jw}) = sum_k a_k e^{-jwk}; envelope = -ln|A|.
            let (mut re, mut im) = (0.0f64, 0.0f64);
            let (mut ck, mut sk) = (1.0f64, 0.0f64);
            for &a in &self.lpc {
                re += a * ck;
                im -= a * sk;
                let next_c = ck * c - sk * s;
                sk = sk * c + ck * s;
                ck = next_c;
            }
            self.sum[idx] += -0.5 * (re * re + im * im).max(1e-20).ln();
        }
        self.frames += 1;
    }

    /// Frames added so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// The average log-envelope on the grid (`None` before any frame).
    pub fn envelope(&self) -> Option<Vec<f32>> {
        (self.frames > 0).then(|| self.sum.iter().map(|s| (*s / self.frames as f64) as f32).collect())
    }

    /// Weigh past frames down to `factor` of their count, so an analyser that keeps running follows recent input.
    pub fn decay(&mut self, factor: f64) {
        if self.frames == 0 {
            return;
        }
        let keep = ((self.frames as f64 * factor).round() as usize).max(1);
        let scale = keep as f64 / self.frames as f64;
        self.sum.iter_mut().for_each(|s| *s *= scale);
        self.frames = keep;
    }

    /// Start over.
    pub fn clear(&mut self) {
        self.sum.iter_mut().for_each(|s| *s = 0.0);
        self.frames = 0;
    }
}

/// The ratio `r` for which `b(f) ≈ a(f / r)`: how much higher b's formants sit than a's.
pub fn formant_shift(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != BINS || b.len() != BINS {
        return None;
    }
    // Compare slopes along log frequency: peaks and valleys count, the source's overall tilt and level do not.
    let (a, b) = (slope(a), slope(b));
    let step = octaves_per_bin();
    let max_shift = (MAX_SHIFT.log2() / step).round() as i64;
    let score = |k: i64| -> f32 {
        // Compare a[i] with b[i + k] over the overlap, mean-removed (overall level does not matter).
        let (start, end) = (0.max(-k) as usize, (BINS as i64).min(BINS as i64 - k) as usize);
        if end <= start + BINS / 3 {
            return -1.0;
        }
        let xs = &a[start..end];
        let ys: Vec<f32> = (start..end).map(|i| b[(i as i64 + k) as usize]).collect();
        let mx = xs.iter().sum::<f32>() / xs.len() as f32;
        let my = ys.iter().sum::<f32>() / ys.len() as f32;
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (x, y) in xs.iter().zip(&ys) {
            sxy += (x - mx) * (y - my);
            sxx += (x - mx) * (x - mx);
            syy += (y - my) * (y - my);
        }
        if sxx <= 0.0 || syy <= 0.0 {
            -1.0
        } else {
            sxy / (sxx * syy).sqrt()
        }
    };
    let scores: Vec<(i64, f32)> = (-max_shift..=max_shift).map(|k| (k, score(k))).collect();
    let (best_k, best) = scores.iter().copied().max_by(|x, y| x.1.total_cmp(&y.1))?;
    if best <= 0.0 {
        return None;
    }
    let at = |k: i64| scores.iter().find(|(kk, _)| *kk == k).map(|(_, s)| *s);
    let offset = match (at(best_k - 1), at(best_k + 1)) {
        (Some(l), Some(r)) => {
            let denom = l - 2.0 * best + r;
            if denom.abs() > 1e-9 {
                0.5 * (l - r) / denom
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    // b[i + k] matches a[i]: b's features sit k bins above a's.
    Some(2f32.powf((best_k as f32 + offset) * step))
}

fn slope(values: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(values.len());
    out.push(0.0);
    out.extend(values.windows(2).map(|w| w[1] - w[0]));
    out
}

/// Envelope of a neutral 17.5 cm uniform tube (formants at 500, 1500, 2500, 3500 Hz): the reference for an
/// absolute formant scale.
pub fn reference_envelope() -> Vec<f32> {
    let formants = [(500.0f32, 80.0f32), (1500.0, 100.0), (2500.0, 120.0), (3500.0, 150.0)];
    (0..BINS)
        .map(|idx| {
            let f = bin_hz(idx);
            let power: f32 = formants
                .iter()
                .map(|(fc, bw)| {
                    let x = (f - fc) / (bw / 2.0);
                    1.0 / (1.0 + x * x)
                })
                .sum();
            // A gentle spectral tilt, as voiced speech has.
            (power + 1e-3).ln() * 0.5 - 0.3 * (f / 1000.0).ln()
        })
        .collect()
}

/// A voice's absolute formant scale (1.0 = the neutral tube; higher = shorter vocal tract).
pub fn absolute_scale(envelope: &[f32]) -> Option<f32> {
    formant_shift(&reference_envelope(), envelope)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn synthetic_vowel(f0: f32, formants: &[f32], rate: u32, seconds: f32) -> Vec<f32> {
        crate::analysis::synthetic::voice(f0, formants, rate, seconds)
    }

    fn envelope_of(signal: &[f32], rate: u32) -> Vec<f32> {
        let mut analyzer = EnvelopeAnalyzer::new(rate);
        analyzer.add_signal(signal);
        analyzer.envelope().unwrap()
    }

    #[test]
    fn formant_shift_between_scaled_vowels_is_recovered() {
        let rate = 24_000;
        let base = [700.0, 1200.0, 2500.0, 3500.0];
        let a = envelope_of(&synthetic_vowel(130.0, &base, rate, 1.0), rate);
        for ratio in [0.85f32, 1.0, 1.15, 1.3] {
            let scaled: Vec<f32> = base.iter().map(|f| f * ratio).collect();
            // A different pitch too: the envelope must not follow the harmonics.
            let b = envelope_of(&synthetic_vowel(210.0, &scaled, rate, 1.0), rate);
            let shift = formant_shift(&a, &b).unwrap();
            // LPC on a 210 Hz voice with a low F1 is the hard case (about 4% off); same-pitch pairs are within 2%.
            assert!((shift / ratio - 1.0).abs() < 0.05, "ratio {ratio}: estimated {shift}");
        }
    }
}
