//! `preprocess`: recordings + transcripts -> a dataset the Piper trainer (`piper.train`) reads.
//!
//! Input: the LJSpeech layout, `wavs/` and `metadata.csv` with `id|text`, `id|text|normalized` or (multi-speaker)
//! `id|speaker|text`. Output: `metadata.csv` (`id|text`, or `id|speaker|text`), processed `wavs/` (mono, target
//! rate, silence trimmed, loudness normalised, 16-bit), `dataset.jsonl` (one utterance a line: id, speaker, text,
//! phonemes, phoneme ids, audio path, duration), `config.json` (a Piper voice config for inspection and export)
//! and `report.json` (skipped clips with reasons, phonemes missing from the id map).
//!
//! The whole metadata file is checked before anything is written. Clips are processed in parallel, one at a time
//! per worker (memory stays bounded whatever the dataset size), each written atomically; outputs are sorted by id,
//! so a rerun produces the same files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::config::PreprocessingSection;
use crate::error::{Error, Result};
use crate::espeak::Espeak;
use crate::piper::{phonemes_to_ids, phonemize, VoiceConfig};

/// One metadata row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The 1-based line in `metadata.csv`.
    pub line: usize,
    /// The clip id (`wavs/ID.wav`).
    pub id: String,
    /// The speaker, for multi-speaker data.
    pub speaker: Option<String>,
    /// The transcript.
    pub text: String,
}

/// How the rows' columns are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `id|text` or `id|text|normalized` (the normalised text is used when present).
    LjSpeech,
    /// `id|speaker|text`.
    MultiSpeaker,
}

fn input_error(path: &Path, line: Option<usize>, problem: impl Into<String>) -> Error {
    Error::Dataset { path: path.to_path_buf(), line, problem: problem.into() }
}

/// Read and check `metadata.csv`. Every problem is an error naming the line; nothing is written yet.
pub fn read_metadata(path: &Path, forced: Option<Layout>) -> Result<(Vec<Row>, Layout)> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            input_error(path, None, "not found; the input folder needs wavs/ and metadata.csv (LJSpeech layout)")
        } else {
            Error::Read { path: path.to_path_buf(), source }
        }
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        input_error(path, None, format!("is not UTF-8 (first bad byte at offset {})", e.utf8_error().valid_up_to()))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut fields: Vec<(usize, Vec<&str>)> = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if !line.contains('|') {
            let hint = if line.contains('\t') || line.contains(',') || line.contains(';') {
                " (it looks delimited by tabs, commas or semicolons; metadata.csv uses '|')"
            } else {
                ""
            };
            return Err(input_error(path, Some(line_no), format!("has no '|' separator{hint}")));
        }
        let columns: Vec<&str> = line.split('|').collect();
        if columns.len() > 3 {
            return Err(input_error(path, Some(line_no), format!("has {} columns; expected 2 or 3", columns.len())));
        }
        fields.push((line_no, columns));
    }
    if fields.is_empty() {
        return Err(input_error(path, None, "has no rows"));
    }
    let layout = forced.unwrap_or_else(|| {
        // `id|speaker|text` when every second column is a short single word and every third has several words.
        let multi = fields.iter().all(|(_, c)| {
            c.len() == 3
                && !c[1].trim().is_empty()
                && c[1].len() <= 32
                && !c[1].trim().contains(' ')
                && c[2].trim().contains(' ')
        });
        if multi {
            Layout::MultiSpeaker
        } else {
            Layout::LjSpeech
        }
    });
    let mut rows = Vec::with_capacity(fields.len());
    let mut seen = BTreeSet::new();
    for (line, columns) in fields {
        let id = columns[0].trim().to_string();
        if id.is_empty() || id.contains('/') || id.contains('\\') || id.starts_with('.') {
            return Err(input_error(path, Some(line), format!("has an invalid id {:?}", columns[0])));
        }
        if !seen.insert(id.clone()) {
            return Err(input_error(path, Some(line), format!("repeats the id `{id}`")));
        }
        let (speaker, text) = match (layout, columns.len()) {
            (Layout::MultiSpeaker, 3) => (Some(columns[1].trim().to_string()), columns[2]),
            (Layout::MultiSpeaker, _) => {
                return Err(input_error(path, Some(line), "needs id|speaker|text for a multi-speaker dataset"))
            }
            (Layout::LjSpeech, 3) if !columns[2].trim().is_empty() => (None, columns[2]),
            (Layout::LjSpeech, _) => (None, columns[1]),
        };
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(input_error(path, Some(line), format!("has empty text for `{id}`")));
        }
        rows.push(Row { line, id, speaker, text });
    }
    Ok((rows, layout))
}

