//! Audio output: WAV files written atomically, WAV or raw PCM streamed to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Convert a float sample in -1..1 to 16-bit PCM, as Piper does (scale by 32767, clip).
pub fn to_i16(sample: f32) -> i16 {
    (sample * 32767.0).clamp(-32767.0, 32767.0) as i16
}

/// Sample encoding of a WAV output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WavEncoding {
    /// 16-bit signed PCM.
    #[default]
    Pcm16,
    /// 32-bit IEEE float.
    Float32,
}

impl From<crate::config::OutputFormat> for WavEncoding {
    fn from(format: crate::config::OutputFormat) -> Self {
        match format {
            crate::config::OutputFormat::Wav => WavEncoding::Pcm16,
            crate::config::OutputFormat::WavF32 => WavEncoding::Float32,
        }
    }
}

/// A WAV file that appears at its path only when complete: samples go to a temporary file in the same folder,
/// which [`AtomicWav::finish`] renames into place. Dropped without `finish`, the temporary file is removed.
pub struct AtomicWav {
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    temp_path: PathBuf,
    path: PathBuf,
    frames: u64,
    encoding: WavEncoding,
}

impl std::fmt::Debug for AtomicWav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicWav").field("path", &self.path).field("frames", &self.frames).finish()
    }
}

impl AtomicWav {
    /// Start a 16-bit mono WAV at `sample_rate_hz`. Fails at once if the folder is not writable.
    pub fn create(path: &Path, sample_rate_hz: u32) -> Result<AtomicWav> {
        Self::create_with(path, sample_rate_hz, WavEncoding::Pcm16)
    }

    /// Start a mono WAV with the given sample encoding.
    pub fn create_with(path: &Path, sample_rate_hz: u32, encoding: WavEncoding) -> Result<AtomicWav> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if path.is_dir() {
            return Err(Error::Write {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a folder; give a file name"),
            });
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out.wav".into());
        let temp_path = dir.join(format!(".{file_name}.{}.partial", std::process::id()));
        let (bits_per_sample, sample_format) = match encoding {
            WavEncoding::Pcm16 => (16, hound::SampleFormat::Int),
            WavEncoding::Float32 => (32, hound::SampleFormat::Float),
        };
        let spec = hound::WavSpec { channels: 1, sample_rate: sample_rate_hz, bits_per_sample, sample_format };
        let writer = hound::WavWriter::create(&temp_path, spec).map_err(|source| match source {
            hound::Error::IoError(io) => Error::Write { path: path.to_path_buf(), source: io },
            other => Error::Wav { path: path.to_path_buf(), source: other },
        })?;
        Ok(AtomicWav { writer: Some(writer), temp_path, path: path.to_path_buf(), frames: 0, encoding })
    }

    /// Append float samples (-1..1).
    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let wav_error = |source| Error::Wav { path: self.path.clone(), source };
        match self.encoding {
            WavEncoding::Pcm16 => {
                let mut i16_writer = writer.get_i16_writer(samples.len() as u32);
                for &s in samples {
                    i16_writer.write_sample(to_i16(s));
                }
                i16_writer.flush().map_err(wav_error)?;
            }
            WavEncoding::Float32 => {
                for &s in samples {
                    writer.write_sample(s).map_err(wav_error)?;
                }
            }
        }
        self.frames += samples.len() as u64;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Complete the header, sync, and rename into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        if let Some(writer) = self.writer.take() {
            writer.finalize().map_err(|source| Error::Wav { path: self.path.clone(), source })?;
        }
        std::fs::rename(&self.temp_path, &self.path)
            .map_err(|source| Error::Write { path: self.path.clone(), source })?;
        Ok(self.path.clone())
    }
}

