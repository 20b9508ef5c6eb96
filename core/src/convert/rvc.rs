//! RVC voice models as a [`Converter`]: content features from a HuBERT/ContentVec encoder at 16 kHz, pitch from an
//! installed RMVPE model or else the vocoder's YIN contour, and the voice model (WebUI or w-okada export) turning
//! both into audio at its own rate.
//! Stateless per block: the engine's left context gives it history, SOLA joins the blocks.
//!
//! Per block (audio at the model's rate):
//! 1. resample to 16 kHz and pad to whole encoder frames (320 samples, 50 per second);
//! 2. the content encoder gives `[1, T, C]` features, repeated twice to the model's 100 frames per second;
//! 3. pitch every 10 ms (0 when unvoiced) from an installed RMVPE model ([`super::rmvpe`]) or else YIN, shifted by
//!    `pitch_semitones`; the coarse pitch RVC also takes is its mel
//!    value mapped onto 1..255 between 50 and 1100 Hz (1 = unvoiced);
//! 4. the voice model's inputs by export style (WebUI: `phone`, `phone_lengths`, `pitch`, `pitchf`, `ds`, `rnd`;
//!    w-okada: `feats`, `p_len`, [`pitch`, `pitchf`], `sid`), its `[1, 1, N]` output cut to the block's length.
//!
//! No feature index (retrieval) is used: the "index-free" path. `--engine rvc --model NAME` selects it for files
//! ([`RvcSetup`]) and live ([`super::build_live`]: the Live screen, the plugin).

use std::path::{Path, PathBuf};

use ort::value::Tensor;

use super::Converter;
use crate::error::{Error, Result};
use crate::neural::{self, Manifest, ModelKind};
use crate::onnx::{LoadedSession, Runtime, SessionOptions};

/// The content encoder's rate, Hz.
const CONTENT_RATE: u32 = 16_000;
/// Samples per content frame at 16 kHz (50 frames a second).
const CONTENT_HOP: usize = 320;
/// Samples per model frame at 16 kHz (100 frames a second).
const FRAME_HOP: usize = 160;
/// RVC's coarse pitch range, Hz.
const F0_RANGE: (f32, f32) = (50.0, 1100.0);
/// The noise RVC's WebUI export takes, scaled as RVC scales it.
const NOISE_SCALE: f32 = 0.666_666_7;

/// An RVC voice model with its content encoder.
pub struct RvcConverter {
    voice: LoadedSession,
    content: LoadedSession,
    content_input: String,
    /// An installed RMVPE pitch model, used instead of YIN.
    pitch_model: Option<super::rmvpe::PitchModel>,
    kind: ModelKind,
    rate: u32,
    semitones: f32,
    speaker: i64,
    path: PathBuf,
    warned: bool,
}

impl std::fmt::Debug for RvcConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RvcConverter({})", self.path.display())
    }
}

impl RvcConverter {
    /// Load the installed RVC model `manifest` (in `models_dir`) with an installed content encoder of its channel
    /// count, shifting the pitch by `semitones`.
    pub fn load(
        runtime: &Runtime,
        models_dir: &Path,
        manifest: &Manifest,
        semitones: f32,
        options: &SessionOptions,
    ) -> Result<RvcConverter> {
        let folder = models_dir.join(&manifest.name);
        let voice_file = manifest
            .files
            .iter()
            .find(|f| matches!(f.kind, ModelKind::RvcWebui { .. } | ModelKind::RvcOkada { .. }))
            .ok_or_else(|| Error::ModelSignature {
                path: folder.clone(),
                problem: format!(
                    "`{}` is a {} model, not an RVC voice model; `--engine rvc` needs one (`demod-voice models list`)",
                    manifest.name, manifest.engine
                ),
            })?;
        let kind = voice_file.kind.clone();
        let (channels, rate) = match &kind {
            ModelKind::RvcWebui { channels, sample_rate } | ModelKind::RvcOkada { channels, sample_rate, .. } => {
                (*channels, sample_rate.unwrap_or(40_000))
            }
            _ => (768, 40_000),
        };
        let content_path = content_encoder(models_dir, channels)?;
        let content = runtime.session_from_file(&content_path, options)?;
        let content_input = content.session.inputs().first().map(|i| i.name().to_string()).unwrap_or_default();
        let path = folder.join(&voice_file.file);
        let pitch_model = match super::rmvpe::installed(models_dir) {
            Some((file, _)) => Some(super::rmvpe::PitchModel::load(runtime, &file, options)?),
            None => None,
        };
        Ok(RvcConverter {
            pitch_model,
            voice: runtime.session_from_file(&path, options)?,
            content,
            content_input,
            kind,
            rate,
            semitones,
            speaker: 0,
            path,
            warned: false,
        })
    }

