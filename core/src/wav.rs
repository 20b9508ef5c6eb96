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

/// The most sample data a WAV file can describe: its sizes are 32-bit, and the RIFF size counts the 36 header
/// bytes after it.
pub const MAX_WAV_DATA_BYTES: u64 = u32::MAX as u64 - 36;

/// A WAV file that appears at its path only when complete: samples go to a temporary file in the same folder
/// (see [`crate::durable`]), which [`AtomicWav::finish`] syncs and renames into place. Dropped without `finish`, or
/// when `finish` fails (a full disk), the temporary file is removed.
pub struct AtomicWav {
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
    temp_path: PathBuf,
    path: PathBuf,
    frames: u64,
    encoding: WavEncoding,
    done: bool,
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
        if path.is_dir() {
            return Err(Error::Write {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a folder; give a file name"),
            });
        }
        let (file, temp_path) = crate::durable::create_temp_beside(path)
            .map_err(|source| Error::Write { path: path.to_path_buf(), source })?;
        let (bits_per_sample, sample_format) = match encoding {
            WavEncoding::Pcm16 => (16, hound::SampleFormat::Int),
            WavEncoding::Float32 => (32, hound::SampleFormat::Float),
        };
        let spec = hound::WavSpec { channels: 1, sample_rate: sample_rate_hz, bits_per_sample, sample_format };
        let writer = hound::WavWriter::new(std::io::BufWriter::new(file), spec).map_err(|source| {
            crate::durable::discard(&temp_path);
            match source {
                hound::Error::IoError(io) => Error::Write { path: path.to_path_buf(), source: io },
                other => Error::Wav { path: path.to_path_buf(), source: other },
            }
        })?;
        Ok(AtomicWav { writer: Some(writer), temp_path, path: path.to_path_buf(), frames: 0, encoding, done: false })
    }

    /// Append float samples (-1..1). Past the 4 GiB a WAV header can describe, this fails (instead of writing a
    /// header whose sizes wrapped around).
    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let bytes_per_sample = match self.encoding {
            WavEncoding::Pcm16 => 2,
            WavEncoding::Float32 => 4,
        };
        if (self.frames + samples.len() as u64) * bytes_per_sample > MAX_WAV_DATA_BYTES {
            return Err(Error::Write {
                path: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    "a WAV file holds at most 4 GiB of samples; split the text, or stream raw PCM with `--raw -o -`",
                ),
            });
        }
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

    /// Complete the header, sync to disk, and rename into place. On failure nothing is left behind.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.done = true;
        if let Some(writer) = self.writer.take() {
            if let Err(source) = writer.finalize() {
                crate::durable::discard(&self.temp_path);
                return Err(match source {
                    hound::Error::IoError(io) => Error::Write { path: self.path.clone(), source: io },
                    other => Error::Wav { path: self.path.clone(), source: other },
                });
            }
        }
        crate::durable::commit(&self.temp_path, &self.path)
            .map_err(|source| Error::Write { path: self.path.clone(), source })?;
        Ok(self.path.clone())
    }
}

