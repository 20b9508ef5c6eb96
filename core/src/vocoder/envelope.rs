//! The spectral envelope of one frame, independent of where the harmonics fall.
//!
//! A Hann-shaped window three pitch periods long (unit energy, its weighted mean removed) gives a power spectrum whose
//! harmonic ripple is then removed in two steps: a moving average two thirds of a harmonic spacing wide on the linear
//! power, and cepstral liftering with a sinc (one harmonic spacing) times a compensation term that restores the
//! formant peaks the averaging flattened. The components below the pitch are folded back onto themselves so that
//! the lowest harmonic is not halved.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::error::{Error, Result};

/// The compensation lifter's weight (negative: it sharpens what the smoothing blurred).
const Q1: f64 = -0.15;
/// A floor added to every power bin before logarithms.
const POWER_FLOOR: f64 = 1e-12;

/// Reusable buffers and plans for one rate and FFT length.
pub(super) struct Envelopes {
    rate: f64,
    n: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    frame: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    power: Vec<f64>,
}

impl Envelopes {
    pub(super) fn new(rate: u32, n: usize) -> Envelopes {
        let mut planner = RealFftPlanner::<f64>::new();
        let (forward, inverse) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
        Envelopes {
            rate: f64::from(rate),
            n,
            frame: forward.make_input_vec(),
            spectrum: forward.make_output_vec(),
            power: vec![0.0; n / 2 + 1],
            forward,
            inverse,
        }
    }

    /// The power envelope (`n / 2 + 1` bins) of `samples` around sample `centre`, for pitch `f0` Hz.
    pub(super) fn at(&mut self, samples: &[f32], centre: f64, f0: f32) -> Result<Vec<f32>> {
        let f0 = f64::from(f0.max(super::F0_FLOOR));
        self.windowed_power(samples, centre, f0)?;
        fold_below_pitch(&mut self.power, f0, self.rate / self.n as f64);
        let smoothed = smooth_linear(&self.power, f0 * 2.0 / 3.0, self.rate / self.n as f64);
        self.lifter(&smoothed, f0)
    }

    /// |FFT|^2 of the frame under a three-period Hann window of unit energy, its weighted mean removed.
    fn windowed_power(&mut self, samples: &[f32], centre: f64, f0: f64) -> Result<()> {
        let half = ((1.5 * self.rate / f0).round() as isize).min(self.n as isize / 2 - 1);
        let base = centre.round() as isize;
        self.frame.fill(0.0);
        let mut energy = 0.0;
        let (mut weighted, mut weight) = (0.0, 0.0);
        let window = |k: isize| 0.5 + 0.5 * (std::f64::consts::PI * k as f64 / (half + 1) as f64).cos();
        for k in -half..=half {
            let w = window(k);
            energy += w * w;
            let x = usize::try_from(base + k).ok().and_then(|i| samples.get(i)).map_or(0.0, |v| f64::from(*v));
            weighted += x * w;
            weight += w;
        }
        let norm = energy.sqrt().max(1e-12);
        let mean = weighted / weight.max(1e-12);
        for k in -half..=half {
            let w = window(k);
            let x = usize::try_from(base + k).ok().and_then(|i| samples.get(i)).map_or(0.0, |v| f64::from(*v));
            // Centred at index 0 (negative lags wrap): the phase does not matter, only the power.
            let slot = k.rem_euclid(self.n as isize) as usize;
            self.frame[slot] = (x - mean) * w / norm;
        }
        self.forward.process(&mut self.frame, &mut self.spectrum).map_err(fft_error)?;
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
        Ok(())
    }

    /// Log, to cepstrum, lifter (smoothing sinc times the compensation), back, exp.
    fn lifter(&mut self, power: &[f64], f0: f64) -> Result<Vec<f32>> {
        let mut log_spectrum: Vec<Complex<f64>> =
            power.iter().map(|p| Complex::new((p + POWER_FLOOR).ln(), 0.0)).collect();
        let mut cepstrum = self.inverse.make_output_vec();
        self.inverse.process(&mut log_spectrum, &mut cepstrum).map_err(fft_error)?;
        let n = self.n;
        for (q, c) in cepstrum.iter_mut().enumerate() {
            let quefrency = q.min(n - q) as f64 / self.rate;
            let x = std::f64::consts::PI * f0 * quefrency;
            let smoothing = if quefrency == 0.0 { 1.0 } else { x.sin() / x };
            let compensation = (1.0 - 2.0 * Q1) + 2.0 * Q1 * (2.0 * x).cos();
            *c *= smoothing * compensation / n as f64;
        }
        self.forward.process(&mut cepstrum, &mut self.spectrum).map_err(fft_error)?;
        Ok(self.spectrum.iter().map(|c| c.re.exp() as f32).collect())
    }
}

