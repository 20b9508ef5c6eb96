//! Cloning: speech from a base voice, moved toward the voice of a reference recording, and measured by the speaker
//! encoder.
//!
//! What identity depends on and what is matched here, offline (the whole clip is analysed first):
//! - pitch: the clip's median F0 is moved onto the reference's, and its log-F0 excursions are scaled by the ratio
//!   of the two voices' spreads;
//! - vocal-tract length: the spectral envelope's frequency axis is scaled;
//! - timbre: a smooth equaliser moves the long-term average spectrum of the voiced frames onto the reference's;
//! - breathiness: where the reference is clean enough to tell it, the voiced frames' noise share per band is moved
//!   toward the reference's (kept by the fit only when the encoder finds the result closer).
//!
//! The formant scale and the equaliser are fitted per reference and base voice by analysis-by-synthesis: a probe
//! text spoken by the base voice is converted with each candidate scale, equalised, embedded, and the candidate
//! most similar to the reference wins ([`fit`]). Fits live in the reference's profile ([`CloneProfile`]), cached
//! by the reference's checksum, so a second clone from the same reference starts at once.
//!
//! The conversion runs on the source-filter [`crate::vocoder`]: the pitch and the envelope are changed apart from
//! each other, so large pitch shifts keep the words clear (pitch-synchronous overlap-add, the live converter, blurs
//! them above a ratio of about 1.5).
//!
//! Content always comes from the source: nothing here replaces frames by the reference's, which keeps the speech
//! intelligible (tested with a speech recogniser).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use realfft::RealFftPlanner;
use serde::{Deserialize, Serialize};

use crate::analysis::pitch::{track, PitchEstimate};
use crate::error::{Error, Result};
use crate::matching::{formant_reach, Adjust, Goal, OfflineMatch};
use crate::piper::{PiperVoice, SynthesisOptions};
use crate::profile::VoiceProfile;
use crate::settings::Settings;
use crate::speaker::{Embedding, SpeakerEncoder};
use crate::vocoder::Analysis;

/// Rate of the spectral analysis, Hz (bands reach 7.5 kHz).
const ANALYSIS_RATE: u32 = 16_000;
/// Long-term spectrum bands: log-spaced from [`BAND_LOW_HZ`] to [`BAND_HIGH_HZ`].
pub const BANDS: usize = 40;
/// Lowest band centre, Hz.
const BAND_LOW_HZ: f32 = 80.0;
/// Highest band centre, Hz.
const BAND_HIGH_HZ: f32 = 7200.0;
/// The equaliser never boosts or cuts a band by more than this, dB.
const MAX_EQ_DB: f32 = 7.5;
/// Formant scales tried by the fit.
const FORMANT_CANDIDATES: &[f32] = &[0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.35];
/// What the base voice says while a fit is measured (Harvard sentences, public domain).
pub const PROBE_TEXT: &str = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue \
    background. It is easy to tell the depth of a well. These days a chicken leg is a rare dish.";

/// The cloning method's version: part of the cache's file names.
pub const METHOD_VERSION: u32 = 10;
/// Breathiness is measured only in recordings whose quiet stretches sit at least this far below their speech, dB
/// (a recording's noise reads as breath otherwise).
const MIN_BREATH_SNR_DB: f32 = 30.0;
/// Breathiness is changed by at most this much per band, dB.
const MAX_BREATH_DB: f32 = 6.0;

/// Centre frequency of long-term-spectrum band `idx`, Hz.
pub fn band_hz(idx: usize) -> f32 {
    BAND_LOW_HZ * (BAND_HIGH_HZ / BAND_LOW_HZ).powf(idx as f32 / (BANDS - 1) as f32)
}

/// Pitch statistics of voiced speech.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PitchStats {
    /// Median F0, Hz.
    pub median_hz: f32,
    /// Standard deviation of ln F0 (how much the pitch moves).
    pub log_std: f32,
}

/// Pitch statistics of `samples` (at `rate`), from YIN every 5 ms, octave errors folded: frames more than half an
/// octave from the median are moved by octaves toward it before the spread is measured (a doubled or halved period
/// is a tracking error, not intonation). `None` with under 0.3 s of voicing.
pub fn pitch_stats(samples: &[f32], rate: u32) -> Option<PitchStats> {
    pitch_stats_of(voiced_f0s(samples, rate))
}

