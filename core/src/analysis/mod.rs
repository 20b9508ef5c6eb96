//! Signal analysis shared by voice profiles and the `dsp` converter: YIN pitch estimation and spectral-envelope
//! formant scale estimation.

pub mod envelope;
pub mod pitch;
pub mod synthetic;

/// A periodic Hann window of `n` points, `0.5 - 0.5 cos(2 pi i / n)` (computed in f64): the analysis window of the
/// spectra here and of the models' front-ends (torch's and librosa's default `hann`).
pub fn periodic_hann(n: usize) -> Vec<f32> {
    (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32).collect()
}