/// Add to each bin below `f0` the power mirrored about `f0 / 2`... that is, the power at `f0 - f` (interpolated):
/// the window's leakage split the lowest harmonic's energy across both sides of 0 Hz.
fn fold_below_pitch(power: &mut [f64], f0: f64, bin_hz: f64) {
    let original = power.to_vec();
    let last = original.len() - 1;
    let at = |hz: f64| {
        let pos = (hz / bin_hz).clamp(0.0, last as f64);
        let i = (pos.floor() as usize).min(last);
        let frac = pos - i as f64;
        original[i] * (1.0 - frac) + original[(i + 1).min(last)] * frac
    };
    for (k, p) in power.iter_mut().enumerate() {
        let hz = k as f64 * bin_hz;
        if hz >= f0 {
            break;
        }
        *p += at(f0 - hz);
    }
}

/// A moving average `width` Hz wide over the power spectrum, mirrored at 0 Hz and at the Nyquist frequency.
fn smooth_linear(power: &[f64], width: f64, bin_hz: f64) -> Vec<f64> {
    let bins = power.len() as isize;
    let last = bins - 1;
    let pad = (width / bin_hz).ceil() as isize + 2;
    // Mirrored extension, then a running sum: cumulative[j] = sum of extended[..j].
    let mirror = |k: isize| -> f64 {
        let mut k = k;
        while k < 0 || k > last {
            k = if k < 0 { -k } else { 2 * last - k };
        }
        power[k as usize]
    };
    let mut cumulative = Vec::with_capacity((bins + 2 * pad + 1) as usize);
    cumulative.push(0.0);
    let mut sum = 0.0;
    for k in -pad..bins + pad {
        sum += mirror(k);
        cumulative.push(sum);
    }
    // The integral of the stepwise spectrum from `hz_a` to `hz_b`, via the running sum (bins centred on k).
    let integral_to = |hz: f64| -> f64 {
        let pos = hz / bin_hz + 0.5 + pad as f64;
        let i = (pos.floor().max(0.0) as usize).min(cumulative.len() - 2);
        let frac = pos - i as f64;
        cumulative[i] + (cumulative[i + 1] - cumulative[i]) * frac
    };
    let half = width / 2.0;
    (0..bins)
        .map(|k| {
            let hz = k as f64 * bin_hz;
            (integral_to(hz + half) - integral_to(hz - half)) / (width / bin_hz)
        })
        .collect()
}

pub(super) fn fft_error(e: impl std::fmt::Display) -> Error {
    Error::Setting { key: "vocoder".into(), problem: format!("FFT failed (a bug: buffer sizes): {e}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_keeps_a_flat_spectrum_flat_and_spreads_a_spike() {
        let flat = smooth_linear(&[2.0; 100], 30.0, 10.0);
        assert!(flat.iter().all(|v| (v - 2.0).abs() < 1e-9), "{flat:?}");
        let mut spike = vec![0.0; 100];
        spike[50] = 3.0;
        let spread = smooth_linear(&spike, 30.0, 10.0);
        let total: f64 = spread.iter().sum();
        assert!((total - 3.0).abs() < 1e-6, "{total}");
        assert!(spread[50] < 3.0 && spread[49] > 0.0 && spread[51] > 0.0);
    }

    #[test]
    fn the_envelope_of_a_harmonic_tone_has_no_harmonic_ripple() {
        let rate = 16_000;
        let f0 = 200.0f32;
        // Equal harmonics: the envelope between them should stay within a few dB of the envelope on them.
        let tone = crate::analysis::synthetic::harmonic_tone(f0, 29, |_| 1.0, rate, 4000, 0.02);
        let mut envelopes = Envelopes::new(rate, 1024);
        let env = envelopes.at(&tone, 2000.0, f0).unwrap();
        let db = |k: usize| 10.0 * env[k].log10();
        let bin = |hz: f32| (hz * 1024.0 / rate as f32).round() as usize;
        let (on, between) = (db(bin(1000.0)), db(bin(1100.0)));
        assert!((on - between).abs() < 3.0, "on a harmonic {on:.1} dB, between {between:.1} dB");
    }
}
