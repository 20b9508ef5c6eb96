//! Voice profiles: what a target voice sounds like, measured from reference recordings, stored as YAML in the
//! voice library (`$XDG_DATA_HOME/demod-voice/profiles/NAME.yaml`).
//!
//! A profile holds the pitch statistics (median F0 and range over voiced frames, from YIN), the voiced ratio,
//! an absolute formant scale (vocal-tract length, from the long-term LPC envelope), how much voiced speech was
//! used, and each source file's SHA-256, so a profile can be traced back to its recordings.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::envelope::{absolute_scale, EnvelopeAnalyzer};
use crate::analysis::pitch::{PitchEstimate, Yin, F0_MAX, F0_MIN};
use crate::error::{Error, Result};

/// Profiles need at least this much voiced speech, seconds.
pub const MIN_VOICED_SECONDS: f32 = 3.0;
/// Rate the analysis runs at.
const ANALYSIS_RATE: u32 = 24_000;
/// Current profile layout.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// A reference recording a profile was measured from.
pub struct SourceInfo {
    /// The recording.
    pub path: PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its sample rate, Hz.
    pub sample_rate: u32,
    /// Its channels.
    pub channels: u16,
    /// Its length, seconds.
    pub seconds: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// A voice profile: what a reference voice measures as, for conversion toward it.
pub struct VoiceProfile {
    /// The layout version.
    pub schema_version: u32,
    /// Its name in the library.
    pub name: String,
    /// Median F0 of voiced frames, Hz.
    pub median_f0_hz: f32,
    /// Spread of F0 between the 10th and 90th percentile, semitones.
    pub f0_range_semitones: f32,
    /// 10th percentile of F0, Hz.
    pub f0_p10_hz: f32,
    /// 90th percentile of F0, Hz.
    pub f0_p90_hz: f32,
    /// Share of analysed (non-silent) frames that were voiced.
    pub voiced_ratio: f32,
    /// Voiced speech analysed, seconds.
    pub voiced_seconds: f32,
    /// Absolute formant scale (1.0 = a neutral 17.5 cm vocal tract; higher = shorter tract, brighter voice).
    pub formant_scale: f32,
    /// The recordings it was measured from.
    pub sources: Vec<SourceInfo>,
    /// The speaker embedding of the recordings (unit length), when it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<crate::speaker::Embedding>,
    /// What offline matching needs beyond the median and the formant scale (absent in older profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timbre: Option<Timbre>,
    /// The profile's tone colour per installed tone colour model (measured on first use with that model).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tones: std::collections::BTreeMap<String, Vec<f32>>,
}

/// A profile's pitch spread and long-term spectrum, for offline matching ([`crate::matching`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timbre {
    /// Standard deviation of ln F0 (octave slips folded), as [`crate::clone::pitch_stats`] measures it.
    pub f0_log_std: f32,
    /// Long-term average spectrum of the voiced frames, dB per [`crate::clone::band_hz`] band.
    pub spectrum_db: Vec<f32>,
    /// The highest frequency every recording carries, Hz.
    pub top_hz: f32,
    /// Breathiness (the voiced frames' noise share per band, dB), when the recordings are clean enough to tell it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breath_db: Option<crate::vocoder::Breathiness>,
}

impl Timbre {
    /// The long-term spectrum as the live converter takes it, when it has the expected bands.
    pub fn spectrum(&self) -> Option<crate::convert::timbre::TargetSpectrum> {
        let bands: [f32; crate::clone::BANDS] = self.spectrum_db.as_slice().try_into().ok()?;
        bands.iter().all(|b| b.is_finite()).then_some((bands, self.top_hz))
    }
}

/// The breathiness of several recordings: per band, the mean over those that tell it, weighted by length;
/// `None` when none does.
fn breathiness_of(measured: &[(crate::vocoder::Breathiness, f32)]) -> Option<crate::vocoder::Breathiness> {
    let bands: crate::vocoder::Breathiness = std::array::from_fn(|b| {
        let told = measured.iter().filter_map(|(breath, seconds)| breath[b].map(|db| (db, *seconds)));
        let (sum, weight) = told.fold((0.0f32, 0.0f32), |(sum, w), (db, s)| (sum + db * s, w + s));
        (weight > 0.0).then(|| sum / weight)
    });
    bands.iter().any(Option::is_some).then_some(bands)
}

fn profile_error(path: &Path, problem: impl Into<String>) -> Error {
    Error::Profile { path: path.to_path_buf(), problem: problem.into() }
}