/// Voiced frames (5 ms each) needed for pitch statistics: 0.3 s.
pub(crate) const MIN_VOICED_FRAMES: usize = 60;

/// The pitch of each voiced 5 ms frame of `samples` (at `rate`), by YIN.
pub(crate) fn voiced_f0s(samples: &[f32], rate: u32) -> Vec<f32> {
    let hop = (rate / 200).max(1) as usize;
    track(samples, rate, hop).iter().filter_map(|p: &PitchEstimate| p.f0).collect()
}

/// ln `f0` after moving it by octaves to within half an octave (and a little) of `median`: a doubled or halved
/// period is a tracking error, not intonation. `f0` and `median` must be finite and positive.
pub(crate) fn folded_ln(f0: f32, median: f32) -> f32 {
    let reach = std::f32::consts::SQRT_2 * 1.06;
    let mut f = f0;
    while f > median * reach {
        f /= 2.0;
    }
    while f < median / reach {
        f *= 2.0;
    }
    f.ln()
}

/// [`pitch_stats`] of voiced frames' pitches (one every 5 ms), as measured elsewhere. `None` under 0.3 s of them.
pub fn pitch_stats_of(voiced: Vec<f32>) -> Option<PitchStats> {
    let voiced: Vec<f32> = voiced.into_iter().filter(|f| f.is_finite() && (20.0..4000.0).contains(f)).collect();
    if voiced.len() < MIN_VOICED_FRAMES {
        return None;
    }
    let mut sorted = voiced.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    // Finite and positive (filtered above), so the folding ends.
    let folded: Vec<f32> = voiced.iter().map(|&f| folded_ln(f, median)).collect();
    let mut sorted = folded.clone();
    sorted.sort_by(f32::total_cmp);
    let centre = sorted[sorted.len() / 2];
    let mean = folded.iter().sum::<f32>() / folded.len() as f32;
    let var = folded.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / folded.len() as f32;
    Some(PitchStats { median_hz: centre.exp(), log_std: var.sqrt().max(1e-3) })
}

/// How far the loud stretches of `samples` (at `rate`) sit above the quiet ones, dB: the 95th over the 10th
/// percentile of the energies of 20 ms frames. Clean speech reaches 45-60 dB; hiss, hum or room noise lower it.
pub fn signal_to_noise_db(samples: &[f32], rate: u32) -> f32 {
    let frame = (rate as usize / 50).max(1);
    let mut energies: Vec<f32> = samples
        .chunks_exact(frame)
        .map(|c| 10.0 * (c.iter().map(|v| v * v).sum::<f32>() / frame as f32 + 1e-12).log10())
        .collect();
    if energies.len() < 10 {
        return 0.0;
    }
    energies.sort_by(f32::total_cmp);
    let at = |p: f32| energies[((energies.len() - 1) as f32 * p).round() as usize];
    at(0.95) - at(0.10)
}

/// The breathiness of a recording ([`Analysis::breathiness`]) where it can be told: not at all when the recording
/// is too noisy ([`MIN_BREATH_SNR_DB`]), and not in bands above `top_hz` (what it carries).
pub fn measurable_breathiness(
    samples: &[f32],
    rate: u32,
    analysis: &Analysis,
    top_hz: f32,
) -> Option<crate::vocoder::Breathiness> {
    if signal_to_noise_db(samples, rate) < MIN_BREATH_SNR_DB {
        return None;
    }
    let mut measured = analysis.breathiness();
    for (band, (_, high)) in measured.iter_mut().zip(crate::vocoder::BREATH_BANDS_HZ) {
        if high > top_hz * 1.09 {
            *band = None;
        }
    }
    measured.iter().any(Option::is_some).then_some(measured)
}

/// The change (dB per band) that makes a voice of breathiness `from` as breathy as `to`, bounded; 0 where either
/// is unknown.
pub fn breath_change(from: &crate::vocoder::Breathiness, to: &crate::vocoder::Breathiness) -> [f32; 4] {
    std::array::from_fn(|b| match (from[b], to[b]) {
        (Some(from), Some(to)) => (to - from).clamp(-MAX_BREATH_DB, MAX_BREATH_DB),
        _ => 0.0,
    })
}