/// Options beyond the config section.
#[derive(Debug, Clone)]
pub struct Options {
    /// espeak-ng voice (e.g. `en-us`).
    pub language: String,
    /// Rates, levels, trimming, durations.
    pub settings: PreprocessingSection,
    /// Worker threads.
    pub threads: usize,
    /// The `metadata.csv` layout (`None`: recognised from the file).
    pub layout: Option<Layout>,
}

/// A processed utterance, one line of dataset.jsonl.
#[derive(Debug, Clone, Serialize)]
pub struct Utterance {
    /// The clip id.
    pub id: String,
    /// The speaker's name, for multi-speaker data.
    pub speaker: Option<String>,
    /// The speaker's id.
    pub speaker_id: Option<usize>,
    /// The transcript.
    pub text: String,
    /// Its phonemes.
    pub phonemes: String,
    /// Its phoneme ids.
    pub phoneme_ids: Vec<i64>,
    /// The processed clip, relative to the output folder.
    pub audio_path: String,
    /// Seconds.
    pub duration: f32,
}

#[derive(Debug, Clone, Serialize)]
/// A clip left out, and why.
pub struct Skipped {
    /// The clip id.
    pub id: String,
    /// Its line in `metadata.csv`.
    pub line: usize,
    /// Why it was left out.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Default)]
/// What a run did (`report.json`).
pub struct Report {
    /// Clips written.
    pub utterances: usize,
    /// Clips left out.
    pub skipped: Vec<Skipped>,
    /// Phonemes espeak produced that the id map lacks, with how often.
    pub missing_phonemes: BTreeMap<String, usize>,
    /// Seconds of audio written.
    pub audio_seconds: f64,
    /// Seconds the run took.
    pub wall_seconds: f64,
}

/// A clip's row index, its utterance or why it was skipped, and the phonemes its text lacked in the id map.
type ClipOutcome = (usize, std::result::Result<Utterance, String>, BTreeMap<String, usize>);

/// Check that `output` is usable and not inside `input` (that would read our own output next time).
pub fn check_folders(input: &Path, output: &Path) -> Result<()> {
    let input_abs = input.canonicalize().map_err(|source| Error::Read { path: input.to_path_buf(), source })?;
    let output_abs = match output.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let parent = parent.canonicalize().map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
            parent.join(output.file_name().unwrap_or_default())
        }
    };
    if output_abs.starts_with(&input_abs) {
        return Err(input_error(
            output,
            None,
            format!("is inside the input folder {}; choose an output folder outside it", input.display()),
        ));
    }
    Ok(())
}

