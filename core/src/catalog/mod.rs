//! Piper's voice catalogue (`voices.json` in Piper's published voice repository): every voice with its language,
//! quality, speakers and files (sizes and md5 digests). `voices catalog` lists it, `voices download` installs from
//! it, and `--voice KEY` / `--language CODE` install a voice named in it on first use.
//!
//! The catalogue is cached in the cache folder with the time it was fetched; it is fetched again when older than
//! `voices.catalog_max_age_hours` or on `--refresh`, and used from the cache (with its age said) when offline or when
//! the server cannot be reached.

pub mod fetch;
pub mod install;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::library::{normalise_language, speaks};

pub use fetch::{Http, HttpOptions};
pub use install::{download, remove, DownloadOptions, Installed, Progress};

/// Piper's published voice repository: the catalogue and the voices' files (relative paths in the catalogue).
pub const DEFAULT_BASE_URL: &str = "https://huggingface.co/rhasspy/piper-voices/resolve/main/";
/// The catalogue file in it.
pub const DEFAULT_CATALOG_URL: &str = "https://huggingface.co/rhasspy/piper-voices/resolve/main/voices.json";
/// The largest catalogue accepted (Piper's is about 1 MB).
pub const MAX_CATALOG_BYTES: u64 = 64 << 20;

/// A voice's language as the catalogue gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogLanguage {
    /// `de_DE`.
    pub code: String,
    /// `de`.
    pub family: String,
    /// `DE`.
    pub region: String,
    /// `Deutsch`.
    pub name_native: String,
    /// `German`.
    pub name_english: String,
    /// `Germany`.
    pub country_english: String,
}

/// One file of a voice, with what it must measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFile {
    /// Its exact size.
    pub size_bytes: u64,
    /// Its md5 digest, lower-case hex.
    pub md5_digest: String,
}

/// One voice of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogVoice {
    /// `de_DE-thorsten-medium`: the name it is installed (and `--voice` takes it) under.
    pub key: String,
    /// `thorsten`.
    #[serde(default)]
    pub name: String,
    /// Its language.
    #[serde(default)]
    pub language: CatalogLanguage,
    /// `x_low`, `low`, `medium` or `high`.
    #[serde(default)]
    pub quality: String,
    /// How many speakers it has.
    #[serde(default = "one")]
    pub num_speakers: u32,
    /// Speaker names to ids (multi-speaker voices).
    #[serde(default)]
    pub speaker_id_map: BTreeMap<String, i64>,
    /// Path relative to the base URL -> size and digest.
    #[serde(default)]
    pub files: BTreeMap<String, RemoteFile>,
    /// Older names that resolve to this voice.
    #[serde(default)]
    pub aliases: Vec<String>,
}

fn one() -> u32 {
    1
}

impl CatalogVoice {
    /// The model file (`….onnx`): its path in the repository and what it must measure.
    pub fn model_file(&self) -> Option<(&str, &RemoteFile)> {
        self.files.iter().find(|(path, _)| path.ends_with(".onnx")).map(|(p, f)| (p.as_str(), f))
    }

    /// The config file (`….onnx.json`).
    pub fn config_file(&self) -> Option<(&str, &RemoteFile)> {
        self.files.iter().find(|(path, _)| path.ends_with(".onnx.json")).map(|(p, f)| (p.as_str(), f))
    }

    /// Bytes a download fetches (model and config).
    pub fn download_bytes(&self) -> u64 {
        self.model_file().map_or(0, |(_, f)| f.size_bytes) + self.config_file().map_or(0, |(_, f)| f.size_bytes)
    }

    /// `Deutsch (German)`, or whichever of the two names the catalogue gives.
    pub fn language_names(&self) -> String {
        let l = &self.language;
        match (l.name_native.as_str(), l.name_english.as_str()) {
            ("", "") => l.code.clone(),
            (native, "") | ("", native) => native.to_string(),
            (native, english) if native == english => native.to_string(),
            (native, english) => format!("{native} ({english})"),
        }
    }
}

/// Piper's qualities, best first; unknown ones last.
pub fn quality_rank(quality: &str) -> usize {
    match quality {
        "high" => 0,
        "medium" => 1,
        "low" => 2,
        "x_low" => 3,
        _ => 4,
    }
}

/// `12.3 MB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.0} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The whole catalogue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Key -> voice.
    pub voices: BTreeMap<String, CatalogVoice>,
}