impl VoiceProfile {
    /// Measure a profile from one or more recordings (WAV, any rate, mono or stereo). Nothing is written.
    pub fn from_recordings(name: &str, paths: &[PathBuf]) -> Result<VoiceProfile> {
        validate_name(name)?;
        if paths.is_empty() {
            return Err(Error::Setting {
                key: "profile".into(),
                problem: "give at least one reference recording".into(),
            });
        }
        let mut yin = Yin::new(ANALYSIS_RATE, F0_MIN, F0_MAX);
        let mut envelope = EnvelopeAnalyzer::new(ANALYSIS_RATE);
        let mut f0s: Vec<f32> = Vec::new();
        let mut audible_frames = 0usize;
        let mut sources = Vec::new();
        let mut spectra: Vec<(Vec<f32>, f32, f32)> = Vec::new();
        let mut breaths: Vec<(crate::vocoder::Breathiness, f32)> = Vec::new();
        let step = (ANALYSIS_RATE / 200) as usize; // 5 ms
        for path in paths {
            let audio = crate::wav::read_reference(path).map_err(|e| match e {
                Error::WavRead { source, .. } => {
                    profile_error(path, format!("not a readable WAV file ({source}); convert it to WAV first"))
                }
                other => other,
            })?;
            let (samples, rate, channels) = (audio.samples, audio.rate, audio.channels);
            let seconds = samples.len() as f32 / rate as f32;
            if let Some((spectrum, top_hz)) = crate::clone::long_term_spectrum(&samples, rate)? {
                spectra.push((spectrum, top_hz, seconds));
            }
            let audio = crate::wav::resample(&samples, rate, ANALYSIS_RATE)?;
            let analysis = crate::vocoder::Analysis::of(&audio, ANALYSIS_RATE)?;
            let top_hz = crate::clone::carried_top_hz(rate, ANALYSIS_RATE);
            if let Some(breath) = crate::clone::measurable_breathiness(&audio, ANALYSIS_RATE, &analysis, top_hz) {
                breaths.push((breath, seconds));
            }
            let frame_len = yin.frame_len().max(envelope.frame_len());
            let mut end = frame_len;
            let mut frame_idx = 0usize;
            while end <= audio.len() {
                let frame = &audio[end - frame_len..end];
                let PitchEstimate { f0, rms, .. } = yin.estimate(frame);
                if rms > 10f32.powf(-45.0 / 20.0) {
                    audible_frames += 1;
                }
                if let Some(f0) = f0 {
                    f0s.push(f0);
                    if frame_idx.is_multiple_of(4) {
                        envelope.add_frame(frame);
                    }
                }
                frame_idx += 1;
                end += step;
            }
            sources.push(SourceInfo {
                path: path.canonicalize().unwrap_or_else(|_| path.clone()),
                sha256: crate::assets::sha256_hex(path)?,
                sample_rate: rate,
                channels,
                seconds,
            });
        }
        let voiced_seconds = f0s.len() as f32 * step as f32 / ANALYSIS_RATE as f32;
        let shown = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        if voiced_seconds < MIN_VOICED_SECONDS {
            return Err(profile_error(
                &paths[0],
                format!(
                    "only {voiced_seconds:.1} s of voiced speech in {shown} (a profile needs at least {MIN_VOICED_SECONDS} s); \
                     give a longer recording of someone speaking"
                ),
            ));
        }
        let timbre = crate::clone::pitch_stats_of(f0s.clone()).filter(|_| !spectra.is_empty()).map(|pitch| {
            // The recordings' spectra averaged (in dB, weighted by length); the band all of them carry.
            let total: f32 = spectra.iter().map(|(_, _, seconds)| seconds).sum::<f32>().max(1e-6);
            let spectrum_db = (0..crate::clone::BANDS)
                .map(|b| spectra.iter().map(|(db, _, seconds)| db[b] * seconds).sum::<f32>() / total)
                .collect();
            let top_hz = spectra.iter().map(|(_, top, _)| *top).fold(f32::INFINITY, f32::min);
            Timbre { f0_log_std: pitch.log_std, spectrum_db, top_hz, breath_db: breathiness_of(&breaths) }
        });
        f0s.sort_by(f32::total_cmp);
        let pct = |p: f32| f0s[((f0s.len() - 1) as f32 * p).round() as usize];
        let (p10, median, p90) = (pct(0.1), pct(0.5), pct(0.9));
        let formant_scale = envelope
            .envelope()
            .and_then(|env| absolute_scale(&env))
            .ok_or_else(|| profile_error(&paths[0], "could not estimate the formant scale"))?;
        Ok(VoiceProfile {
            schema_version: SCHEMA_VERSION,
            name: name.to_string(),
            median_f0_hz: median,
            f0_range_semitones: 12.0 * (p90 / p10).log2(),
            f0_p10_hz: p10,
            f0_p90_hz: p90,
            voiced_ratio: f0s.len() as f32 / audible_frames.max(1) as f32,
            voiced_seconds,
            formant_scale,
            sources,
            embedding: None,
            timbre,
            tones: Default::default(),
        })
    }

    /// Where a profile named `name` lives.
    pub fn path_in(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.yaml"))
    }

