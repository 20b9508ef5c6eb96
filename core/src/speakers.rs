//! The nearest speaker of a multi-speaker voice: each speaker says the probe sentence once, the speaker encoder
//! embeds it, and cloning starts from the speaker whose embedding is closest to the reference's (the conversion
//! then has less to move). The embeddings are cached per voice (by the checksum of its config and the model's
//! size), so only the first clone with a voice pays for them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::piper::{PiperVoice, SynthesisOptions};
use crate::speaker::{Embedding, SpeakerEncoder};

/// What the cache stores for one voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerEmbeddings {
    /// The voice's name.
    pub voice: String,
    /// Speaker name (or id, for voices without names) -> embedding of the probe sentence in that voice.
    pub speakers: BTreeMap<String, Embedding>,
}

/// A speaker picked for a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestSpeaker {
    /// The speaker's name (or id), as `--speaker` takes it.
    pub speaker: String,
    /// Its similarity to the reference before any conversion.
    pub similarity: f32,
    /// How many speakers were compared.
    pub compared: usize,
    /// True when the embeddings came from the cache.
    pub cached: bool,
}

/// The voice's speakers by name (or by id when the voice names none), in id order.
pub fn speaker_names(voice: &PiperVoice) -> Vec<(String, i64)> {
    let config = &voice.config;
    if config.num_speakers <= 1 {
        return Vec::new();
    }
    let mut named: Vec<(String, i64)> = config.speaker_id_map.iter().map(|(n, &id)| (n.clone(), id)).collect();
    if named.is_empty() {
        named = (0..i64::from(config.num_speakers)).map(|id| (id.to_string(), id)).collect();
    }
    named.sort_by_key(|(_, id)| *id);
    named
}

/// Where a voice's speaker embeddings are cached.
pub fn cache_path(cache_dir: &Path, voice: &PiperVoice) -> Result<PathBuf> {
    let config = crate::piper::VoiceConfig::path_for_model(&voice.model_path);
    let config_sum = crate::assets::sha256_hex(&config)?;
    let model_len = std::fs::metadata(&voice.model_path).map(|m| m.len()).unwrap_or(0);
    Ok(cache_dir.join("speakers").join(format!("{}-{}-{model_len}.yaml", voice.name, &config_sum[..16])))
}

/// Every speaker's embedding (from the cache, or made now: one probe sentence per speaker; `progress` hears
/// `(done, total)` as they are made).
pub fn embeddings(
    voice: &PiperVoice,
    options: &SynthesisOptions,
    encoder: &SpeakerEncoder,
    cache_dir: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(SpeakerEmbeddings, bool)> {
    let path = cache_path(cache_dir, voice)?;
    let names = speaker_names(voice);
    if let Some(cached) = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_saphyr::from_str::<SpeakerEmbeddings>(&text).ok())
        .filter(|c| c.speakers.len() == names.len())
    {
        return Ok((cached, true));
    }
    let mut speakers = BTreeMap::new();
    for (done, (name, id)) in names.iter().enumerate() {
        progress(done, names.len());
        let options = SynthesisOptions { speaker_id: Some(*id), ..options.clone() };
        let mut probe = Vec::new();
        voice.synthesize(crate::clone::PROBE_TEXT, &options, |audio| -> Result<()> {
            probe.extend_from_slice(&audio.samples);
            Ok(())
        })?;
        speakers.insert(name.clone(), encoder.embed(&probe, voice.sample_rate())?);
    }
    progress(names.len(), names.len());
    let found = SpeakerEmbeddings { voice: voice.name.clone(), speakers };
    // Best effort: without a cache the next clone measures again.
    let saved = serde_saphyr::to_string(&found).map_err(|e| e.to_string()).and_then(|text| {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(|e| e.to_string())?;
        crate::durable::write_atomic(&path, text.as_bytes()).map_err(|e| e.to_string())
    });
    if let Err(problem) = saved {
        tracing::warn!("cannot cache the speaker embeddings at {}: {problem}", path.display());
    }
    Ok((found, false))
}

/// The speaker of `voice` nearest to `target`, or `None` for a one-speaker voice.
pub fn nearest(
    voice: &PiperVoice,
    options: &SynthesisOptions,
    encoder: &SpeakerEncoder,
    cache_dir: &Path,
    target: &Embedding,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<NearestSpeaker>> {
    if speaker_names(voice).is_empty() {
        return Ok(None);
    }
    let (found, cached) = embeddings(voice, options, encoder, cache_dir, progress)?;
    let compared = found.speakers.len();
    Ok(found
        .speakers
        .iter()
        .map(|(name, embedding)| (name, embedding.cosine(target)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(name, similarity)| NearestSpeaker { speaker: name.clone(), similarity, compared, cached }))
}
