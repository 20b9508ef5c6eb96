//! RMVPE pitch models for the RVC engine: when one is installed (`models add rmvpe.onnx`) RVC takes its pitch from
//! it instead of the YIN tracker, as the RVC projects do. Three export forms ([`PitchForm`]):
//!
//! - w-okada, audio in: `waveform` f32[1,N] at 16 kHz and `threshold` -> `pitchf` (Hz, 0 unvoiced, one per 160
//!   samples);
//! - w-okada, mel in: `mel` f32[1,128,T] and `threshold` -> `pitchf` per mel frame;
//! - RVC WebUI: the mel in, a salience f32[1,T,360] out over 20-cent bins, decoded here as RVC decodes it (the
//!   salience-weighted mean of the cents within 4 bins of the peak; unvoiced under the threshold).
//!
//! The mel is RMVPE's: 16 kHz, n_fft 1024, a periodic Hann window of 1024, hop 160, centred frames (reflect
//! padding of 512), magnitude (not power), 128 mel bands on the HTK mel scale from 30 to 8000 Hz with Slaney area
//! normalisation, natural log of the bands floored at 1e-5; the frames are padded to a multiple of 32 for the
//! network (w-okada pads by reflection, the WebUI with zeros) and the output is cut back.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ort::value::Tensor;
use realfft::{RealFftPlanner, RealToComplex};

use super::spectrogram::reflect;
use crate::error::{Error, Result};
use crate::neural::{self, ModelKind, PitchForm};
use crate::onnx::{LoadedSession, Runtime, SessionOptions};

/// The rate RMVPE runs at, Hz.
pub const RATE: u32 = 16_000;
/// Samples between frames (10 ms).
pub const HOP: usize = 160;
/// FFT and window size.
pub const N_FFT: usize = 1024;
/// Mel bands.
pub const N_MELS: usize = 128;
const BINS: usize = N_FFT / 2 + 1;
const FMIN: f64 = 30.0;
const FMAX: f64 = 8000.0;
/// Salience bins (20 cents each) and the cents of bin 0.
const SALIENCE_BINS: usize = 360;
const CENTS_OF_BIN_0: f32 = 1_997.379_4;

/// An installed RMVPE pitch model, loaded.
pub struct PitchModel {
    session: LoadedSession,
    form: PitchForm,
    /// The threshold input is a scalar (some exports) rather than `[1]`.
    scalar_threshold: bool,
    salience_input: String,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    path: PathBuf,
}

impl std::fmt::Debug for PitchModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PitchModel({:?}, {})", self.form, self.path.display())
    }
}

/// The first installed RMVPE pitch model in `models_dir`, if any.
pub fn installed(models_dir: &Path) -> Option<(PathBuf, PitchForm)> {
    neural::list(models_dir).into_iter().find_map(|(name, manifest)| {
        manifest.ok()?.files.iter().find_map(|file| match file.kind {
            ModelKind::PitchModel { form } => Some((models_dir.join(&name).join(&file.file), form)),
            _ => None,
        })
    })
}

impl PitchModel {
    /// Load the pitch model at `path` (refused when its graph is not one).
    pub fn load(runtime: &Runtime, path: &Path, options: &SessionOptions) -> Result<PitchModel> {
        let signature = neural::signature(runtime, path)?;
        let form = match neural::detect(&signature, path)? {
            ModelKind::PitchModel { form } => form,
            other => {
                return Err(Error::ModelSignature {
                    path: path.to_path_buf(),
                    problem: format!("it is a {}, not an RMVPE pitch model", other.describe()),
                })
            }
        };
        let scalar_threshold =
            signature.inputs.iter().find(|p| p.name == "threshold").is_some_and(|p| p.shape.is_empty());
        let salience_input = signature.inputs.first().map(|p| p.name.clone()).unwrap_or_default();
        let window = crate::analysis::periodic_hann(N_FFT);
        Ok(PitchModel {
            session: runtime.session_from_file(path, options)?,
            form,
            scalar_threshold,
            salience_input,
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
            window,
            path: path.to_path_buf(),
        })
    }

    /// The export form.
    pub fn form(&self) -> PitchForm {
        self.form
    }