/// A path the catalogue names must stay inside the repository (it is joined to the base URL) and the voice folder.
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains("://")
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// A key becomes a folder and file names: letters, digits, `_`, `-`, `.` only, not starting with a dot.
pub fn safe_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && key.len() <= 200
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Catalog {
    /// Parse `voices.json` read from `origin` (a URL or file, for the message). Voices whose key or files could
    /// not be installed safely are dropped with a warning; a file that is not a catalogue is an error.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Catalog> {
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(bytes).map_err(|e| Error::Catalog {
            origin: origin.to_string(),
            problem: format!("not a Piper voice catalogue (expected a JSON object of voices): {e}"),
        })?;
        let mut voices = BTreeMap::new();
        let mut dropped = Vec::new();
        for (key, value) in raw {
            let voice: CatalogVoice = match serde_json::from_value(value) {
                Ok(v) => v,
                Err(e) => {
                    dropped.push(format!("{key} ({e})"));
                    continue;
                }
            };
            let files_ok = voice.files.keys().all(|p| safe_relative(p))
                && voice
                    .files
                    .values()
                    .all(|f| f.md5_digest.len() == 32 && f.md5_digest.chars().all(|c| c.is_ascii_hexdigit()))
                && voice.model_file().is_some()
                && voice.config_file().is_some();
            if voice.key != key || !safe_key(&key) || !files_ok {
                dropped.push(key);
                continue;
            }
            voices.insert(key, voice);
        }
        if voices.is_empty() {
            return Err(Error::Catalog { origin: origin.to_string(), problem: "it lists no usable voice".into() });
        }
        if !dropped.is_empty() {
            tracing::warn!(
                "the voice catalogue {origin} has {} unusable entries, skipped: {}",
                dropped.len(),
                dropped.join(", ")
            );
        }
        Ok(Catalog { voices })
    }

    /// The voice with this key, or whose aliases include it (exact first, then ignoring case).
    pub fn find(&self, key: &str) -> Option<&CatalogVoice> {
        if let Some(voice) = self.voices.get(key) {
            return Some(voice);
        }
        let exact = self.voices.values().find(|v| v.aliases.iter().any(|a| a == key));
        exact.or_else(|| {
            self.voices
                .values()
                .find(|v| v.key.eq_ignore_ascii_case(key) || v.aliases.iter().any(|a| a.eq_ignore_ascii_case(key)))
        })
    }

    /// The keys nearest to `key`, closest first (for "did you mean").
    pub fn suggestions(&self, key: &str) -> Vec<&str> {
        let mut scored: Vec<(f64, &str)> = self
            .voices
            .keys()
            .map(|k| (strsim::jaro_winkler(&k.to_lowercase(), &key.to_lowercase()), k.as_str()))
            .filter(|(score, _)| *score > 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(3).map(|(_, k)| k).collect()
    }

    /// The voices of `language` (`de`, `pt-BR`, `en_us`; `None` for all) and `quality`, by language then best
    /// quality first then key.
    pub fn filter(&self, language: Option<&str>, quality: Option<&str>) -> Vec<&CatalogVoice> {
        let mut out: Vec<&CatalogVoice> = self
            .voices
            .values()
            .filter(|v| {
                language.is_none_or(|l| {
                    speaks(&v.language.code, l) || normalise_language(&v.language.family) == normalise_language(l)
                })
            })
            .filter(|v| quality.is_none_or(|q| v.quality.eq_ignore_ascii_case(q)))
            .collect();
        out.sort_by(|a, b| {
            (a.language.code.as_str(), quality_rank(&a.quality), a.key.as_str()).cmp(&(
                b.language.code.as_str(),
                quality_rank(&b.quality),
                b.key.as_str(),
            ))
        });
        out
    }

    /// The voice to install for `language`: the best quality, then the first by key, so the choice is stable.
    pub fn best_for_language(&self, language: &str) -> Option<&CatalogVoice> {
        let mut voices = self.filter(Some(language), None);
        voices.sort_by(|a, b| {
            (quality_rank(&a.quality), a.key.as_str()).cmp(&(quality_rank(&b.quality), b.key.as_str()))
        });
        voices.into_iter().next()
    }
}

/// Where the catalogue comes from and how it is fetched (the config's `voices` section).
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// The catalogue's URL.
    pub catalog_url: String,
    /// What the catalogue's file paths are relative to.
    pub base_url: String,
    /// A cached copy older than this is fetched again.
    pub max_age: Duration,
    /// Timeouts and retries.
    pub http: HttpOptions,
}

/// When to fetch the catalogue rather than use the cached copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// When the cached copy is missing, from another URL, or older than the maximum age.
    IfStale,
    /// Always (`--refresh`).
    Always,
    /// Never (`--offline`): the cached copy or an error.
    Never,
}

/// A catalogue with where and when it came from.
#[derive(Debug, Clone)]
pub struct LoadedCatalog {
    /// The voices.
    pub catalog: Catalog,
    /// The URL it was fetched from.
    pub url: String,
    /// When it was fetched.
    pub fetched: SystemTime,
    /// True when this is the cached copy (not fetched now).
    pub from_cache: bool,
    /// Why a stale cached copy is used (the fetch failed), for the front-end to say.
    pub warning: Option<String>,
}