/// The long-term average spectrum of the voiced frames of `samples`, dB per band ([`band_hz`]), and the highest
/// frequency the recording carries (its Nyquist, a little under). `None` without voiced frames.
pub fn long_term_spectrum(samples: &[f32], rate: u32) -> Result<Option<(Vec<f32>, f32)>> {
    let audio = crate::wav::resample(samples, rate, ANALYSIS_RATE)?;
    const N: usize = 1024;
    const HOP: usize = 256;
    if audio.len() < N {
        return Ok(None);
    }
    let window = crate::analysis::periodic_hann(N);
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N);
    let (mut frame, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    let mut power = vec![0.0f64; N / 2 + 1];
    let mut yin = crate::analysis::pitch::Yin::new(ANALYSIS_RATE, 60.0, 1000.0);
    let yin_len = yin.frame_len();
    let mut frames = 0usize;
    let mut end = N;
    while end <= audio.len() {
        let chunk = &audio[end - N..end];
        if yin.estimate(&chunk[N - yin_len.min(N)..]).f0.is_some() {
            for (f, (x, w)) in frame.iter_mut().zip(chunk.iter().zip(&window)) {
                *f = x * w;
            }
            if fft.process(&mut frame, &mut spectrum).is_ok() {
                for (p, c) in power.iter_mut().zip(&spectrum) {
                    *p += f64::from(c.re * c.re + c.im * c.im);
                }
                frames += 1;
            }
        }
        end += HOP;
    }
    if frames == 0 {
        return Ok(None);
    }
    let bin_hz = ANALYSIS_RATE as f32 / N as f32;
    let top_hz = carried_top_hz(rate, ANALYSIS_RATE);
    let bands = band_bins(bin_hz, N / 2)
        .iter()
        .map(|&(first, last)| (10.0 * (band_mean(&power[first..=last]) / frames as f64 + 1e-12).log10()) as f32)
        .collect();
    Ok(Some((bands, top_hz)))
}

/// The highest frequency a recording at `rate` tells once resampled to `analysed_at`: the lower Nyquist frequency,
/// a little under (resampling rolls off there).
pub(crate) fn carried_top_hz(rate: u32, analysed_at: u32) -> f32 {
    (rate.min(analysed_at) as f32 / 2.0) * 0.92
}

/// The FFT bins (first, last, inclusive) each long-term-spectrum band averages, for bins `bin_hz` apart up to
/// `max_bin`: the band's centre a half band either way ([`band_hz`]), at least one bin.
pub(crate) fn band_bins(bin_hz: f32, max_bin: usize) -> [(usize, usize); BANDS] {
    let ratio = (BAND_HIGH_HZ / BAND_LOW_HZ).powf(0.5 / (BANDS - 1) as f32);
    std::array::from_fn(|b| {
        let (lo, hi) = (band_hz(b) / ratio, band_hz(b) * ratio);
        let first = ((lo / bin_hz).floor() as usize).min(max_bin);
        (first, ((hi / bin_hz).ceil() as usize).clamp(first, max_bin))
    })
}

/// The level of a band from its bins' powers: their sum over one less than their count (at least one), as profiles
/// have always stored it (a stored spectrum and a new measurement must agree band by band).
pub(crate) fn band_mean(bins: &[f64]) -> f64 {
    bins.iter().sum::<f64>() / bins.len().saturating_sub(1).max(1) as f64
}

/// The equaliser that moves `from` (a long-term spectrum) onto `to`: their difference with the overall level
/// removed, smoothed over neighbouring bands, limited to ±[`MAX_EQ_DB`], and flat above `top_hz` (what the
/// reference recording cannot tell).
pub fn equaliser(from: &[f32], to: &[f32], top_hz: f32) -> Vec<f32> {
    let mut eq = [0.0; BANDS];
    equaliser_into(from, to, top_hz, &mut eq);
    eq.to_vec()
}

/// [`equaliser`] into `eq`, allocating nothing (the live converter designs one on its worker).
pub(crate) fn equaliser_into(from: &[f32], to: &[f32], top_hz: f32, eq: &mut [f32; BANDS]) {
    let usable = |b: usize| band_hz(b) <= top_hz && b < from.len() && b < to.len();
    let diff = |b: usize| if usable(b) { to[b] - from[b] } else { 0.0 };
    let count = (0..BANDS).filter(|&b| usable(b)).count().max(1);
    let mean = (0..BANDS).filter(|&b| usable(b)).map(diff).sum::<f32>() / count as f32;
    for (b, slot) in eq.iter_mut().enumerate() {
        *slot = if usable(b) {
            let near = (b.saturating_sub(2)..=(b + 2).min(BANDS - 1)).filter(|&n| usable(n));
            let (sum, n) = near.fold((0.0f32, 0usize), |(sum, n), k| (sum + diff(k) - mean, n + 1));
            (sum / n.max(1) as f32).clamp(-MAX_EQ_DB, MAX_EQ_DB)
        } else {
            0.0
        };
    }
}