    /// The pitch of `audio` (16 kHz) every 10 ms, Hz (0 where unvoiced): `audio.len() / 160 + 1` values for the
    /// mel forms (centred frames), what the model gives for the audio form.
    pub fn contour(&mut self, audio: &[f32]) -> Result<Vec<f32>> {
        let context = |what: &str| format!("{what} ({})", self.path.display());
        let threshold = |value: f32, scalar: bool| {
            let shape: Vec<usize> = if scalar { Vec::new() } else { vec![1] };
            Tensor::from_array((shape, vec![value])).map_err(|e| Error::onnx(context("building threshold"), e))
        };
        match self.form {
            PitchForm::Waveform => {
                let waveform = Tensor::from_array(([1usize, audio.len()], audio.to_vec()))
                    .map_err(|e| Error::onnx(context("building waveform"), e))?;
                // w-okada runs this form with a threshold of 0.3.
                let inputs =
                    ort::inputs!["waveform" => waveform, "threshold" => threshold(0.3, self.scalar_threshold)?];
                let outputs =
                    self.session.session.run(inputs).map_err(|e| Error::onnx(context("running the pitch model"), e))?;
                let (_, f0) =
                    outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::onnx(context("reading pitchf"), e))?;
                Ok(f0.iter().map(|f| if f.is_finite() && *f > 0.0 { *f } else { 0.0 }).collect())
            }
            PitchForm::Mel | PitchForm::Salience => {
                let mel = self.log_mel(audio);
                let frames = mel.len() / N_MELS;
                let padded = frames.div_ceil(32).max(1) * 32;
                let mut input = vec![0.0f32; N_MELS * padded];
                for t in 0..padded {
                    // w-okada pads by reflection, the WebUI with zeros (after the log).
                    let source = match self.form {
                        PitchForm::Mel if frames > 1 => Some(reflect_index(t, frames)),
                        _ if t < frames => Some(t),
                        _ => None,
                    };
                    if let Some(source) = source {
                        for m in 0..N_MELS {
                            input[m * padded + t] = mel[source * N_MELS + m];
                        }
                    }
                }
                let tensor = Tensor::from_array(([1usize, N_MELS, padded], input))
                    .map_err(|e| Error::onnx(context("building the mel"), e))?;
                if self.form == PitchForm::Mel {
                    // w-okada's current setting.
                    let inputs = ort::inputs!["mel" => tensor, "threshold" => threshold(0.045, self.scalar_threshold)?];
                    let outputs = self
                        .session
                        .session
                        .run(inputs)
                        .map_err(|e| Error::onnx(context("running the pitch model"), e))?;
                    let (_, f0) = outputs[0]
                        .try_extract_tensor::<f32>()
                        .map_err(|e| Error::onnx(context("reading pitchf"), e))?;
                    Ok(f0.iter().take(frames).map(|f| if f.is_finite() && *f > 0.0 { *f } else { 0.0 }).collect())
                } else {
                    let outputs = self
                        .session
                        .session
                        .run(ort::inputs![self.salience_input.as_str() => tensor])
                        .map_err(|e| Error::onnx(context("running the pitch model"), e))?;
                    let (_, salience) = outputs[0]
                        .try_extract_tensor::<f32>()
                        .map_err(|e| Error::onnx(context("reading the salience"), e))?;
                    // RVC's threshold for this form.
                    Ok(salience.chunks(SALIENCE_BINS).take(frames).map(|row| decode_salience(row, 0.03)).collect())
                }
            }
        }
    }

    /// RMVPE's log mel of `audio`: `[T][128]` row-major, `audio.len() / 160 + 1` frames.
    pub fn log_mel(&self, audio: &[f32]) -> Vec<f32> {
        let frames = audio.len() / HOP + 1;
        let bank = mel_filterbank();
        let mut out = Vec::with_capacity(frames * N_MELS);
        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut magnitude = [0.0f32; BINS];
        for t in 0..frames {
            let start = (t * HOP) as isize - (N_FFT / 2) as isize;
            for (n, slot) in frame.iter_mut().enumerate() {
                let sample = if audio.is_empty() { 0.0 } else { reflect(audio, start + n as isize) };
                *slot = sample * self.window[n];
            }
            // Sizes match the plan, so this cannot fail.
            let _ = self.fft.process(&mut frame, &mut spectrum);
            for (m, c) in magnitude.iter_mut().zip(&spectrum) {
                *m = (c.re * c.re + c.im * c.im).sqrt();
            }
            for row in bank.iter() {
                let band: f32 = row.iter().zip(&magnitude).map(|(w, m)| w * m).sum();
                out.push(band.max(1e-5).ln());
            }
        }
        out
    }
}

/// Frame `t` of a sequence of `frames` reflected past its end.
fn reflect_index(t: usize, frames: usize) -> usize {
    let period = 2 * (frames - 1);
    let i = t % period;
    if i >= frames {
        period - i
    } else {
        i
    }
}