impl Drop for AtomicWav {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// A 44-byte WAV header for a stream of unknown length (sizes set to the maximum, which players accept).
pub fn streaming_wav_header(sample_rate_hz: u32, encoding: WavEncoding) -> [u8; 44] {
    let mut h = [0u8; 44];
    let (format_tag, bytes_per_sample) = match encoding {
        WavEncoding::Pcm16 => (1u16, 2u16),
        WavEncoding::Float32 => (3u16, 4u16),
    };
    let byte_rate = sample_rate_hz * u32::from(bytes_per_sample);
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&format_tag.to_le_bytes());
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&sample_rate_hz.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&bytes_per_sample.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&(bytes_per_sample * 8).to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&(u32::MAX - 36).to_le_bytes());
    h
}

/// Write samples in `encoding` (little-endian) to `out`.
pub fn write_samples(out: &mut impl Write, samples: &[f32], encoding: WavEncoding) -> std::io::Result<()> {
    match encoding {
        WavEncoding::Pcm16 => write_s16le(out, samples),
        WavEncoding::Float32 => {
            let mut bytes = Vec::with_capacity(samples.len() * 4);
            for &s in samples {
                bytes.extend_from_slice(&s.to_le_bytes());
            }
            out.write_all(&bytes)
        }
    }
}

/// Resample a whole clip (mono) from `from_hz` to `to_hz` with rubato's FFT resampler; the resampler's delay is
/// trimmed, so the output lines up with the input and has `len * to / from` samples (rounded up). Allocates.
pub fn resample(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>> {
    use rubato::audioadapter_buffers::direct::InterleavedSlice;
    use rubato::{Fft, FixedSync, Resampler};
    if from_hz == to_hz || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let setting = |problem: String| Error::Setting { key: "output.sample_rate".into(), problem };
    let mut resampler = Fft::<f32>::new(from_hz as usize, to_hz as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| setting(format!("cannot resample {from_hz} Hz to {to_hz} Hz: {e}")))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| setting(e.to_string()))?;
    let output =
        resampler.process_all(&input, samples.len(), None).map_err(|e| setting(format!("resampling failed: {e}")))?;
    let mut data = output.take_data();
    // rubato rounds the length up through a float ratio; keep exactly len * to / from (rounded).
    let expected = ((samples.len() as u64 * u64::from(to_hz) + u64::from(from_hz) / 2) / u64::from(from_hz)) as usize;
    data.truncate(expected);
    Ok(data)
}

/// Write samples as s16le to `out`.
pub fn write_s16le(out: &mut impl Write, samples: &[f32]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    for &s in samples {
        bytes.extend_from_slice(&to_i16(s).to_le_bytes());
    }
    out.write_all(&bytes)
}

/// Sample rates a WAV file may declare, Hz.
pub const WAV_RATES: std::ops::RangeInclusive<u32> = 8_000..=384_000;
/// Channels a WAV file may have.
pub const WAV_CHANNELS: std::ops::RangeInclusive<u16> = 1..=8;

/// Refuse what no real recording declares (a header claiming 4 GHz would otherwise make the resampler allocate
/// gigabytes): 8-384 kHz, 1-8 channels, 8/16/24/32-bit integer or 32-bit float samples.
fn check_spec(path: &Path, spec: hound::WavSpec) -> Result<()> {
    let problem = if !WAV_RATES.contains(&spec.sample_rate) {
        Some(format!("declares {} Hz; WAV files of 8000-384000 Hz are read", spec.sample_rate))
    } else if !WAV_CHANNELS.contains(&spec.channels) {
        Some(format!("declares {} channels; 1-8 are read", spec.channels))
    } else {
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 8 | 16 | 24 | 32) | (hound::SampleFormat::Float, 32) => None,
            (format, bits) => Some(format!(
                "has {bits}-bit {} samples; 8/16/24/32-bit integer or 32-bit float are read",
                if format == hound::SampleFormat::Float { "float" } else { "integer" }
            )),
        }
    };
    match problem {
        Some(problem) => Err(Error::WavFormat { path: path.to_path_buf(), problem }),
        None => Ok(()),
    }
}