/// Apply a band equaliser (dB per [`band_hz`] band) to `samples` at `rate`: a linear-phase FIR designed by frequency
/// sampling, applied by FFT convolution; the output is aligned with the input and as long. Allocates.
pub fn apply_equaliser(samples: &[f32], rate: u32, eq_db: &[f32]) -> Vec<f32> {
    if eq_db.iter().all(|g| g.abs() < 0.01) || samples.is_empty() {
        return samples.to_vec();
    }
    const TAPS: usize = 1023;
    const N: usize = 4096;
    let gain_at = |hz: f32| -> f32 {
        let pos = ((hz.max(BAND_LOW_HZ) / BAND_LOW_HZ).ln() / (BAND_HIGH_HZ / BAND_LOW_HZ).ln()) * (BANDS - 1) as f32;
        let i = (pos.floor() as usize).min(BANDS - 1);
        let frac = (pos - i as f32).clamp(0.0, 1.0);
        let db = if i + 1 < BANDS { eq_db[i] * (1.0 - frac) + eq_db[i + 1] * frac } else { eq_db[BANDS - 1] };
        10f32.powf(db / 20.0)
    };
    let mut planner = RealFftPlanner::<f32>::new();
    let (forward, inverse) = (planner.plan_fft_forward(N), planner.plan_fft_inverse(N));
    // The zero-phase response, into a windowed linear-phase kernel of TAPS taps.
    let mut response = inverse.make_input_vec();
    for (k, c) in response.iter_mut().enumerate() {
        *c = realfft::num_complex::Complex::new(gain_at(k as f32 * rate as f32 / N as f32), 0.0);
    }
    let mut impulse = inverse.make_output_vec();
    if inverse.process(&mut response, &mut impulse).is_err() {
        return samples.to_vec();
    }
    let half = TAPS / 2;
    let mut kernel = vec![0.0f32; N];
    for (t, slot) in kernel.iter_mut().enumerate().take(TAPS) {
        let lag = (t as isize - half as isize).rem_euclid(N as isize) as usize;
        let w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * t as f32 / (TAPS - 1) as f32).cos();
        *slot = impulse[lag] / N as f32 * w;
    }
    let mut kernel_spectrum = forward.make_output_vec();
    if forward.process(&mut kernel, &mut kernel_spectrum).is_err() {
        return samples.to_vec();
    }
    // Overlap-add in blocks of N - TAPS + 1.
    let block = N - TAPS + 1;
    let mut out = vec![0.0f32; samples.len() + TAPS];
    let (mut buf, mut spec) = (forward.make_input_vec(), forward.make_output_vec());
    let mut back = inverse.make_output_vec();
    for start in (0..samples.len()).step_by(block) {
        let chunk = &samples[start..(start + block).min(samples.len())];
        buf.fill(0.0);
        buf[..chunk.len()].copy_from_slice(chunk);
        if forward.process(&mut buf, &mut spec).is_err() {
            return samples.to_vec();
        }
        for (s, k) in spec.iter_mut().zip(&kernel_spectrum) {
            *s *= *k;
        }
        if inverse.process(&mut spec, &mut back).is_err() {
            return samples.to_vec();
        }
        for (i, v) in back.iter().enumerate() {
            if let Some(o) = out.get_mut(start + i) {
                *o += v / N as f32;
            }
        }
    }
    out.drain(..half);
    out.truncate(samples.len());
    out
}

/// How one base voice is moved toward one reference: fitted by [`fit`], stored in the reference's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneFit {
    /// Vocal-tract (formant) scale applied to the base voice.
    pub formant_ratio: f32,
    /// Scale of the pitch excursions (the reference's log-F0 spread over the base voice's).
    pub f0_spread: f32,
    /// Equaliser, dB per long-term-spectrum band.
    pub eq_db: Vec<f32>,
    /// Breathiness change, dB per [`crate::vocoder::BREATH_BANDS_HZ`] band (all 0 when the reference's could not
    /// be measured or matching it did not raise the similarity).
    #[serde(default)]
    pub breath_db: [f32; 4],
    /// The probe's similarity to the reference, unconverted.
    pub similarity_before: f32,
    /// The probe's similarity to the reference with this fit.
    pub similarity_after: f32,
    /// Seconds the fit took.
    pub fit_seconds: f32,
}

