//! Configs written for the old Python tool (top-level `gpu`, `piper`, `xtts`, `advanced` sections): keys with a
//! meaning here are mapped, the others produce one warning each.

use std::path::Path;

use super::*;

/// Translate the old tool's config. Known keys map; unknown ones give a warning each.
pub(super) fn parse_legacy(tree: &serde_json::Value, path: &Path) -> Result<LoadedConfig> {
    let mut config = Config::default();
    let mut sources = BTreeMap::new();
    let mut warnings = Vec::new();
    let source = format!("legacy file {}", path.display());
    let mut leaves = Vec::new();
    flatten_values(tree, "", &mut leaves);
    for (key, value) in leaves {
        let wrong = |expected: &str| {
            config_error(path, None, format!("legacy key `{key}` should be {expected}, found {value}"))
        };
        let as_f32 = || value.as_f64().map(|v| v as f32).ok_or_else(|| wrong("a number"));
        let target = match key.as_str() {
            "gpu.enabled" => {
                let enabled = value.as_bool().ok_or_else(|| wrong("true or false"))?;
                config.runtime.provider = if enabled { ProviderName::Cuda } else { ProviderName::Cpu };
                "runtime.provider"
            }
            "gpu.device_id" => {
                config.runtime.device_id = value.as_i64().ok_or_else(|| wrong("an integer"))? as i32;
                "runtime.device_id"
            }
            "piper.speed" => {
                let speed = as_f32()?;
                if speed <= 0.0 {
                    return Err(wrong("a positive number"));
                }
                // The old tool's speed is a rate: twice as fast is half the phoneme length.
                config.tts.length_scale = Some(1.0 / speed);
                "tts.length_scale"
            }
            "piper.noise_scale" => {
                config.tts.noise_scale = Some(as_f32()?);
                "tts.noise_scale"
            }
            "piper.noise_scale_w" | "piper.noise_w" => {
                config.tts.noise_w = Some(as_f32()?);
                "tts.noise_w"
            }
            "piper.default_speaker" => {
                config.tts.speaker = Some(match &value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                "tts.speaker"
            }
            "piper.model" | "piper.default_model" | "piper.voice" => {
                config.tts.voice = value.as_str().ok_or_else(|| wrong("a voice name or path"))?.to_string();
                "tts.voice"
            }
            "output.sample_rate" => {
                config.output.sample_rate = Some(value.as_u64().ok_or_else(|| wrong("an integer (Hz)"))? as u32);
                "output.sample_rate"
            }
            "advanced.num_threads" => {
                config.runtime.intra_threads = value.as_u64().ok_or_else(|| wrong("an integer"))? as usize;
                "runtime.intra_threads"
            }
            "preprocessing.sample_rate" | "preprocessing.target_sample_rate" => {
                config.preprocessing.sample_rate = value.as_u64().ok_or_else(|| wrong("an integer (Hz)"))? as u32;
                "preprocessing.sample_rate"
            }
            "preprocessing.normalize_db" | "preprocessing.target_db" => {
                config.preprocessing.normalize_db = as_f32()?;
                "preprocessing.normalize_db"
            }
            "preprocessing.trim_silence" => {
                config.preprocessing.trim_silence = value.as_bool().ok_or_else(|| wrong("true or false"))?;
                "preprocessing.trim_silence"
            }
            "preprocessing.min_duration" => {
                config.preprocessing.min_duration = as_f32()?;
                "preprocessing.min_duration"
            }
            "preprocessing.max_duration" => {
                config.preprocessing.max_duration = as_f32()?;
                "preprocessing.max_duration"
            }
            _ => {
                warnings
                    .push(format!("{}: old-tool key `{key}` has no meaning in demod-voice; ignored", path.display()));
                continue;
            }
        };
        sources.insert(target.to_string(), format!("{source} ({key})"));
    }
    Ok(LoadedConfig { config, path: Some(path.to_path_buf()), sources, warnings })
}

fn flatten_values(value: &serde_json::Value, prefix: &str, out: &mut Vec<(String, serde_json::Value)>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten_values(child, &path, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}
