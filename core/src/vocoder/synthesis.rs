//! Putting speech back together: one pulse per pitch period (a few hundred a second of noise pulses where nothing
//! is voiced); at each, the minimum-phase response of the periodic part of the envelope, plus a period of white
//! noise through the minimum-phase filter of the aperiodic part, overlap-added.
//!
//! Levels: the envelope of a frame is its power spectrum under a unit-energy window, so a harmonic of amplitude A
//! contributes about A^2 T / 4 per bin on average over one harmonic spacing (T the period in samples), and white
//! noise of variance v gives v. A periodic response whose spectrum has |H|^2 = T x envelope therefore gives harmonics of
//! amplitude A, and unit-variance noise through |G|^2 = envelope gives noise of variance v.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::envelope::fft_error;
use super::Analysis;
use crate::error::Result;

/// Noise pulses per second where nothing is voiced.
const UNVOICED_PULSE_RATE: f64 = 400.0;
/// Powers are kept above this before logarithms.
const FLOOR: f64 = 1e-30;

/// The periodic and aperiodic minimum-phase spectra of one analysis frame.
struct FrameFilters {
    index: usize,
    periodic: Vec<Complex<f64>>,
    noise: Vec<Complex<f64>>,
}

struct Synthesiser<'a> {
    analysis: &'a Analysis,
    n: usize,
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    /// The filters of the frames either side of the current pulse.
    near: [Option<FrameFilters>; 2],
    spectrum: Vec<Complex<f64>>,
    time: Vec<f64>,
    noise: Noise,
}

pub(super) fn synthesise(analysis: &Analysis, hop: usize) -> Result<Vec<f32>> {
    let mut out = vec![0.0f64; analysis.len + analysis.fft_len];
    if analysis.frames() == 0 || analysis.len == 0 {
        return Ok(Vec::new());
    }
    let mut planner = RealFftPlanner::<f64>::new();
    let n = analysis.fft_len;
    let (forward, inverse) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let mut synth = Synthesiser {
        analysis,
        n,
        spectrum: forward.make_output_vec(),
        time: forward.make_input_vec(),
        forward,
        inverse,
        near: [None, None],
        noise: Noise(0x9E37_79B9_7F4A_7C15),
    };
    let rate = f64::from(analysis.rate);
    let mut t = 0.0f64;
    while t < analysis.len as f64 {
        let position = t / hop as f64;
        let f0 = pitch_at(&analysis.f0, position);
        let interval = if f0 > 0.0 { rate / f64::from(f0) } else { rate / UNVOICED_PULSE_RATE };
        synth.pulse(&mut out, t, position, interval, f0 > 0.0)?;
        t += interval.max(1.0);
    }
    out.truncate(analysis.len);
    Ok(out.into_iter().map(|v| v as f32).collect())
}

/// The pitch at fractional frame `position`: log-interpolated between two voiced frames, the nearer frame's
/// otherwise (0 = unvoiced).
fn pitch_at(f0: &[f32], position: f64) -> f32 {
    let last = f0.len() - 1;
    let i = (position.floor() as usize).min(last);
    let j = (i + 1).min(last);
    let frac = (position - i as f64).clamp(0.0, 1.0) as f32;
    match (f0[i] > 0.0, f0[j] > 0.0) {
        (true, true) => (f0[i].ln() * (1.0 - frac) + f0[j].ln() * frac).exp(),
        _ if frac < 0.5 => f0[i],
        _ => f0[j],
    }
}