impl Drop for AtomicWav {
    fn drop(&mut self) {
        if !self.done {
            drop(self.writer.take());
            crate::durable::discard(&self.temp_path);
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
    // The largest whole number of samples a header can declare: readers that check the data size against the
    // block alignment (hound, and this program's own reader) accept it; the stream simply ends sooner.
    let data_bytes = (MAX_WAV_DATA_BYTES as u32) / u32::from(bytes_per_sample) * u32::from(bytes_per_sample);
    h[4..8].copy_from_slice(&(data_bytes + 36).to_le_bytes());
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
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
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

/// A WAV file read as mono.
#[derive(Debug, Clone, PartialEq)]
pub struct MonoAudio {
    /// Samples in -1..1, channels averaged.
    pub samples: Vec<f32>,
    /// Sample rate, Hz.
    pub rate: u32,
    /// Channels in the file.
    pub channels: u16,
    /// True when the file is longer than the limit it was read with (only the start was read).
    pub truncated: bool,
}

/// Reference recordings are analysed from at most this much of their start: ten minutes describe a voice as well
/// as ten hours, and a ten-hour file would otherwise be read whole (gigabytes of samples).
pub const REFERENCE_MAX_SECONDS: f64 = 600.0;

/// Read a WAV file as mono f32 (channels averaged) and its sample rate.
pub fn read_wav_mono(path: &Path) -> Result<(Vec<f32>, u32)> {
    read_wav_mono_capped(path, None).map(|audio| (audio.samples, audio.rate))
}

/// Read at most `max_seconds` from the start of a WAV file as mono, streaming (the file is never held whole).
/// A header streamed by `speak -o -` declares the largest size there is; its data simply ends early, and that is
/// not an error. Any other file that ends before its declared data is refused as truncated.
pub fn read_wav_mono_capped(path: &Path, max_seconds: Option<f64>) -> Result<MonoAudio> {
    let file = std::fs::File::open(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    let reader = hound::WavReader::new(std::io::BufReader::new(file))
        .map_err(|source| Error::WavRead { path: path.to_path_buf(), source })?;
    let spec = reader.spec();
    check_spec(path, spec)?;
    let channels = usize::from(spec.channels.max(1));
    let bytes_per_sample = u64::from(spec.bits_per_sample.div_ceil(8));
    let declared_frames = u64::from(reader.len()) / channels as u64;
    let streamed = u64::from(reader.len()) * bytes_per_sample >= MAX_WAV_DATA_BYTES - 64;
    let limit_frames = max_seconds.map(|s| (s.max(0.0) * f64::from(spec.sample_rate)) as u64);
    let frames_to_read = limit_frames.map_or(declared_frames, |l| l.min(declared_frames));
    // Reserve for what is surely there (a streamed header's size is a guess), growing as samples come.
    let mut samples = Vec::with_capacity(if streamed { 0 } else { frames_to_read.min(1 << 24) as usize });
    let mut frame = 0.0f32;
    let mut in_frame = 0usize;
    let mut push = |value: f32| {
        frame += value;
        in_frame += 1;
        if in_frame == channels {
            samples.push(frame / channels as f32);
            frame = 0.0;
            in_frame = 0;
        }
    };
    let wanted = (frames_to_read as usize).saturating_mul(channels);
    // hound reports the end of a short file as an `Other` I/O error ("Failed to read enough bytes.").
    let ended_early = |e: &hound::Error| {
        streamed
            && matches!(e, hound::Error::IoError(io)
                if matches!(io.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::Other))
    };
    let read_error = |source: hound::Error| match &source {
        hound::Error::IoError(io)
            if matches!(io.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::Other) =>
        {
            Error::WavFormat {
                path: path.to_path_buf(),
                problem: "ends before the samples its header declares (cut short?)".into(),
            }
        }
        _ => Error::WavRead { path: path.to_path_buf(), source },
    };
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for sample in reader.into_samples::<f32>().take(wanted) {
                match sample {
                    Ok(v) => push(v),
                    Err(e) if ended_early(&e) => break,
                    Err(e) => return Err(read_error(e)),
                }
            }
        }
        hound::SampleFormat::Int => {
            // check_spec allows 8-32 bits only, so the shift cannot overflow.
            let scale = 1.0 / (1i64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            for sample in reader.into_samples::<i32>().take(wanted) {
                match sample {
                    Ok(v) => push(v as f32 * scale),
                    Err(e) if ended_early(&e) => break,
                    Err(e) => return Err(read_error(e)),
                }
            }
        }
    }
    let truncated = limit_frames.is_some_and(|l| declared_frames > l && samples.len() as u64 >= l);
    Ok(MonoAudio { samples, rate: spec.sample_rate, channels: spec.channels, truncated })
}

/// Read a reference recording: at most [`REFERENCE_MAX_SECONDS`] from its start, with a warning when there was
/// more.
pub fn read_reference(path: &Path) -> Result<MonoAudio> {
    let audio = read_wav_mono_capped(path, Some(REFERENCE_MAX_SECONDS))?;
    if audio.truncated {
        tracing::warn!(
            "{}: longer than {} minutes; only its first {} minutes are used",
            path.display(),
            REFERENCE_MAX_SECONDS / 60.0,
            REFERENCE_MAX_SECONDS / 60.0
        );
    }
    Ok(audio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_declaring_an_absurd_rate_is_refused_before_anything_is_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        // A valid 44-byte header: 8-bit mono at 4294967291 Hz, byte rate equal to it, no data.
        let header = header(4_294_967_291, 8, 1, 0);
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

    /// A 44-byte mono WAV header (sizes wrap where a hostile header would overflow them).
    fn header(rate: u32, bits: u16, format_tag: u16, data_bytes: u32) -> Vec<u8> {
        let block = bits.div_ceil(8);
        let mut h = Vec::new();
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&data_bytes.wrapping_add(36).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&format_tag.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
        h.extend_from_slice(&block.to_le_bytes());
        h.extend_from_slice(&bits.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&data_bytes.to_le_bytes());
        h
    }

    #[test]
    fn a_header_declaring_more_than_64_bits_is_refused_not_shifted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.wav");
        let mut bytes = header(16000, 72, 1, 18);
        bytes.extend_from_slice(&[0u8; 18]);
        std::fs::write(&path, bytes).unwrap();
        let err = read_wav_mono(&path).unwrap_err().to_string();
        assert!(err.contains("wide.wav"), "{err}");
    }

    #[test]
    fn a_streamed_header_declares_whole_samples_and_reads_back_to_its_end() {
        for encoding in [WavEncoding::Pcm16, WavEncoding::Float32] {
            let h = streaming_wav_header(16000, encoding);
            let data = u32::from_le_bytes(h[40..44].try_into().unwrap());
            let block = u32::from_le_bytes([h[32], h[33], 0, 0]);
            assert_eq!(data % block, 0, "{encoding:?}");
            assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), data + 36);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("stream.wav");
            let mut bytes = h.to_vec();
            write_samples(&mut bytes, &[0.25; 1000], encoding).unwrap();
            std::fs::write(&path, bytes).unwrap();
            let (samples, rate) = read_wav_mono(&path).unwrap();
            assert_eq!((samples.len(), rate), (1000, 16000));
        }
    }

    #[test]
    fn a_truncated_ordinary_file_is_still_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.wav");
        let mut bytes = header(16000, 16, 1, 2000);
        bytes.extend_from_slice(&[0u8; 1000]);
        std::fs::write(&path, bytes).unwrap();
        assert!(read_wav_mono(&path).is_err());
    }