/// A reference voice as cloning needs it: the measured profile plus its embedding, pitch statistics, long-term
/// spectrum, and a fit per base voice. Stored as YAML in the cache, named by the reference's checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneProfile {
    /// Median F0, formant scale and the sources (with their checksums).
    pub profile: VoiceProfile,
    /// The reference's speaker embedding.
    pub embedding: Embedding,
    /// The reference's pitch statistics.
    pub pitch: PitchStats,
    /// The reference's long-term average spectrum, dB per band.
    pub spectrum_db: Vec<f32>,
    /// The highest frequency the reference carries, Hz.
    pub top_hz: f32,
    /// The reference's breathiness, when the recording is clean enough to tell it.
    #[serde(default)]
    pub breath_db: Option<crate::vocoder::Breathiness>,
    /// Fits by base voice name.
    #[serde(default)]
    pub fits: BTreeMap<String, CloneFit>,
}

impl CloneProfile {
    /// Measure `reference` (profile, embedding, pitch, spectrum); no fit yet.
    pub fn measure(reference: &Path, encoder: &SpeakerEncoder) -> Result<CloneProfile> {
        let profile = VoiceProfile::from_recordings("reference", &[reference.to_path_buf()])?;
        let crate::wav::MonoAudio { samples, rate, .. } = crate::wav::read_reference(reference)?;
        let embedding = encoder.embed(&samples, rate)?;
        let unusable = |problem: &str| Error::Profile { path: reference.to_path_buf(), problem: problem.into() };
        let pitch = pitch_stats(&samples, rate).ok_or_else(|| unusable("too little voiced speech to clone"))?;
        let (spectrum_db, top_hz) =
            long_term_spectrum(&samples, rate)?.ok_or_else(|| unusable("no voiced frames to measure"))?;
        let breath_db = measurable_breathiness(&samples, rate, &Analysis::of(&samples, rate)?, top_hz);
        Ok(CloneProfile { profile, embedding, pitch, spectrum_db, top_hz, breath_db, fits: BTreeMap::new() })
    }

    /// Where the profile of a reference with checksum `sha256` is cached (by method version too, so an improved
    /// method never reuses an old fit).
    pub fn cache_path(cache_dir: &Path, sha256: &str) -> PathBuf {
        cache_dir.join("clones").join(format!("{sha256}.v{METHOD_VERSION}.yaml"))
    }

    /// The cached profile of `reference`, or a new measurement (cached for next time), and where it is cached.
    /// Second uses of the same recording (by content, wherever it lies) start without measuring.
    pub fn for_reference(
        reference: &Path,
        cache_dir: &Path,
        encoder: &SpeakerEncoder,
    ) -> Result<(CloneProfile, PathBuf)> {
        let sha = crate::assets::sha256_hex(reference)?;
        let path = CloneProfile::cache_path(cache_dir, &sha);
        if let Some(cached) = std::fs::read_to_string(&path).ok().and_then(|t| serde_saphyr::from_str(&t).ok()) {
            return Ok((cached, path));
        }
        let measured = CloneProfile::measure(reference, encoder)?;
        measured.save(&path);
        Ok((measured, path))
    }

    /// The similarity before -> after cloning `voice` toward the reference with checksum `sha256`, when a fit for
    /// that voice (any speaker of it) is in the cache; nothing is measured here.
    pub fn cached_similarity(cache_dir: &Path, sha256: &str, voice: &str) -> Option<(f32, f32)> {
        let text = std::fs::read_to_string(CloneProfile::cache_path(cache_dir, sha256)).ok()?;
        let profile: CloneProfile = serde_saphyr::from_str(&text).ok()?;
        let speaker_prefix = format!("{voice}#");
        profile
            .fits
            .iter()
            .find(|(key, _)| *key == voice || key.starts_with(&speaker_prefix))
            .map(|(_, fit)| (fit.similarity_before, fit.similarity_after))
    }

