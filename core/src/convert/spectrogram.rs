//! The linear spectrogram OpenVoice-format tone colour models take, computed exactly as OpenVoice computes it:
//! 22050 Hz audio, n_fft 1024, hop 256, a periodic Hann window of 1024, reflect padding of (n_fft - hop) / 2 on
//! both sides, frames not centred, magnitude sqrt(re^2 + im^2 + 1e-6). Frames come out as rows of 513 bins
//! (`[T][513]`, row-major); the converter wants them transposed to `[1, 513, T]`, the reference encoder as is.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// FFT size.
pub const N_FFT: usize = 1024;
/// Hop between frames.
pub const HOP: usize = 256;
/// Frequency bins per frame.
pub const BINS: usize = N_FFT / 2 + 1;
/// The rate the models run at.
pub const SAMPLE_RATE: u32 = 22050;

/// A reusable spectrogram (window and FFT plan made once).
pub struct Spectrogram {
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for Spectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spectrogram")
    }
}

impl Default for Spectrogram {
    fn default() -> Self {
        Spectrogram::new()
    }
}

/// `x[i]` with reflection at both ends (`x[-1] = x[1]`, as torch's reflect padding).
pub(crate) fn reflect(samples: &[f32], index: isize) -> f32 {
    let n = samples.len() as isize;
    if n == 1 {
        return samples[0];
    }
    let period = 2 * (n - 1);
    let mut i = index.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    samples[i as usize]
}

impl Spectrogram {
    /// The window and plan.
    pub fn new() -> Spectrogram {
        let window = crate::analysis::periodic_hann(N_FFT);
        Spectrogram { window, fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT) }
    }

    /// Frames `samples` yields: 1 + (len + 2 * pad - n_fft) / hop, none when too short.
    pub fn frames(len: usize) -> usize {
        let padded = len + (N_FFT - HOP);
        if padded < N_FFT || len < 2 {
            0
        } else {
            1 + (padded - N_FFT) / HOP
        }
    }

    /// The magnitudes, `frames(len) * BINS` values, frame after frame.
    pub fn compute(&self, samples: &[f32]) -> Vec<f32> {
        let frames = Self::frames(samples.len());
        let pad = ((N_FFT - HOP) / 2) as isize;
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut out = Vec::with_capacity(frames * BINS);
        for frame in 0..frames {
            let start = (frame * HOP) as isize - pad;
            for (k, value) in input.iter_mut().enumerate() {
                *value = reflect(samples, start + k as isize) * self.window[k];
            }
            // The plan's sizes are the ones it made: processing cannot fail.
            let _ = self.fft.process_with_scratch(&mut input, &mut spectrum, &mut scratch);
            out.extend(spectrum.iter().map(|c| (c.re * c.re + c.im * c.im + 1e-6).sqrt()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same spectrogram by the definition: a direct DFT of each reflect-padded, windowed frame.
    fn by_definition(samples: &[f32]) -> Vec<f32> {
        let pad = ((N_FFT - HOP) / 2) as isize;
        let mut out = Vec::new();
        for frame in 0..Spectrogram::frames(samples.len()) {
            let start = (frame * HOP) as isize - pad;
            let x: Vec<f64> = (0..N_FFT)
                .map(|n| {
                    let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos();
                    f64::from(reflect(samples, start + n as isize)) * w
                })
                .collect();
            for k in 0..BINS {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (n, v) in x.iter().enumerate() {
                    let angle = -2.0 * std::f64::consts::PI * (k * n) as f64 / N_FFT as f64;
                    re += v * angle.cos();
                    im += v * angle.sin();
                }
                out.push((re * re + im * im + 1e-6).sqrt() as f32);
            }
        }
        out
    }

    #[test]
    fn frames_and_magnitudes_match_the_definition() {
        let samples: Vec<f32> =
            (0..3000).map(|i| (i as f32 * 0.07).sin() * 0.5 + ((i * 7919) % 101) as f32 / 1000.0 - 0.05).collect();
        assert_eq!(Spectrogram::frames(samples.len()), 1 + (3000 + 768 - 1024) / 256);
        let fast = Spectrogram::new().compute(&samples);
        let slow = by_definition(&samples);
        assert_eq!(fast.len(), slow.len());
        let worst = fast.iter().zip(&slow).map(|(a, b)| (a - b).abs() / b.max(1.0)).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "relative error {worst}");
        // Silence is the +1e-6 floor, as OpenVoice's.
        let quiet = Spectrogram::new().compute(&[0.0; 2048]);
        assert!(quiet.iter().all(|v| (v - 1e-3).abs() < 1e-6));
    }

    #[test]
    fn reflection_mirrors_without_repeating_the_edge() {
        let x = [1.0, 2.0, 3.0];
        let got: Vec<f32> = (-3..6).map(|i| reflect(&x, i)).collect();
        assert_eq!(got, [2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0]);
    }
}