    /// Write to `dir/NAME.yaml` atomically (temporary file, then rename).
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.to_path_buf(), source })?;
        let path = Self::path_in(dir, &self.name);
        let text = serde_saphyr::to_string(self).map_err(|e| profile_error(&path, e.to_string()))?;
        crate::durable::write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }

    /// Read a profile file.
    pub fn load(path: &Path) -> Result<VoiceProfile> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        let profile: VoiceProfile = serde_saphyr::from_str(&text)
            .map_err(|e| profile_error(path, e.to_string().lines().next().unwrap_or("invalid profile").to_string()))?;
        if profile.schema_version > SCHEMA_VERSION {
            return Err(profile_error(
                path,
                format!("schema_version {} is newer than this demod-voice reads", profile.schema_version),
            ));
        }
        if !(profile.median_f0_hz.is_finite() && profile.median_f0_hz > 0.0 && profile.formant_scale > 0.0) {
            return Err(profile_error(path, "median_f0_hz and formant_scale must be positive"));
        }
        Ok(profile)
    }

    /// A profile by name from `dir`, or from a path.
    pub fn find(name_or_path: &str, dir: &Path) -> Result<VoiceProfile> {
        let as_path = Path::new(name_or_path);
        if name_or_path.ends_with(".yaml") || name_or_path.contains('/') {
            return Self::load(as_path);
        }
        let path = Self::path_in(dir, name_or_path);
        if path.is_file() {
            return Self::load(&path);
        }
        let names = list(dir).into_iter().map(|(name, _)| name).collect::<Vec<_>>().join(", ");
        Err(Error::ProfileNotFound {
            name: name_or_path.to_string(),
            available: if names.is_empty() { "none".into() } else { names },
        })
    }

    /// The converter target this profile describes: its median pitch and formant scale, and its pitch spread and
    /// long-term spectrum when measured (profiles made before those were stored have neither).
    pub fn target(&self) -> crate::convert::dsp::Target {
        crate::convert::dsp::Target {
            median_f0: self.median_f0_hz,
            formant_scale: self.formant_scale,
            f0_log_std: self.timbre.as_ref().map(|t| t.f0_log_std),
            spectrum: self.timbre.as_ref().and_then(Timbre::spectrum),
        }
    }
}

/// Profiles in `dir`: (name, path), sorted.
pub fn list(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .filter_map(|p| Some((p.file_stem()?.to_string_lossy().into_owned(), p)))
                .filter(|(name, _)| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Setting {
            key: "profile name".into(),
            problem: format!("`{name}` must be 1-64 letters, digits, '-', '_' or '.' (and not start with '.')"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, samples: &[f32], rate: u32, channels: u16) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for s in samples {
            for _ in 0..channels {
                writer.write_sample((s * 32767.0) as i16).unwrap();
            }
        }
        writer.finalize().unwrap();
    }

    fn vowel(f0: f32, rate: u32, seconds: f32) -> Vec<f32> {
        crate::analysis::envelope::tests::synthetic_vowel(f0, &[700.0, 1200.0, 2500.0, 3500.0], rate, seconds)
    }

    #[test]
    fn a_profile_measures_pitch_and_round_trips_through_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("ref.wav");
        write_wav(&wav, &vowel(180.0, 44_100, 4.0), 44_100, 2);
        let profile = VoiceProfile::from_recordings("alice", &[wav]).unwrap();
        assert!((crate::analysis::pitch::cents(profile.median_f0_hz, 180.0)).abs() < 10.0, "{profile:?}");
        assert!(profile.voiced_ratio > 0.9 && profile.voiced_seconds > 3.0);
        assert_eq!(profile.sources[0].sha256.len(), 64);
        let saved = profile.save(&dir.path().join("profiles")).unwrap();
        assert_eq!(VoiceProfile::load(&saved).unwrap(), profile);
        assert_eq!(VoiceProfile::find("alice", &dir.path().join("profiles")).unwrap().name, "alice");
    }

    #[test]
    fn silence_noise_and_short_clips_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let silence = dir.path().join("silence.wav");
        write_wav(&silence, &vec![0.0; 5 * 16_000], 16_000, 1);
        let noise: Vec<f32> = crate::analysis::synthetic::noise(9, 5 * 16_000).iter().map(|v| v * 0.5).collect();
        let noisy = dir.path().join("noise.wav");
        write_wav(&noisy, &noise, 16_000, 1);
        let short = dir.path().join("short.wav");
        write_wav(&short, &vowel(150.0, 22_050, 0.5), 22_050, 1);
        for path in [silence, noisy, short] {
            let err = VoiceProfile::from_recordings("x", std::slice::from_ref(&path)).unwrap_err().to_string();
            assert!(err.contains("voiced speech") && err.contains(&*path.to_string_lossy()), "{err}");
        }
        let corrupt = dir.path().join("corrupt.wav");
        std::fs::write(&corrupt, b"RIFF....WAVEjunk").unwrap();
        let err = VoiceProfile::from_recordings("x", &[corrupt]).unwrap_err().to_string();
        assert!(err.contains("corrupt.wav") && err.contains("WAV"), "{err}");
        assert!(VoiceProfile::from_recordings("bad/name", &[]).is_err());
    }
}