/// Process one clip: decode, mono, resample, trim, normalise, check duration. Allocates per clip only.
pub fn process_clip(path: &Path, settings: &PreprocessingSection) -> std::result::Result<Vec<f32>, String> {
    if !path.is_file() {
        return Err(format!("audio file {} is missing", path.display()));
    }
    let (samples, rate) = crate::wav::read_wav_mono(path).map_err(|e| format!("unreadable audio: {e}"))?;
    if samples.is_empty() {
        return Err("the audio is empty".into());
    }
    let mut audio = crate::wav::resample(&samples, rate, settings.sample_rate).map_err(|e| e.to_string())?;
    let threshold = 10f32.powf(settings.silence_threshold_db / 20.0);
    // Silence is judged on 10 ms windows, so a single loud sample does not count as speech.
    let window = (settings.sample_rate as usize / 100).max(1);
    let loud = |chunk: &[f32]| (chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32).sqrt() >= threshold;
    let first = audio.chunks(window).position(loud);
    let Some(first) = first else {
        return Err(format!("silent (no 10 ms window above {} dBFS)", settings.silence_threshold_db));
    };
    if settings.trim_silence {
        let last = audio.chunks(window).rposition(loud).unwrap_or(first);
        // Keep 50 ms of context at each end, as trainers expect a little room around speech.
        let pad = settings.sample_rate as usize / 20;
        let start = (first * window).saturating_sub(pad);
        let end = ((last + 1) * window + pad).min(audio.len());
        audio = audio[start..end].to_vec();
    }
    let seconds = audio.len() as f32 / settings.sample_rate as f32;
    if seconds < settings.min_duration {
        return Err(format!("too short ({seconds:.2} s < {} s)", settings.min_duration));
    }
    if seconds > settings.max_duration {
        return Err(format!("too long ({seconds:.2} s > {} s)", settings.max_duration));
    }
    // Loudness: RMS over the 10 ms windows that hold speech, brought to the target; peaks are kept under 0 dBFS.
    let (mut energy, mut count) = (0.0f64, 0usize);
    for chunk in audio.chunks(window).filter(|c| loud(c)) {
        energy += chunk.iter().map(|s| f64::from(s * s)).sum::<f64>();
        count += chunk.len();
    }
    let rms = (energy / count.max(1) as f64).sqrt() as f32;
    let mut gain = 10f32.powf(settings.normalize_db / 20.0) / rms.max(1e-9);
    let peak = audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    if peak * gain > 0.999 {
        gain = 0.999 / peak;
    }
    for s in audio.iter_mut() {
        *s *= gain;
    }
    Ok(audio)
}

