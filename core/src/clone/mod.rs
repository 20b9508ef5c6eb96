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

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::matching::{formant_reach, Adjust, Goal, OfflineMatch};
use crate::piper::{PiperVoice, SynthesisOptions};
use crate::profile::VoiceProfile;
use crate::settings::Settings;
use crate::speaker::{Embedding, SpeakerEncoder};
use crate::vocoder::Analysis;

mod measure;

pub use measure::{
    apply_equaliser, band_hz, breath_change, equaliser, long_term_spectrum, measurable_breathiness, pitch_stats,
    pitch_stats_of, signal_to_noise_db, PitchStats, BANDS,
};
pub(crate) use measure::{
    band_bins, band_mean, carried_top_hz, equaliser_into, folded_ln, voiced_f0s, MIN_VOICED_FRAMES,
};

/// Formant scales tried by the fit.
const FORMANT_CANDIDATES: &[f32] = &[0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.35];
/// What the base voice says while a fit is measured (Harvard sentences, public domain).
pub const PROBE_TEXT: &str = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue \
    background. It is easy to tell the depth of a well. These days a chicken leg is a rare dish.";

/// The cloning method's version: part of the cache's file names.
pub const METHOD_VERSION: u32 = 10;
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