/// One frame's salience over the 360 bins to Hz, as RVC decodes it: the salience-weighted mean of the cents of the
/// nine bins around the peak; 0 (unvoiced) when the peak is under `threshold`.
pub fn decode_salience(row: &[f32], threshold: f32) -> f32 {
    let Some((peak, &height)) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else { return 0.0 };
    if height.is_nan() || height <= threshold {
        return 0.0;
    }
    let (from, to) = (peak.saturating_sub(4), (peak + 5).min(row.len()));
    let (mut weighted, mut total) = (0.0f32, 0.0f32);
    for (bin, &s) in row.iter().enumerate().take(to).skip(from) {
        weighted += s * (CENTS_OF_BIN_0 + 20.0 * bin as f32);
        total += s;
    }
    let f0 = 10.0 * 2f32.powf(weighted / total / 1200.0);
    if f0 > 10.0 {
        f0
    } else {
        0.0
    }
}

/// HTK's mel scale.
fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

/// The 128 x 513 filterbank: triangles on the HTK mel scale from 30 to 8000 Hz, each scaled to unit area (Slaney
/// normalisation), as `librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128, fmin=30, fmax=8000, htk=True)`.
pub fn mel_filterbank() -> &'static [[f32; BINS]; N_MELS] {
    static BANK: OnceLock<Box<[[f32; BINS]; N_MELS]>> = OnceLock::new();
    BANK.get_or_init(|| {
        let (low, high) = (hz_to_mel(FMIN), hz_to_mel(FMAX));
        let points: Vec<f64> =
            (0..N_MELS + 2).map(|i| mel_to_hz(low + (high - low) * i as f64 / (N_MELS + 1) as f64)).collect();
        let nyquist = f64::from(RATE) / 2.0;
        let mut bank = Box::new([[0.0f32; BINS]; N_MELS]);
        for (m, row) in bank.iter_mut().enumerate() {
            let (left, centre, right) = (points[m], points[m + 1], points[m + 2]);
            let norm = 2.0 / (right - left);
            for (k, weight) in row.iter_mut().enumerate() {
                let hz = nyquist * k as f64 / (BINS - 1) as f64;
                let rising = (hz - left) / (centre - left);
                let falling = (right - hz) / (right - centre);
                *weight = (rising.min(falling).max(0.0) * norm) as f32;
            }
        }
        bank
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_salience_peak_decodes_to_its_cents_and_a_low_one_is_unvoiced() {
        let mut row = [0.0f32; SALIENCE_BINS];
        row[100] = 1.0;
        // Bin 100: 1997.38 + 2000 cents above 10 Hz.
        let expected = 10.0 * 2f32.powf((CENTS_OF_BIN_0 + 2000.0) / 1200.0);
        assert!((decode_salience(&row, 0.03) - expected).abs() < 0.01, "{}", decode_salience(&row, 0.03));
        // Equal neighbours pull the mean to the bin between them.
        row[101] = 1.0;
        let between = 10.0 * 2f32.powf((CENTS_OF_BIN_0 + 2010.0) / 1200.0);
        assert!((decode_salience(&row, 0.03) - between).abs() < 0.01);
        assert_eq!(decode_salience(&[0.01; SALIENCE_BINS], 0.03), 0.0);
    }

    #[test]
    fn the_filterbank_is_htk_triangles_of_unit_area_between_30_and_8000_hz() {
        let bank = mel_filterbank();
        let bin_hz = f64::from(RATE) / N_FFT as f64;
        // Each band's weights sum (times the bin spacing) to about 1: unit area, where the bands span enough bins
        // for the sum to tell (above about 3 kHz, 8 bins and more).
        for (m, row) in bank.iter().enumerate().skip(96) {
            let area: f64 = row.iter().map(|w| f64::from(*w)).sum::<f64>() * bin_hz;
            assert!((area - 1.0).abs() < 0.03, "band {m}: area {area}");
        }
        // Nothing below 30 Hz or above 8 kHz; the first band peaks near its HTK centre.
        assert!(bank.iter().all(|row| row[0] == 0.0));
        let first_centre = mel_to_hz(hz_to_mel(FMIN) + (hz_to_mel(FMAX) - hz_to_mel(FMIN)) / (N_MELS + 1) as f64);
        let peak = bank[0].iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert!((peak as f64 * bin_hz - first_centre).abs() <= bin_hz, "{peak} vs {first_centre}");
        assert!((hz_to_mel(1000.0) - 1000.0).abs() < 0.1, "HTK: 1000 Hz is 1000 mel");
    }
}
