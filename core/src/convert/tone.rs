//! The OpenVoice-format tone colour converter as a [`Converter`]: each block's linear spectrogram (see
//! [`super::spectrogram`]) goes through the converter graph with the source and target tones, on the real-time
//! worker. Stateless per block: the engine's left context gives it history, SOLA joins the blocks.
//!
//! Not yet selectable with `--engine` (issue 17): it is built and tested directly.

use std::path::Path;

use ort::value::Tensor;

use super::spectrogram::{Spectrogram, BINS, HOP, N_FFT, SAMPLE_RATE};
use super::Converter;
use crate::error::{Error, Result};
use crate::neural::{self, ModelKind};
use crate::onnx::{LoadedSession, Runtime, SessionOptions};

/// A tone colour converter with its two tones.
pub struct ToneColorConverter {
    session: LoadedSession,
    spectrogram: Spectrogram,
    source_tone: Vec<f32>,
    target_tone: Vec<f32>,
    tau: f32,
    path: std::path::PathBuf,
    warned: bool,
}

impl std::fmt::Debug for ToneColorConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ToneColorConverter({})", self.path.display())
    }
}

/// Samples of input to the right of a sample that its output depends on: the rest of the last frame reaching it.
pub const LOOKAHEAD: usize = N_FFT - (N_FFT - HOP) / 2;

impl ToneColorConverter {
    /// Load the converter graph at `model` (refused when it is not one) with 256-value source and target tones.
    pub fn load(
        runtime: &Runtime,
        model: &Path,
        source_tone: Vec<f32>,
        target_tone: Vec<f32>,
        tau: f32,
        options: &SessionOptions,
    ) -> Result<ToneColorConverter> {
        let kind = neural::detect(&neural::signature(runtime, model)?, model)?;
        if kind != ModelKind::ToneConverter {
            return Err(Error::ModelSignature {
                path: model.to_path_buf(),
                problem: format!("it is a {}, not a tone colour converter", kind.describe()),
            });
        }
        for (what, tone) in [("source", &source_tone), ("target", &target_tone)] {
            if tone.len() != 256 || tone.iter().any(|v| !v.is_finite()) {
                return Err(Error::ModelSignature {
                    path: model.to_path_buf(),
                    problem: format!("the {what} tone has {} values; 256 finite ones are needed", tone.len()),
                });
            }
        }
        Ok(ToneColorConverter {
            session: runtime.session_from_file(model, options)?,
            spectrogram: Spectrogram::new(),
            source_tone,
            target_tone,
            tau,
            path: model.to_path_buf(),
            warned: false,
        })
    }

    /// Convert a whole signal at 22050 Hz: as many samples out as in (the last partial frame is silence).
    pub fn convert(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        let frames = Spectrogram::frames(samples.len());
        let mut out = vec![0.0f32; samples.len()];
        if frames == 0 {
            return Ok(out);
        }
        let magnitudes = self.spectrogram.compute(samples);
        // [T][513] -> [1, 513, T]
        let mut transposed = vec![0.0f32; BINS * frames];
        for t in 0..frames {
            for b in 0..BINS {
                transposed[b * frames + t] = magnitudes[t * BINS + b];
            }
        }
        let context = |what: &str| format!("{what} ({})", self.path.display());
        let tensor = |shape: Vec<usize>, data: Vec<f32>| Tensor::from_array((shape, data));
        let inputs = ort::inputs![
            "audio" => tensor(vec![1, BINS, frames], transposed).map_err(|e| Error::onnx(context("building audio"), e))?,
            "audio_length" => Tensor::from_array(([1usize], vec![frames as i64])).map_err(|e| Error::onnx(context("building audio_length"), e))?,
            "src_tone" => tensor(vec![1, 256, 1], self.source_tone.clone()).map_err(|e| Error::onnx(context("building src_tone"), e))?,
            "dest_tone" => tensor(vec![1, 256, 1], self.target_tone.clone()).map_err(|e| Error::onnx(context("building dest_tone"), e))?,
            "tau" => tensor(vec![1], vec![self.tau]).map_err(|e| Error::onnx(context("building tau"), e))?,
        ];
        let outputs = self.session.session.run(inputs).map_err(|e| Error::onnx(context("running the converter"), e))?;
        let (_, audio) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::onnx(context("reading its output"), e))?;
        let n = audio.len().min(out.len());
        out[..n].copy_from_slice(&audio[..n]);
        Ok(out)
    }
}

impl Converter for ToneColorConverter {
    fn name(&self) -> &'static str {
        "tone-color"
    }
    fn sample_rate(&self) -> Option<u32> {
        Some(SAMPLE_RATE)
    }
    fn prepare(&mut self, _sample_rate_hz: u32, _max_hop: usize, _max_block: usize) {}
    fn latency(&self) -> usize {
        LOOKAHEAD
    }
    fn process(&mut self, input: &[f32], _hop_start: usize, _hop_len: usize, output: &mut [f32]) {
        match self.convert(input) {
            Ok(converted) => output.copy_from_slice(&converted),
            Err(e) => {
                // The dry signal rather than silence; said once (this runs on the worker, not the audio thread).
                if !self.warned {
                    tracing::warn!("tone colour conversion failed, passing the input through: {e}");
                    self.warned = true;
                }
                output.copy_from_slice(input);
            }
        }
    }
    fn reset(&mut self) {}
}