impl Synthesiser<'_> {
    /// Overlap-add the pulse at sample `t` (fractional), frame `position`, lasting `interval` samples.
    fn pulse(&mut self, out: &mut [f64], t: f64, position: f64, interval: f64, voiced: bool) -> Result<()> {
        let last = self.analysis.frames() - 1;
        let i = (position.floor() as usize).min(last);
        let frac = (position - i as f64).clamp(0.0, 1.0);
        self.ensure(i, (i + 1).min(last))?;
        let (Some(a), Some(b)) = (&self.near[0], &self.near[1]) else { return Ok(()) };
        let start = t.floor() as usize;
        let shift = t - t.floor();
        let half = self.n / 2;
        if voiced {
            // Periodic: the interpolated response, delayed by the fractional part of the pulse time.
            let gain = interval.sqrt();
            for (k, s) in self.spectrum.iter_mut().enumerate() {
                let h = a.periodic[k] * (1.0 - frac) + b.periodic[k] * frac;
                let phase = -2.0 * std::f64::consts::PI * k as f64 * shift / self.n as f64;
                *s = h * Complex::from_polar(gain, phase);
            }
            self.spectrum[0] = Complex::new(0.0, 0.0);
            self.spectrum[half].im = 0.0;
            self.inverse.process(&mut self.spectrum, &mut self.time).map_err(fft_error)?;
            add(out, start, &self.time, 1.0 / self.n as f64);
        }
        // Aperiodic: a period of white noise through the noise filter.
        let length = (interval.round() as usize).clamp(1, self.n);
        self.time.fill(0.0);
        for v in &mut self.time[..length] {
            *v = self.noise.gaussian();
        }
        let mean = self.time[..length].iter().sum::<f64>() / length as f64;
        self.time[..length].iter_mut().for_each(|v| *v -= mean);
        self.forward.process(&mut self.time, &mut self.spectrum).map_err(fft_error)?;
        let (a, b) = match (&self.near[0], &self.near[1]) {
            (Some(a), Some(b)) => (a, b),
            _ => return Ok(()),
        };
        for (k, s) in self.spectrum.iter_mut().enumerate() {
            *s *= a.noise[k] * (1.0 - frac) + b.noise[k] * frac;
        }
        self.spectrum[0] = Complex::new(0.0, 0.0);
        self.spectrum[half].im = 0.0;
        self.inverse.process(&mut self.spectrum, &mut self.time).map_err(fft_error)?;
        add(out, start, &self.time, 1.0 / self.n as f64);
        Ok(())
    }

    /// Make `near` hold the filters of frames `i` and `j` (pulses move forward, so at most one is new).
    fn ensure(&mut self, i: usize, j: usize) -> Result<()> {
        for (slot, index) in [(0, i), (1, j)] {
            if self.near[slot].as_ref().is_some_and(|f| f.index == index) {
                continue;
            }
            let other = 1 - slot;
            if self.near[other].as_ref().is_some_and(|f| f.index == index) {
                self.near.swap(slot, other);
                continue;
            }
            self.near[slot] = Some(self.filters(index)?);
        }
        Ok(())
    }

    fn filters(&mut self, index: usize) -> Result<FrameFilters> {
        let envelope = &self.analysis.envelope[index];
        let aperiodicity = &self.analysis.aperiodicity[index];
        let periodic: Vec<f64> = envelope
            .iter()
            .zip(aperiodicity)
            .map(|(e, a)| 0.5 * (f64::from(*e) * (1.0 - f64::from(*a))).max(FLOOR).ln())
            .collect();
        let noise: Vec<f64> = envelope
            .iter()
            .zip(aperiodicity)
            .map(|(e, a)| 0.5 * (f64::from(*e) * f64::from(*a)).max(FLOOR).ln())
            .collect();
        Ok(FrameFilters { index, periodic: self.minimum_phase(&periodic)?, noise: self.minimum_phase(&noise)? })
    }

    /// The minimum-phase spectrum with log-amplitude `log_amplitude` (per bin), via the folded real cepstrum.
    fn minimum_phase(&mut self, log_amplitude: &[f64]) -> Result<Vec<Complex<f64>>> {
        for (s, l) in self.spectrum.iter_mut().zip(log_amplitude) {
            *s = Complex::new(*l, 0.0);
        }
        self.inverse.process(&mut self.spectrum, &mut self.time).map_err(fft_error)?;
        let n = self.n;
        for (q, c) in self.time.iter_mut().enumerate() {
            let fold = match q {
                0 => 1.0,
                q if q < n / 2 => 2.0,
                q if q == n / 2 => 1.0,
                _ => 0.0,
            };
            *c *= fold / n as f64;
        }
        self.forward.process(&mut self.time, &mut self.spectrum).map_err(fft_error)?;
        Ok(self.spectrum.iter().map(|c| c.exp()).collect())
    }
}

/// `out[start + i] += scale * x[i]` where `out` reaches.
fn add(out: &mut [f64], start: usize, x: &[f64], scale: f64) {
    for (o, v) in out.iter_mut().skip(start).zip(x) {
        *o += v * scale;
    }
}

/// A seeded Gaussian source (xorshift64* and Box-Muller): the same analysis always synthesises the same samples.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}