impl LoadedCatalog {
    /// How old it is.
    pub fn age(&self) -> Duration {
        SystemTime::now().duration_since(self.fetched).unwrap_or_default()
    }
}

/// `3 h`, `2 days`, `40 s`.
pub fn human_age(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 3600 => format!("{} h", s / 3600),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheStamp {
    url: String,
    fetched_unix: u64,
}

/// The catalogue cache: `CACHE/catalog/voices.json` and the stamp saying where and when it was fetched.
fn cache_paths(cache_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = cache_dir.join("catalog");
    (dir.join("voices.json"), dir.join("fetched.json"))
}

fn read_cache(cache_dir: &Path) -> Option<(Vec<u8>, CacheStamp)> {
    let (data, stamp) = cache_paths(cache_dir);
    let stamp: CacheStamp = serde_json::from_slice(&std::fs::read(stamp).ok()?).ok()?;
    let len = std::fs::metadata(&data).ok()?.len();
    if len > MAX_CATALOG_BYTES {
        return None;
    }
    Some((std::fs::read(data).ok()?, stamp))
}

/// The catalogue: the cached copy when fresh enough (or when `refresh` is [`Refresh::Never`]), else fetched and
/// cached; when fetching fails and a cached copy exists, that copy with a warning saying its age.
pub fn load(options: &CatalogOptions, cache_dir: &Path, refresh: Refresh) -> Result<LoadedCatalog> {
    let cached = read_cache(cache_dir).and_then(|(bytes, stamp)| {
        let origin = cache_paths(cache_dir).0.display().to_string();
        match Catalog::parse(&bytes, &origin) {
            Ok(catalog) => Some((catalog, stamp)),
            Err(e) => {
                tracing::warn!("ignoring the cached voice catalogue: {e}");
                None
            }
        }
    });
    let as_loaded = |catalog: Catalog, stamp: CacheStamp, warning: Option<String>| LoadedCatalog {
        catalog,
        url: stamp.url,
        fetched: UNIX_EPOCH + Duration::from_secs(stamp.fetched_unix),
        from_cache: true,
        warning,
    };
    if refresh == Refresh::Never {
        return match cached {
            Some((catalog, stamp)) => Ok(as_loaded(catalog, stamp, None)),
            None => Err(Error::Catalog {
                origin: options.catalog_url.clone(),
                problem: format!(
                    "no copy cached in {} and --offline forbids fetching it; run `demod-voice voices catalog` once online",
                    cache_paths(cache_dir).0.display()
                ),
            }),
        };
    }
    if refresh == Refresh::IfStale {
        if let Some((catalog, stamp)) = cached.as_ref().filter(|(_, stamp)| stamp.url == options.catalog_url) {
            let fetched = UNIX_EPOCH + Duration::from_secs(stamp.fetched_unix);
            if SystemTime::now().duration_since(fetched).unwrap_or_default() <= options.max_age {
                return Ok(as_loaded(
                    catalog.clone(),
                    CacheStamp { url: stamp.url.clone(), fetched_unix: stamp.fetched_unix },
                    None,
                ));
            }
        }
    }
    let http = Http::new(options.http.clone());
    let fetched = http.get_bytes(&options.catalog_url, MAX_CATALOG_BYTES).and_then(|bytes| {
        let catalog = Catalog::parse(&bytes, &options.catalog_url)?;
        Ok((bytes, catalog))
    });
    match fetched {
        Ok((bytes, catalog)) => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let stamp = CacheStamp { url: options.catalog_url.clone(), fetched_unix: now };
            let (data_path, stamp_path) = cache_paths(cache_dir);
            let _ = std::fs::create_dir_all(crate::durable::folder_of(&data_path));
            let saved = crate::durable::write_atomic(&data_path, &bytes).and_then(|()| {
                let text = serde_json::to_vec(&stamp).unwrap_or_default();
                crate::durable::write_atomic(&stamp_path, &text)
            });
            if let Err(e) = saved {
                tracing::warn!("the voice catalogue could not be cached: {e}");
            }
            Ok(LoadedCatalog {
                catalog,
                url: options.catalog_url.clone(),
                fetched: SystemTime::now(),
                from_cache: false,
                warning: None,
            })
        }
        Err(e) => match cached {
            Some((catalog, stamp)) => {
                let age = human_age(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH + Duration::from_secs(stamp.fetched_unix))
                        .unwrap_or_default(),
                );
                let warning = format!("using the cached voice catalogue from {age} ago: {e}");
                Ok(as_loaded(catalog, stamp, Some(warning)))
            }
            None => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> &'static str {
        r#"{
          "de_DE-thorsten-medium": {"key": "de_DE-thorsten-medium", "name": "thorsten",
            "language": {"code": "de_DE", "family": "de", "region": "DE", "name_native": "Deutsch", "name_english": "German", "country_english": "Germany"},
            "quality": "medium", "num_speakers": 1, "speaker_id_map": {},
            "files": {"de/de_DE/thorsten/medium/de_DE-thorsten-medium.onnx": {"size_bytes": 10, "md5_digest": "0123456789abcdef0123456789abcdef"},
                      "de/de_DE/thorsten/medium/de_DE-thorsten-medium.onnx.json": {"size_bytes": 5, "md5_digest": "0123456789abcdef0123456789abcdef"},
                      "de/de_DE/thorsten/medium/MODEL_CARD": {"size_bytes": 5, "md5_digest": "0123456789abcdef0123456789abcdef"}},
            "aliases": ["de-thorsten-medium"]},
          "de_DE-thorsten-high": {"key": "de_DE-thorsten-high", "name": "thorsten",
            "language": {"code": "de_DE", "family": "de", "region": "DE", "name_native": "Deutsch", "name_english": "German", "country_english": "Germany"},
            "quality": "high", "num_speakers": 1, "speaker_id_map": {},
            "files": {"de/de_DE/thorsten/high/de_DE-thorsten-high.onnx": {"size_bytes": 10, "md5_digest": "0123456789abcdef0123456789abcdef"},
                      "de/de_DE/thorsten/high/de_DE-thorsten-high.onnx.json": {"size_bytes": 5, "md5_digest": "0123456789abcdef0123456789abcdef"}},
            "aliases": []},
          "pt_BR-faber-medium": {"key": "pt_BR-faber-medium", "name": "faber",
            "language": {"code": "pt_BR", "family": "pt", "region": "BR", "name_native": "Português", "name_english": "Portuguese", "country_english": "Brazil"},
            "quality": "medium",
            "files": {"pt/pt_BR/faber/medium/pt_BR-faber-medium.onnx": {"size_bytes": 10, "md5_digest": "0123456789abcdef0123456789abcdef"},
                      "pt/pt_BR/faber/medium/pt_BR-faber-medium.onnx.json": {"size_bytes": 5, "md5_digest": "0123456789abcdef0123456789abcdef"}}},
          "../evil": {"key": "../evil", "language": {"code": "en_US"}, "quality": "low",
            "files": {"../../x.onnx": {"size_bytes": 1, "md5_digest": "0123456789abcdef0123456789abcdef"},
                      "x.onnx.json": {"size_bytes": 1, "md5_digest": "0123456789abcdef0123456789abcdef"}}}
        }"#
    }

    #[test]
    fn voices_are_found_by_key_alias_and_language_best_quality_first() {
        let catalog = Catalog::parse(sample().as_bytes(), "test").unwrap();
        assert_eq!(catalog.voices.len(), 3, "the entry with an unsafe key and paths is dropped");
        assert_eq!(catalog.find("de-thorsten-medium").unwrap().key, "de_DE-thorsten-medium");
        assert_eq!(catalog.find("DE_de-THORSTEN-high").unwrap().key, "de_DE-thorsten-high");
        assert!(catalog.find("fr_FR-nobody-low").is_none());
        assert_eq!(catalog.best_for_language("de").unwrap().key, "de_DE-thorsten-high");
        assert_eq!(catalog.best_for_language("pt-BR").unwrap().key, "pt_BR-faber-medium");
        assert_eq!(catalog.best_for_language("pt").unwrap().key, "pt_BR-faber-medium");
        assert!(catalog.best_for_language("pt_PT").is_none());
        assert_eq!(catalog.filter(Some("de"), Some("medium")).len(), 1);
        assert_eq!(catalog.suggestions("de_DE-thorsten-mediun"), vec!["de_DE-thorsten-medium", "de_DE-thorsten-high"]);
        let voice = catalog.find("pt_BR-faber-medium").unwrap();
        assert_eq!(voice.num_speakers, 1);
        assert_eq!(voice.download_bytes(), 15);
        assert_eq!(voice.language_names(), "Português (Portuguese)");
    }

    #[test]
    fn a_file_that_is_not_a_catalogue_is_refused_with_its_origin() {
        let err = Catalog::parse(b"<html>rate limited</html>", "https://example.test/voices.json").unwrap_err();
        assert!(err.to_string().contains("https://example.test/voices.json"), "{err}");
        assert!(Catalog::parse(b"{}", "x").is_err());
    }

    #[test]
    fn offline_without_a_cached_copy_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let options = CatalogOptions {
            catalog_url: "http://127.0.0.1:9/voices.json".into(),
            base_url: "http://127.0.0.1:9/".into(),
            max_age: Duration::from_secs(3600),
            http: HttpOptions::default(),
        };
        let err = load(&options, dir.path(), Refresh::Never).unwrap_err().to_string();
        assert!(err.contains("--offline") && err.contains("voices catalog"), "{err}");
    }
}
