//! The OpenVoice-format tone colour converter as a [`Converter`]: each block's linear spectrogram (see
//! [`super::spectrogram`]) goes through the converter graph with the source and target tones, on the real-time
//! worker. Stateless per block: the engine's left context gives it history, SOLA joins the blocks.
//!
//! `--engine tone-color --model NAME` selects it for offline conversion ([`ToneSetup`]): the source tone is the
//! input clip's, the target tone the voice profile's (measured once per model with the model's reference encoder
//! and stored in the profile). Live ([`LiveToneConverter`], the Live screen and the plugin), the source tone is
//! the live input's own, measured by the reference encoder on a helper thread from the input's last seconds of
//! sound: until the first measurement the input passes through unchanged (aligned), then the tone is refreshed
//! every few seconds.

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

/// Refuse `model` unless its graph is of `kind` (`what` names it for the message).
fn require_kind(runtime: &Runtime, model: &Path, kind: ModelKind, what: &str) -> Result<()> {
    let found = neural::detect(&neural::signature(runtime, model)?, model)?;
    if found == kind {
        return Ok(());
    }
    Err(Error::ModelSignature {
        path: model.to_path_buf(),
        problem: format!("it is a {}, not {what}", found.describe()),
    })
}

/// A tone must be 256 finite values.
fn check_tone(model: &Path, what: &str, tone: &[f32]) -> Result<()> {
    if tone.len() == 256 && tone.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    Err(Error::ModelSignature {
        path: model.to_path_buf(),
        problem: format!("the {what} tone has {} values; 256 finite ones are needed", tone.len()),
    })
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
        require_kind(runtime, model, ModelKind::ToneConverter, "a tone colour converter")?;
        for (what, tone) in [("source", &source_tone), ("target", &target_tone)] {
            check_tone(model, what, tone)?;
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
        let converted = self.convert(input);
        super::converted_or_dry(converted, input, output, &mut self.warned, "tone colour");
    }
    fn reset(&mut self) {}
}

/// An OpenVoice-format reference (tone colour) encoder: a linear spectrogram in, a 256-value tone out.
pub struct ToneExtractor {
    session: LoadedSession,
    spectrogram: Spectrogram,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for ToneExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ToneExtractor({})", self.path.display())
    }
}

impl ToneExtractor {
    /// Load the reference encoder at `model` (refused when it is not one).
    pub fn load(runtime: &Runtime, model: &Path, options: &SessionOptions) -> Result<ToneExtractor> {
        require_kind(runtime, model, ModelKind::ToneExtractor, "a tone colour reference encoder")?;
        Ok(ToneExtractor {
            session: runtime.session_from_file(model, options)?,
            spectrogram: Spectrogram::new(),
            path: model.to_path_buf(),
        })
    }

    /// The tone of `samples` at 22050 Hz (at least one frame of audio).
    pub fn tone(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        let frames = Spectrogram::frames(samples.len());
        if frames == 0 {
            return Err(Error::Setting {
                key: "converter.model".into(),
                problem: format!("too little audio to measure a tone colour (under {N_FFT} samples)"),
            });
        }
        let magnitudes = self.spectrogram.compute(samples);
        let context = |what: &str| format!("{what} ({})", self.path.display());
        let input = Tensor::from_array((vec![1usize, frames, BINS], magnitudes[..frames * BINS].to_vec()))
            .map_err(|e| Error::onnx(context("building input"), e))?;
        let outputs = self
            .session
            .session
            .run(ort::inputs!["input" => input])
            .map_err(|e| Error::onnx(context("running the reference encoder"), e))?;
        let (_, tone) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| Error::onnx(context("reading its output"), e))?;
        Ok(tone.to_vec())
    }
}

/// The converter and reference encoder files of a tone colour model.
pub fn tone_files(models_dir: &Path, manifest: &neural::Manifest) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let folder = models_dir.join(&manifest.name);
    let file = |kind: ModelKind| manifest.files.iter().find(|f| f.kind == kind).map(|f| folder.join(&f.file));
    match (file(ModelKind::ToneConverter), file(ModelKind::ToneExtractor)) {
        (Some(converter), Some(extractor)) => Ok((converter, extractor)),
        _ => Err(Error::ModelSignature {
            path: folder,
            problem: format!(
                "`{}` is a {} model, not a tone colour converter with its reference encoder; \
                 `--engine tone-color` needs one (`demod-voice models list`)",
                manifest.name, manifest.engine
            ),
        }),
    }
}