    /// Convert `samples` at the model's rate: as many samples out as in.
    pub fn convert(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; samples.len()];
        if samples.is_empty() {
            return Ok(out);
        }
        let mut audio = crate::wav::resample(samples, self.rate, CONTENT_RATE)?;
        let padded = audio.len().div_ceil(CONTENT_HOP).max(1) * CONTENT_HOP;
        audio.resize(padded, 0.0);
        let context = |what: &str| format!("{what} ({})", self.path.display());
        // Content features, repeated to 100 frames a second.
        let input = Tensor::from_array(([1usize, audio.len()], audio.clone()))
            .map_err(|e| Error::onnx(context("building the content input"), e))?;
        let outputs = self
            .content
            .session
            .run(ort::inputs![self.content_input.as_str() => input])
            .map_err(|e| Error::onnx(context("running the content encoder"), e))?;
        let (shape, features) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::onnx(context("reading the content"), e))?;
        let (frames, channels) = (shape[1] as usize, shape[2] as usize);
        let t = 2 * frames;
        let mut feats = Vec::with_capacity(t * channels);
        for frame in features.chunks(channels).take(frames) {
            feats.extend_from_slice(frame);
            feats.extend_from_slice(frame);
        }
        drop(outputs);
        // Pitch every 10 ms, shifted, and its coarse form.
        let mut f0 = match self.pitch_model.as_mut() {
            Some(model) => model.contour(&audio)?,
            None => crate::vocoder::f0::contour(&audio, CONTENT_RATE, FRAME_HOP),
        };
        f0.resize(t, 0.0);
        let shift = 2f32.powf(self.semitones / 12.0);
        let pitchf: Vec<f32> = f0.iter().map(|f| f * shift).collect();
        let pitch: Vec<i64> = pitchf.iter().map(|&f| coarse_pitch(f)).collect();
        let length = Tensor::from_array(([1usize], vec![t as i64])).map_err(|e| Error::onnx(context("lengths"), e))?;
        let feats = Tensor::from_array(([1usize, t, channels], feats)).map_err(|e| Error::onnx(context("feats"), e))?;
        let speaker = Tensor::from_array(([1usize], vec![self.speaker])).map_err(|e| Error::onnx(context("sid"), e))?;
        let pitch = Tensor::from_array(([1usize, t], pitch)).map_err(|e| Error::onnx(context("pitch"), e))?;
        let pitchf = Tensor::from_array(([1usize, t], pitchf)).map_err(|e| Error::onnx(context("pitchf"), e))?;
        let run = match &self.kind {
            ModelKind::RvcWebui { .. } => {
                let noise = Tensor::from_array(([1usize, 192, t], seeded_noise(192 * t)))
                    .map_err(|e| Error::onnx(context("rnd"), e))?;
                self.voice.session.run(ort::inputs![
                    "phone" => feats, "phone_lengths" => length, "pitch" => pitch, "pitchf" => pitchf,
                    "ds" => speaker, "rnd" => noise,
                ])
            }
            ModelKind::RvcOkada { pitch: true, .. } => self.voice.session.run(ort::inputs![
                "feats" => feats, "p_len" => length, "pitch" => pitch, "pitchf" => pitchf, "sid" => speaker,
            ]),
            _ => self.voice.session.run(ort::inputs!["feats" => feats, "p_len" => length, "sid" => speaker]),
        };
        let outputs = run.map_err(|e| Error::onnx(context("running the voice model"), e))?;
        let (_, audio) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::onnx(context("reading its output"), e))?;
        let n = audio.len().min(out.len());
        out[..n].copy_from_slice(&audio[..n]);
        Ok(out)
    }
}

/// What the RVC engine needs for a run of clips: the installed model and how to load it.
#[derive(Debug)]
pub struct RvcSetup {
    runtime: &'static Runtime,
    models_dir: PathBuf,
    manifest: Manifest,
    options: SessionOptions,
    /// The speaker a multi-speaker model speaks as (`converter.model_speaker`).
    speaker: u32,
    /// The converter once loaded, kept for the next clips.
    loaded: std::sync::Mutex<Option<std::sync::Arc<std::sync::Mutex<RvcConverter>>>>,
}