    /// Write to `path` (best effort: a cache that cannot be written only costs time next run).
    pub fn save(&self, path: &Path) {
        let written = (|| -> std::result::Result<(), String> {
            let parent = path.parent().ok_or("no folder")?;
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            let text = serde_saphyr::to_string(self).map_err(|e| e.to_string())?;
            crate::durable::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
        })();
        if let Err(problem) = written {
            tracing::warn!("cannot cache the clone profile at {}: {problem}", path.display());
        }
    }

    /// Convert `samples` (speech of the base voice at `rate`) with `fit`: pitch onto the reference's median with its
    /// spread, the fitted vocal-tract scale, then the equaliser, through [`crate::matching`] (the whole clip is
    /// analysed first, so its median lands on the reference's whatever its length). Allocates (offline use).
    pub fn convert(&self, samples: &[f32], rate: u32, fit: &CloneFit) -> Result<Vec<f32>> {
        OfflineMatch { goal: self.goal(), fit: Some(fit.clone()) }.convert(samples, rate, &Adjust::FULL)
    }

    /// The reference as [`crate::matching`] matches toward it.
    pub fn goal(&self) -> Goal {
        Goal {
            median_hz: self.pitch.median_hz,
            log_std: Some(self.pitch.log_std),
            formant_scale: Some(self.profile.formant_scale),
            spectrum: Some((self.spectrum_db.clone(), self.top_hz)),
            breath_db: self.breath_db,
            median_of: crate::matching::MedianMeasure::Folded,
        }
    }
}

/// A reference's profile with the fit for one base voice: what the pipeline's converter needs to clone.
#[derive(Debug, Clone)]
pub struct CloneMatch {
    /// The reference.
    pub profile: CloneProfile,
    /// How the base voice moves toward it.
    pub fit: CloneFit,
    /// True when the fit came from the cache (no time spent fitting now).
    pub cached: bool,
}

/// Everything cloning toward `reference` with `voice` needs: the reference's cached (or new) profile and the fit for
/// this voice (made now, by speaking [`PROBE_TEXT`] with the settings' speech options, when the cache has none).
pub fn prepare(
    reference: &Path,
    voice: &PiperVoice,
    settings: &Settings,
    encoder: &SpeakerEncoder,
) -> Result<CloneMatch> {
    let cache = &settings.dirs.cache;
    let (mut profile, cached_at) = CloneProfile::for_reference(reference, cache, encoder)?;
    let key = voice_key(voice, settings);
    if let Some(fit) = profile.fits.get(&key) {
        return Ok(CloneMatch { fit: fit.clone(), profile, cached: true });
    }
    let options = SynthesisOptions::from_tts(&settings.config.tts, voice)?;
    let mut probe = Vec::new();
    voice.synthesize(PROBE_TEXT, &options, |audio| -> Result<()> {
        probe.extend_from_slice(&audio.samples);
        Ok(())
    })?;
    let fitted = fit(&profile, &probe, voice.sample_rate(), encoder)?;
    profile.fits.insert(key, fitted.clone());
    profile.save(&cached_at);
    Ok(CloneMatch { profile, fit: fitted, cached: false })
}

/// For a multi-speaker voice with no speaker chosen: pick the speaker nearest to `reference` (see
/// [`crate::speakers`]) and set it in `settings`, so the fit, the speech and the cache key all use it. Nothing
/// happens for a one-speaker voice or when a speaker was given.
pub fn choose_speaker(
    reference: &Path,
    voice: &PiperVoice,
    settings: &mut Settings,
    encoder: &SpeakerEncoder,
) -> Result<Option<crate::speakers::NearestSpeaker>> {
    if settings.config.tts.speaker.is_some() || crate::speakers::speaker_names(voice).is_empty() {
        return Ok(None);
    }
    let (profile, _) = CloneProfile::for_reference(reference, &settings.dirs.cache, encoder)?;
    let options = SynthesisOptions::from_tts(&settings.config.tts, voice)?;
    let mut announced = false;
    let nearest = crate::speakers::nearest(
        voice,
        &options,
        encoder,
        &settings.dirs.cache,
        &profile.embedding,
        &mut |done, total| {
            if !announced && done < total {
                announced = true;
                tracing::info!("comparing the {total} speakers of {} with the reference (once per voice)", voice.name);
            }
        },
    )?;
    if let Some(found) = &nearest {
        settings.set(crate::settings::Setting::Speaker(found.speaker.clone()), "nearest speaker");
    }
    Ok(nearest)
}