/// Everything the tone colour engine needs for a run of clips: the model, the target tone, the runtime.
#[derive(Debug)]
pub struct ToneSetup {
    runtime: &'static Runtime,
    converter_path: std::path::PathBuf,
    target_tone: Vec<f32>,
    tau: f32,
    options: SessionOptions,
    /// The reference encoder, loaded with the setup (it measures every clip's own tone).
    extractor: std::sync::Mutex<ToneExtractor>,
    /// The converter once loaded, kept for the next clips.
    converter: std::sync::Mutex<Option<std::sync::Arc<std::sync::Mutex<ToneColorConverter>>>>,
}

impl ToneSetup {
    /// The tone colour engine as `settings` ask for it: `converter.model` names an installed tone colour model and
    /// `profile` (the converter's profile, loaded by the caller) the voice to move toward. The profile's tone for
    /// this model is measured from its source recordings on first use and stored in the profile.
    pub fn from_settings(
        settings: &crate::settings::Settings,
        profile: Option<crate::profile::VoiceProfile>,
    ) -> Result<ToneSetup> {
        ToneSetup::toward(settings, |extractor, model| {
            let mut profile = profile.ok_or_else(|| Error::Setting {
                key: "converter.profile".into(),
                problem: "tone-color moves toward a voice profile's tone: name one (--to PROFILE, a preset's \
                          `converter.profile`, or the profile picker of the Live screen or the plugin)"
                    .into(),
            })?;
            if let Some(tone) = profile.tones.get(model) {
                return Ok(tone.clone());
            }
            let tone = profile_tone(extractor, &profile)?;
            profile.tones.insert(model.to_string(), tone.clone());
            // Kept for next time when the profile lives in the library (best effort: only time is lost).
            let dir = settings.profiles_dir();
            if crate::profile::VoiceProfile::path_in(&dir, &profile.name).is_file() {
                if let Err(e) = profile.save(&dir) {
                    tracing::warn!("cannot store the tone in profile {}: {e}", profile.name);
                }
            }
            Ok(tone)
        })
    }

    /// The tone colour engine `settings` name (`converter.model`, `converter.tau`) toward the voice of the
    /// `reference` recording (its tone measured now with the model's reference encoder): what `clone --engine
    /// tone-color` runs.
    pub fn for_reference(settings: &crate::settings::Settings, reference: &Path) -> Result<ToneSetup> {
        ToneSetup::toward(settings, |extractor, _| {
            let audio = crate::wav::read_reference(reference)?;
            extractor.tone(&crate::wav::resample(&audio.samples, audio.rate, SAMPLE_RATE)?)
        })
    }

    /// The installed model `settings` name, with the target tone `target` measures (given the reference encoder and
    /// the model's name).
    fn toward(
        settings: &crate::settings::Settings,
        target: impl FnOnce(&mut ToneExtractor, &str) -> Result<Vec<f32>>,
    ) -> Result<ToneSetup> {
        let (models_dir, manifest) = super::installed_model(settings, super::Engine::ToneColor)?;
        let (converter_path, extractor_path) = tone_files(&models_dir, &manifest)?;
        let runtime = settings.runtime()?;
        let options = settings.session_options();
        let mut extractor = ToneExtractor::load(runtime, &extractor_path, &options)?;
        let target_tone = target(&mut extractor, &manifest.name)?;
        check_tone(&extractor_path, "target", &target_tone)?;
        Ok(ToneSetup {
            runtime,
            converter_path,
            target_tone,
            tau: settings.converter.clone().unwrap_or_default().tau,
            options,
            extractor: std::sync::Mutex::new(extractor),
            converter: std::sync::Mutex::new(None),
        })
    }