/// Run the whole job. `progress(done, total)` is called as clips finish.
pub fn run(
    input_dir: &Path,
    output_dir: &Path,
    options: &Options,
    voice: &VoiceConfig,
    espeak: &Espeak,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report> {
    let started = std::time::Instant::now();
    check_folders(input_dir, output_dir)?;
    let metadata = input_dir.join("metadata.csv");
    let (rows, layout) = read_metadata(&metadata, options.layout)?;
    let wavs_in = input_dir.join("wavs");
    let wavs_out = output_dir.join("wavs");
    std::fs::create_dir_all(&wavs_out).map_err(|source| Error::Write { path: wavs_out.clone(), source })?;
    let speakers: BTreeMap<String, usize> = rows
        .iter()
        .filter_map(|r| r.speaker.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(idx, name)| (name, idx))
        .collect();
    let mut phoneme_config = voice.clone();
    if let Some(espeak_config) = phoneme_config.espeak.as_mut() {
        espeak_config.voice = options.language.clone();
    }

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<ClipOutcome>> = Mutex::new(Vec::with_capacity(rows.len()));
    let write_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| loop {
                let idx = next.fetch_add(1, Ordering::Relaxed);
                let Some(row) = rows.get(idx) else { break };
                let mut missing = BTreeMap::new();
                let outcome = (|| -> std::result::Result<Utterance, String> {
                    let audio = process_clip(&wavs_in.join(format!("{}.wav", row.id)), &options.settings)?;
                    let sentences = phonemize(&phoneme_config, Some(espeak), &row.text).map_err(|e| e.to_string())?;
                    let phonemes: Vec<String> = sentences.iter().flat_map(|s| s.phonemes.iter().cloned()).collect();
                    if phonemes.is_empty() {
                        return Err("the text has no phonemes".into());
                    }
                    let (ids, unknown) = phonemes_to_ids(&phonemes, &phoneme_config.phoneme_id_map);
                    for phoneme in unknown.0 {
                        *missing.entry(phoneme).or_insert(0) += 1;
                    }
                    let out_path = wavs_out.join(format!("{}.wav", row.id));
                    let mut wav = crate::wav::AtomicWav::create(&out_path, options.settings.sample_rate)
                        .map_err(|e| format!("write failed: {e}"))?;
                    wav.write(&audio).map_err(|e| format!("write failed: {e}"))?;
                    wav.finish().map_err(|e| format!("write failed: {e}"))?;
                    Ok(Utterance {
                        id: row.id.clone(),
                        speaker: row.speaker.clone(),
                        speaker_id: row.speaker.as_ref().map(|s| speakers[s]),
                        text: row.text.clone(),
                        phonemes: phonemes.concat(),
                        phoneme_ids: ids,
                        audio_path: format!("wavs/{}.wav", row.id),
                        duration: audio.len() as f32 / options.settings.sample_rate as f32,
                    })
                })();
                if let Err(reason) = &outcome {
                    if reason.starts_with("write failed") {
                        write_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(Error::Dataset {
                            path: wavs_out.clone(),
                            line: Some(row.line),
                            problem: reason.clone(),
                        });
                    }
                }
                results.lock().unwrap_or_else(|p| p.into_inner()).push((idx, outcome, missing));
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, rows.len());
            });
        }
    });
    if let Some(error) = write_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(error);
    }
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(idx, _, _)| *idx);

    let mut report = Report::default();
    let mut metadata_out = String::new();
    let mut jsonl = String::new();
    for (idx, outcome, missing) in results {
        for (phoneme, count) in missing {
            *report.missing_phonemes.entry(phoneme).or_insert(0) += count;
        }
        match outcome {
            Ok(utterance) => {
                match &utterance.speaker {
                    Some(speaker) => metadata_out.push_str(&format!("{}|{speaker}|{}\n", utterance.id, utterance.text)),
                    None => metadata_out.push_str(&format!("{}|{}\n", utterance.id, utterance.text)),
                }
                jsonl.push_str(&serde_json::to_string(&utterance).unwrap_or_default());
                jsonl.push('\n');
                report.audio_seconds += f64::from(utterance.duration);
                report.utterances += 1;
            }
            Err(reason) => {
                let row = &rows[idx];
                // A clip skipped now must not leave an old processed copy behind from an earlier run.
                let _ = std::fs::remove_file(wavs_out.join(format!("{}.wav", row.id)));
                report.skipped.push(Skipped { id: row.id.clone(), line: row.line, reason });
            }
        }
    }
    let mut config = serde_json::to_value(&phoneme_config).unwrap_or_default();
    config["audio"]["sample_rate"] = options.settings.sample_rate.into();
    config["num_speakers"] = speakers.len().max(1).into();
    config["speaker_id_map"] = serde_json::to_value(&speakers).unwrap_or_default();
    config["num_symbols"] =
        (phoneme_config.phoneme_id_map.values().flatten().copied().max().unwrap_or(0) + 1).max(256).into();
    config["dataset"] = output_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().into();
    config["layout"] = if layout == Layout::MultiSpeaker { "multi-speaker" } else { "ljspeech" }.into();
    report.wall_seconds = started.elapsed().as_secs_f64();
    let write = |name: &str, text: String| -> Result<()> {
        crate::durable::write_atomic(&output_dir.join(name), text.as_bytes())
    };
    write("metadata.csv", metadata_out)?;
    write("dataset.jsonl", jsonl)?;
    write("config.json", serde_json::to_string_pretty(&config).unwrap_or_default() + "\n")?;
    // The report's timing varies run to run; everything else in the output is deterministic.
    write("report.json", serde_json::to_string_pretty(&report).unwrap_or_default() + "\n")?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(text: &str) -> Result<(Vec<Row>, Layout)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metadata.csv");
        std::fs::write(&path, text).unwrap();
        read_metadata(&path, None)
    }

    #[test]
    fn layouts_are_recognised() {
        let (rows, layout) = metadata("a|Hello there.\nb|Raw 1|Normalized one.\n").unwrap();
        assert_eq!(layout, Layout::LjSpeech);
        assert_eq!(rows[1].text, "Normalized one.");
        let (rows, layout) = metadata("\u{feff}a|alice|Hello there.\r\nb|bob|Good morning to you.\r\n").unwrap();
        assert_eq!(layout, Layout::MultiSpeaker);
        assert_eq!(rows[1].speaker.as_deref(), Some("bob"));
    }

    #[test]
    fn bad_metadata_names_the_line() {
        let err = metadata("a,Hello there.\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("'|'") && err.contains("commas"), "{err}");
        let err = metadata("a|Hello.\nb|\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("empty text"), "{err}");
        let err = metadata("a|x\na|y\n").unwrap_err().to_string();
        assert!(err.contains("repeats"), "{err}");
        let err = read_metadata(Path::new("/nonexistent/metadata.csv"), None).unwrap_err().to_string();
        assert!(err.contains("metadata.csv") && err.contains("not found"), "{err}");
    }
}