impl RvcSetup {
    /// The RVC engine as `settings` ask for it: `converter.model` names an installed RVC voice model.
    pub fn from_settings(settings: &crate::settings::Settings) -> Result<RvcSetup> {
        let (models_dir, manifest) = super::installed_model(settings, super::Engine::Rvc)?;
        if manifest.engine != "rvc" {
            return Err(Error::ModelSignature {
                path: models_dir.join(&manifest.name),
                problem: format!(
                    "`{}` is a {} model, not an RVC voice model; `--engine rvc` needs one \
                     (`demod-voice models list`)",
                    manifest.name, manifest.engine
                ),
            });
        }
        Ok(RvcSetup {
            runtime: settings.runtime()?,
            models_dir,
            manifest,
            options: settings.session_options(),
            speaker: settings.converter.as_ref().map_or(0, |c| c.model_speaker),
            loaded: std::sync::Mutex::new(None),
        })
    }

    /// A converter shifting the pitch by `semitones` (the sessions are loaded now).
    pub fn converter(&self, semitones: f32) -> Result<RvcConverter> {
        let mut converter =
            RvcConverter::load(self.runtime, &self.models_dir, &self.manifest, semitones, &self.options)?;
        converter.speaker = i64::from(self.speaker);
        Ok(converter)
    }

    /// The converter for one more clip: loaded on the first, kept for the rest (offline use).
    pub fn for_clip(&self, semitones: f32) -> Result<Box<dyn Converter>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let shared = match loaded.as_ref() {
            Some(shared) => shared.clone(),
            None => loaded.insert(std::sync::Arc::new(std::sync::Mutex::new(self.converter(semitones)?))).clone(),
        };
        shared.lock().unwrap_or_else(|p| p.into_inner()).semitones = semitones;
        Ok(Box::new(super::Shared(shared)))
    }
}

/// RVC's coarse pitch: the mel value of `f0` mapped onto 1..=255 between [`F0_RANGE`]; 1 when unvoiced.
pub fn coarse_pitch(f0: f32) -> i64 {
    if f0 <= 0.0 {
        return 1;
    }
    let mel = |f: f32| 1127.0 * (1.0 + f / 700.0).ln();
    let (low, high) = (mel(F0_RANGE.0), mel(F0_RANGE.1));
    let scaled = (mel(f0) - low) * 254.0 / (high - low) + 1.0;
    (scaled.round() as i64).clamp(1, 255)
}

/// Gaussian noise from a fixed seed (the same block always converts the same way), scaled as RVC scales it.
fn seeded_noise(len: usize) -> Vec<f32> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..len)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32 * NOISE_SCALE
        })
        .collect()
}

/// The installed content encoder with `channels` output channels.
fn content_encoder(models_dir: &Path, channels: u32) -> Result<PathBuf> {
    for (name, manifest) in neural::list(models_dir) {
        let Ok(manifest) = manifest else { continue };
        for file in &manifest.files {
            if file.kind == (ModelKind::ContentEncoder { channels }) {
                return Ok(models_dir.join(&name).join(&file.file));
            }
        }
    }
    Err(Error::ModelSignature {
        path: models_dir.to_path_buf(),
        problem: format!(
            "an RVC model needs a content encoder (HuBERT/ContentVec) with {channels} channels installed beside it; \
             `demod-voice models add hubert.onnx` installs one (docs/models.md says where they come from)"
        ),
    })
}

impl Converter for RvcConverter {
    fn name(&self) -> &'static str {
        "rvc"
    }
    fn sample_rate(&self) -> Option<u32> {
        Some(self.rate)
    }
    fn prepare(&mut self, _sample_rate_hz: u32, _max_hop: usize, _max_block: usize) {}
    fn latency(&self) -> usize {
        // The last content frame and pitch window reaching a sample: 40 ms at the model's rate.
        self.rate as usize / 25
    }
    fn process(&mut self, input: &[f32], _hop_start: usize, _hop_len: usize, output: &mut [f32]) {
        let converted = self.convert(input);
        super::converted_or_dry(converted, input, output, &mut self.warned, "RVC");
    }
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_pitch_spans_1_to_255_over_rvcs_range() {
        assert_eq!(coarse_pitch(0.0), 1);
        assert_eq!(coarse_pitch(50.0), 1);
        assert_eq!(coarse_pitch(1100.0), 255);
        assert_eq!(coarse_pitch(5000.0), 255);
        let (low, high) = (coarse_pitch(100.0), coarse_pitch(200.0));
        assert!(1 < low && low < high && high < 255, "{low} {high}");
    }
}