    #[test]
    fn reading_with_a_limit_reads_only_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.wav");
        let mut wav = AtomicWav::create(&path, 8000).unwrap();
        wav.write(&vec![0.1; 8000 * 3]).unwrap();
        wav.finish().unwrap();
        let audio = read_wav_mono_capped(&path, Some(1.0)).unwrap();
        assert!(audio.truncated);
        assert_eq!(audio.samples.len(), 8000);
        assert!(!read_wav_mono_capped(&path, Some(5.0)).unwrap().truncated);
    }

    #[test]
    fn a_wav_past_four_gib_is_refused_instead_of_wrapping_its_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.wav");
        let mut wav = AtomicWav::create(&path, 22050).unwrap();
        wav.frames = MAX_WAV_DATA_BYTES / 2 - 10;
        let err = wav.write(&[0.0; 100]).unwrap_err().to_string();
        assert!(err.contains("huge.wav") && err.contains("4 GiB"), "{err}");
        drop(wav);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left behind");
    }

    #[test]
    fn a_failure_when_finishing_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut wav = AtomicWav::create(&path, 22050).unwrap();
        wav.write(&[0.1; 100]).unwrap();
        // The rename cannot replace a folder that appeared meanwhile (as a full disk makes finishing fail).
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        assert!(wav.finish().is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("out.wav")], "only the folder remains");
    }
}