/// The fit for `voice` (and the settings' speaker) toward the reference with checksum `sha256`, when the cache has
/// one; nothing is measured.
pub fn cached_fit(cache_dir: &Path, sha256: &str, voice: &PiperVoice, settings: &Settings) -> Option<CloneFit> {
    let text = std::fs::read_to_string(CloneProfile::cache_path(cache_dir, sha256)).ok()?;
    let profile: CloneProfile = serde_saphyr::from_str(&text).ok()?;
    profile.fits.get(&voice_key(voice, settings)).cloned()
}

/// What a fit is stored under: the voice, and the speaker of a multi-speaker voice.
fn voice_key(voice: &PiperVoice, settings: &Settings) -> String {
    match &settings.config.tts.speaker {
        Some(speaker) => format!("{}#{speaker}", voice.name),
        None => voice.name.clone(),
    }
}

/// Fit how `probe` (the base voice saying [`PROBE_TEXT`], at `rate`) moves toward `reference`: each candidate vocal-
/// tract scale is tried with its own equaliser, and the one the encoder finds most similar wins.
pub fn fit(reference: &CloneProfile, probe: &[f32], rate: u32, encoder: &SpeakerEncoder) -> Result<CloneFit> {
    let started = std::time::Instant::now();
    let before = encoder.embed(probe, rate)?.cosine(&reference.embedding);
    let base = pitch_stats(probe, rate);
    let spread = match base {
        Some(base) => (reference.pitch.log_std / base.log_std).clamp(0.7, 1.3),
        None => 1.0,
    };
    let pitch_ratio = base.map_or(1.0, |base| reference.pitch.median_hz / base.median_hz);
    let (low, high) = formant_reach(pitch_ratio);
    let candidates = FORMANT_CANDIDATES.iter().copied().filter(|r| (low - 1e-4..=high + 1e-4).contains(r));
    let mut best: Option<CloneFit> = None;
    let analysis = Analysis::of(probe, rate)?;
    // The probe with the reference's pitch and spread and the vocal-tract scale `formant_ratio`.
    let moved = |formant_ratio: f32| {
        let mut moved = analysis.clone();
        if let Some(base) = base {
            moved.map_pitch(base.median_hz, reference.pitch.median_hz, spread);
        }
        moved.warp(formant_ratio);
        moved
    };
    for formant_ratio in candidates {
        let converted = moved(formant_ratio).synthesise()?;
        let eq_db = match long_term_spectrum(&converted, rate)? {
            Some((spectrum, _)) => equaliser(&spectrum, &reference.spectrum_db, reference.top_hz),
            None => vec![0.0; BANDS],
        };
        let output = apply_equaliser(&converted, rate, &eq_db);
        let after = encoder.embed(&output, rate)?.cosine(&reference.embedding);
        tracing::debug!("clone fit: formant {formant_ratio:.2}: similarity {after:.3}");
        if best.as_ref().is_none_or(|b| after > b.similarity_after) {
            best = Some(CloneFit {
                formant_ratio,
                f0_spread: spread,
                eq_db,
                breath_db: [0.0; 4],
                similarity_before: before,
                similarity_after: after,
                fit_seconds: 0.0,
            });
        }
    }
    let mut best = best.ok_or_else(|| Error::Setting { key: "clone".into(), problem: "no candidate to fit".into() })?;
    // Breathiness, where the reference tells it: kept only if the encoder hears the voice closer with it.
    let change = reference.breath_db.map(|to| breath_change(&analysis.breathiness(), &to)).unwrap_or_default();
    if change.iter().any(|c| c.abs() >= 0.5) {
        let mut breathier = moved(best.formant_ratio);
        breathier.breathe(&change);
        let output = apply_equaliser(&breathier.synthesise()?, rate, &best.eq_db);
        let after = encoder.embed(&output, rate)?.cosine(&reference.embedding);
        tracing::debug!("clone fit: breathiness {change:?}: similarity {after:.3}");
        if after > best.similarity_after {
            best.breath_db = change;
            best.similarity_after = after;
        }
    }
    best.fit_seconds = started.elapsed().as_secs_f32();
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_equaliser_changes_nothing_and_a_cut_cuts() {
        let input = crate::analysis::synthetic::sine(1000.0, 22_050, 1.0, 0.3);
        assert_eq!(apply_equaliser(&input, 22_050, &[0.0; BANDS]), input);
        let cut = apply_equaliser(&input, 22_050, &[-12.0; BANDS]);
        let rms = |x: &[f32]| (x[2000..20_000].iter().map(|v| v * v).sum::<f32>() / 18_000.0).sqrt();
        let ratio_db = 20.0 * (rms(&cut) / rms(&input)).log10();
        assert!((ratio_db + 12.0).abs() < 0.5, "a -12 dB equaliser gave {ratio_db:.2} dB");
        assert_eq!(cut.len(), input.len());
        // Linear phase, delay compensated: the waveform lines up.
        let lag0: f32 = cut[5000..6000].iter().zip(&input[5000..6000]).map(|(a, b)| a * b).sum();
        let lag1: f32 = cut[5000..6000].iter().zip(&input[5001..6001]).map(|(a, b)| a * b).sum();
        assert!(lag0 > lag1);
    }

    #[test]
    fn the_equaliser_follows_the_shape_not_the_level_and_stays_flat_above_the_reference() {
        let from = vec![0.0; BANDS];
        let mut to: Vec<f32> = (0..BANDS).map(|b| if band_hz(b) < 1000.0 { 6.0 } else { 0.0 }).collect();
        to.iter_mut().for_each(|v| *v += 20.0); // a louder reference: the level is not copied
        let eq = equaliser(&from, &to, 4000.0);
        assert!(eq[0] > 2.0 && eq[BANDS / 2] < eq[0]);
        assert!(eq.iter().all(|g| g.abs() <= MAX_EQ_DB));
        assert!((0..BANDS).filter(|&b| band_hz(b) > 4000.0).all(|b| eq[b] == 0.0));
    }

    #[test]
    fn breathiness_is_told_only_by_clean_recordings_and_only_in_the_bands_they_carry() {
        let rate = 16_000;
        // Speech with pauses: half a second voiced, a quarter second of near silence, four times.
        let voiced = crate::analysis::synthetic::voice(140.0, &[700.0, 1200.0, 2600.0], rate, 0.5);
        let mut clean = Vec::new();
        for _ in 0..4 {
            clean.extend_from_slice(&voiced);
            clean.extend(std::iter::repeat_n(0.0, rate as usize / 4));
        }
        let hiss = crate::analysis::synthetic::noise(11, clean.len());
        let quiet_hiss: Vec<f32> = clean.iter().zip(&hiss).map(|(v, n)| v + n * 1e-4).collect();
        let loud_hiss: Vec<f32> = clean.iter().zip(&hiss).map(|(v, n)| v + n * 0.05).collect();
        assert!(signal_to_noise_db(&quiet_hiss, rate) > 50.0);
        assert!(signal_to_noise_db(&loud_hiss, rate) < 30.0, "{}", signal_to_noise_db(&loud_hiss, rate));
        let told = |x: &[f32], top_hz: f32| measurable_breathiness(x, rate, &Analysis::of(x, rate).unwrap(), top_hz);
        let measured = told(&quiet_hiss, 7360.0).expect("a clean recording tells its breathiness");
        assert!(measured.iter().all(Option::is_some), "{measured:?}");
        assert!(told(&loud_hiss, 7360.0).is_none(), "the hiss would read as breath");
        // A telephone band (under 4 kHz) tells nothing of 4-8 kHz.
        let narrow = told(&quiet_hiss, 3680.0).unwrap();
        assert!(narrow[3].is_none() && narrow[2].is_some(), "{narrow:?}");
        // The change between two voices is bounded and 0 where either is unknown.
        let change =
            breath_change(&[Some(-20.0), Some(-10.0), None, Some(-5.0)], &[Some(-5.0), Some(-12.0), Some(0.0), None]);
        assert_eq!(change, [MAX_BREATH_DB, -2.0, 0.0, 0.0]);
    }

    #[test]
    fn pitch_statistics_find_the_median_and_a_steady_tone_has_no_spread() {
        let stats = pitch_stats(&crate::analysis::synthetic::sine(200.0, 16_000, 1.0, 0.3), 16_000).unwrap();
        assert!((stats.median_hz - 200.0).abs() < 2.0, "{stats:?}");
        assert!(stats.log_std < 0.02, "{stats:?}");
        assert!(pitch_stats(&vec![0.0; 16_000], 16_000).is_none());
    }
}