    /// The converter for one clip at 22050 Hz (its own tone is the source tone): the converter is loaded on the
    /// first clip and kept for the rest (offline use).
    pub fn converter_for(&self, clip: &[f32]) -> Result<Box<dyn Converter>> {
        let mut extractor = self.extractor.lock().unwrap_or_else(|p| p.into_inner());
        let source_tone = extractor.tone(clip)?;
        check_tone(&extractor.path, "source", &source_tone)?;
        let mut loaded = self.converter.lock().unwrap_or_else(|p| p.into_inner());
        let shared = match loaded.as_ref() {
            Some(shared) => shared.clone(),
            None => {
                let converter = ToneColorConverter::load(
                    self.runtime,
                    &self.converter_path,
                    source_tone.clone(),
                    self.target_tone.clone(),
                    self.tau,
                    &self.options,
                )?;
                loaded.insert(std::sync::Arc::new(std::sync::Mutex::new(converter))).clone()
            }
        };
        shared.lock().unwrap_or_else(|p| p.into_inner()).source_tone = source_tone;
        Ok(Box::new(super::Shared(shared)))
    }
}

impl ToneSetup {
    /// The live converter: the model loaded now, the reference encoder moved to the helper thread that measures the
    /// live input's tone.
    pub fn live(self) -> Result<LiveToneConverter> {
        let converter = ToneColorConverter::load(
            self.runtime,
            &self.converter_path,
            self.target_tone.clone(),
            self.target_tone,
            self.tau,
            &self.options,
        )?;
        LiveToneConverter::new(converter, self.extractor.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Seconds of sound in the live input before its tone is first measured.
pub const LIVE_FIRST_SECONDS: f32 = 3.0;
/// Seconds of new sound between later measurements.
pub const LIVE_EVERY_SECONDS: f32 = 5.0;
/// The most recent seconds of sound a measurement looks at.
pub const LIVE_WINDOW_SECONDS: f32 = 10.0;
/// Hops quieter than this (RMS, dB below full scale) are pauses, not the speaker's voice, and are not measured.
pub const LIVE_GATE_DB: f32 = -45.0;

/// What the measuring thread sends back: the request's generation and the tone (or why there is none).
type Measured = (u64, Result<Vec<f32>>);

/// The tone colour converter on a live input: the source tone is the input's own, measured by the model's
/// reference encoder on a helper thread (the worker never waits for it) from the last
/// [`LIVE_WINDOW_SECONDS`] of sound, first after [`LIVE_FIRST_SECONDS`] and then every [`LIVE_EVERY_SECONDS`].
/// Until the first tone arrives the input passes through unchanged (time-aligned, as the conversion is).
pub struct LiveToneConverter {
    converter: ToneColorConverter,
    /// The input's recent sound (pauses left out), at most [`LIVE_WINDOW_SECONDS`].
    heard: Vec<f32>,
    /// Samples of sound heard since the last measurement was asked for.
    since: usize,
    /// A measurement is on its way.
    pending: bool,
    /// The input's tone is known.
    measured: bool,
    /// Bumped by `reset`, so a measurement of the previous stream is ignored.
    generation: u64,
    requests: Option<std::sync::mpsc::SyncSender<(u64, Vec<f32>)>>,
    tones: std::sync::mpsc::Receiver<Measured>,
    meter: Option<std::thread::JoinHandle<()>>,
    warned: bool,
}

impl std::fmt::Debug for LiveToneConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveToneConverter({:?}, measured: {})", self.converter, self.measured)
    }
}

impl LiveToneConverter {
    /// `converter` (its source tone replaced once the input's is measured) with `extractor` measuring on a helper
    /// thread.
    pub fn new(converter: ToneColorConverter, mut extractor: ToneExtractor) -> Result<LiveToneConverter> {
        let (requests, inbox) = std::sync::mpsc::sync_channel::<(u64, Vec<f32>)>(1);
        let (outbox, tones) = std::sync::mpsc::channel::<Measured>();
        let meter = std::thread::Builder::new()
            .name("demod-tone-meter".into())
            .spawn(move || {
                for (generation, audio) in inbox {
                    let tone = extractor.tone(&audio).and_then(|tone| {
                        check_tone(&extractor.path, "input", &tone)?;
                        Ok(tone)
                    });
                    if outbox.send((generation, tone)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::Setting {
                key: "converter.engine".into(),
                problem: format!("cannot start the thread that measures the input's tone colour: {e}"),
            })?;
        Ok(LiveToneConverter {
            converter,
            heard: Vec::with_capacity(seconds(LIVE_WINDOW_SECONDS)),
            since: 0,
            pending: false,
            measured: false,
            generation: 0,
            requests: Some(requests),
            tones,
            meter: Some(meter),
            warned: false,
        })
    }

    /// True once the input's own tone is in use (before, the input passes through).
    pub fn measured(&self) -> bool {
        self.measured
    }

    /// Keep `hop` when it is sound, ask for a measurement when enough is new, take a tone that arrived.
    fn listen(&mut self, hop: &[f32]) {
        let power = hop.iter().map(|s| s * s).sum::<f32>() / hop.len().max(1) as f32;
        if 10.0 * power.max(1e-20).log10() > LIVE_GATE_DB {
            let window = seconds(LIVE_WINDOW_SECONDS);
            let excess = (self.heard.len() + hop.len()).saturating_sub(window);
            self.heard.drain(..excess.min(self.heard.len()));
            self.heard.extend_from_slice(&hop[hop.len().saturating_sub(window)..]);
            self.since += hop.len();
        }
        let due = seconds(if self.measured { LIVE_EVERY_SECONDS } else { LIVE_FIRST_SECONDS });
        if !self.pending && self.since >= due {
            if let Some(requests) = &self.requests {
                if requests.try_send((self.generation, self.heard.clone())).is_ok() {
                    self.pending = true;
                    self.since = 0;
                }
            }
        }
        while let Ok((generation, tone)) = self.tones.try_recv() {
            if generation != self.generation {
                continue;
            }
            self.pending = false;
            match tone {
                Ok(tone) => {
                    if !self.measured {
                        tracing::info!("tone colour: the input's own tone is measured; converting");
                    }
                    self.converter.source_tone = tone;
                    self.measured = true;
                }
                Err(e) if !self.warned => {
                    tracing::warn!("tone colour: cannot measure the input's tone, passing it through: {e}");
                    self.warned = true;
                }
                Err(_) => {}
            }
        }
    }
}

/// Samples at the tone colour rate in `s` seconds.
fn seconds(s: f32) -> usize {
    (s * SAMPLE_RATE as f32) as usize
}

impl Converter for LiveToneConverter {
    fn name(&self) -> &'static str {
        self.converter.name()
    }
    fn sample_rate(&self) -> Option<u32> {
        self.converter.sample_rate()
    }
    fn prepare(&mut self, sample_rate_hz: u32, max_hop: usize, max_block: usize) {
        self.converter.prepare(sample_rate_hz, max_hop, max_block);
    }
    fn latency(&self) -> usize {
        self.converter.latency()
    }
    fn process(&mut self, input: &[f32], hop_start: usize, hop_len: usize, output: &mut [f32]) {
        let end = (hop_start + hop_len).min(input.len());
        self.listen(&input[hop_start.min(end)..end]);
        if self.measured {
            self.converter.process(input, hop_start, hop_len, output);
        } else {
            output.copy_from_slice(input);
        }
    }
    fn reset(&mut self) {
        self.heard.clear();
        self.since = 0;
        self.pending = false;
        self.measured = false;
        self.generation += 1;
    }
}

impl Drop for LiveToneConverter {
    fn drop(&mut self) {
        // Closing the request channel ends the thread after the measurement it may be making.
        self.requests = None;
        if let Some(meter) = self.meter.take() {
            let _ = meter.join();
        }
    }
}

/// A profile's tone: the mean of its source recordings' tones (each read, mixed to mono, at 22050 Hz).
fn profile_tone(encoder: &mut ToneExtractor, profile: &crate::profile::VoiceProfile) -> Result<Vec<f32>> {
    let mut sum: Vec<f32> = Vec::new();
    let mut count = 0usize;
    for source in &profile.sources {
        let audio = crate::wav::read_reference(&source.path).map_err(|e| Error::Profile {
            path: source.path.clone(),
            problem: format!(
                "its recording is needed once to measure its tone colour and cannot be read ({e}); \
                 add the profile again from a recording that exists"
            ),
        })?;
        let tone = encoder.tone(&crate::wav::resample(&audio.samples, audio.rate, SAMPLE_RATE)?)?;
        if sum.is_empty() {
            sum = vec![0.0; tone.len()];
        }
        sum.iter_mut().zip(&tone).for_each(|(s, t)| *s += t);
        count += 1;
    }
    Ok(sum.into_iter().map(|s| s / count.max(1) as f32).collect())
}