/// Read a WAV file as mono f32 (channels averaged) and its sample rate.
pub fn read_wav_mono(path: &Path) -> Result<(Vec<f32>, u32)> {
    let reader = hound::WavReader::open(path).map_err(|source| Error::WavRead { path: path.to_path_buf(), source })?;
    let spec = reader.spec();
    check_spec(path, spec)?;
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|source| Error::WavRead { path: path.to_path_buf(), source })?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<std::result::Result<_, _>>()
                .map_err(|source| Error::WavRead { path: path.to_path_buf(), source })?
        }
    };
    let mono = samples.chunks(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect();
    Ok((mono, spec.sample_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_declaring_an_absurd_rate_is_refused_before_anything_is_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        // A valid 44-byte header: 8-bit mono at 4294967291 Hz, byte rate equal to it, no data.
        let rate = 4_294_967_291u32;
        let mut header = Vec::new();
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&36u32.to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&16u32.to_le_bytes());
        header.extend_from_slice(&1u16.to_le_bytes());
        header.extend_from_slice(&1u16.to_le_bytes());
        header.extend_from_slice(&rate.to_le_bytes());
        header.extend_from_slice(&rate.to_le_bytes());
        header.extend_from_slice(&1u16.to_le_bytes());
        header.extend_from_slice(&8u16.to_le_bytes());
        header.extend_from_slice(b"data");
        header.extend_from_slice(&0u32.to_le_bytes());
        std::fs::write(&path, header).unwrap();
        let err = read_wav_mono(&path).unwrap_err().to_string();
        assert!(err.contains("x.wav") && err.contains("4294967291 Hz") && err.contains("8000-384000"), "{err}");
    }

    #[test]
    fn atomic_wav_appears_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut wav = AtomicWav::create(&path, 22050).unwrap();
        wav.write(&[0.0, 0.5, -0.5, 1.0]).unwrap();
        assert!(!path.exists());
        wav.finish().unwrap();
        let (samples, rate) = read_wav_mono(&path).unwrap();
        assert_eq!(rate, 22050);
        assert_eq!(samples.len(), 4);
        assert!((samples[1] - 0.5).abs() < 1e-3);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn abandoned_wav_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut wav = AtomicWav::create(&path, 16000).unwrap();
        wav.write(&[0.1; 100]).unwrap();
        drop(wav);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn float_wav_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.wav");
        let mut wav = AtomicWav::create_with(&path, 48000, WavEncoding::Float32).unwrap();
        wav.write(&[0.125, -0.5]).unwrap();
        wav.finish().unwrap();
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().sample_format, hound::SampleFormat::Float);
        assert_eq!(read_wav_mono(&path).unwrap().0, vec![0.125, -0.5]);
    }

    #[test]
    fn resampling_keeps_duration_frequency_and_alignment() {
        // A 440 Hz tone at 22050 Hz -> 48000 Hz: length scales, and the zero crossings stay 440 Hz apart.
        let tone: Vec<f32> =
            (0..22050).map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 22050.0).sin() * 0.5).collect();
        let out = resample(&tone, 22050, 48000).unwrap();
        assert_eq!(out.len(), 48000);
        let crossings = out[4800..43200].windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!((350..=353).contains(&crossings), "{crossings} rising crossings in 0.8 s of 440 Hz");
        // Alignment: the output at time t matches the input at time t.
        let t = 0.5;
        let expected = (2.0 * std::f32::consts::PI * 440.0 * t).sin() * 0.5;
        assert!((out[(t * 48000.0) as usize] - expected).abs() < 0.02);
    }

    #[test]
    fn unwritable_folder_fails_at_create() {
        let err = AtomicWav::create(Path::new("/nonexistent-dir/x.wav"), 22050).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.wav"), "{err}");
    }

    #[test]
    fn streaming_header_parses() {
        let mut bytes = streaming_wav_header(22050, WavEncoding::Pcm16).to_vec();
        write_s16le(&mut bytes, &[0.25, -0.25]).unwrap();
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 22050);
        assert_eq!(i16::from_le_bytes([bytes[44], bytes[45]]), to_i16(0.25));
    }
}
