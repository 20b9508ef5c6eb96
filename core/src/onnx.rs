//! Finding and loading ONNX Runtime, choosing execution providers, and building sessions.
//!
//! `ort` is built with `load-dynamic`: nothing is linked or downloaded at build time, and the library is opened
//! here at run time. Search order: an explicit path (`--ort-lib` or `ORT_DYLIB_PATH`), the config file's
//! `runtime.library`, the data directory's `runtime/`, then the system library path.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::{Error, Result};

/// Names tried on the system library path, newest soname first.
const SYSTEM_NAMES: &[&str] = &["libonnxruntime.so.1", "libonnxruntime.so"];

/// Where a runtime library was found, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCandidate {
    /// The library file.
    pub path: PathBuf,
    /// `--ort-lib`, `ORT_DYLIB_PATH`, `config`, `data directory` or `system`.
    pub source: &'static str,
}

/// Inputs to the runtime search, gathered by the front-end.
#[derive(Debug, Clone, Default)]
pub struct RuntimeSearch {
    /// From `--ort-lib`.
    pub flag: Option<PathBuf>,
    /// From `ORT_DYLIB_PATH`.
    pub env: Option<PathBuf>,
    /// From the config file's `runtime.library`.
    pub config: Option<PathBuf>,
    /// `$XDG_DATA_HOME/demod-voice/runtime`.
    pub data_dir: Option<PathBuf>,
}

impl RuntimeSearch {
    /// Candidates in search order. Explicit ones are returned even if missing, so the error names them.
    pub fn candidates(&self) -> Vec<RuntimeCandidate> {
        let mut out = Vec::new();
        if let Some(path) = &self.flag {
            out.push(RuntimeCandidate { path: path.clone(), source: "--ort-lib" });
        }
        if let Some(path) = &self.env {
            out.push(RuntimeCandidate { path: path.clone(), source: "ORT_DYLIB_PATH" });
        }
        if let Some(path) = &self.config {
            out.push(RuntimeCandidate { path: path.clone(), source: "config" });
        }
        if let Some(dir) = &self.data_dir {
            if let Some(found) = find_versioned_library(dir) {
                out.push(RuntimeCandidate { path: found, source: "data directory" });
            }
        }
        for name in SYSTEM_NAMES {
            out.push(RuntimeCandidate { path: PathBuf::from(name), source: "system" });
        }
        out
    }

    /// The first usable candidate. An explicit path that does not exist is an error of its own (the user asked
    /// for it), not a reason to silently use another library.
    pub fn resolve(&self) -> Result<RuntimeCandidate> {
        for candidate in self.candidates() {
            if candidate.source == "system" {
                if system_library_loadable(&candidate.path) {
                    return Ok(candidate);
                }
                continue;
            }
            if !candidate.path.exists() {
                return Err(Error::RuntimeLoad {
                    path: candidate.path.clone(),
                    message: format!("the file does not exist (set by {})", candidate.source),
                });
            }
            return Ok(candidate);
        }
        let mut searched: Vec<String> = Vec::new();
        if let Some(dir) = &self.data_dir {
            searched.push(dir.display().to_string());
        }
        searched.push("the system library path".into());
        Err(Error::RuntimeNotFound { searched: searched.join(", ") })
    }
}

/// `libonnxruntime.so*` in `dir` (the highest version when several).
pub fn find_versioned_library(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so")) && p.is_file()
        })
        .collect();
    found.sort();
    found.pop()
}

fn system_library_loadable(name: &Path) -> bool {
    // SAFETY: opening a shared library runs its constructors; ONNX Runtime's only register static tables.
    unsafe { libloading::Library::new(name) }.is_ok()
}

/// The loaded runtime: one per process.
#[derive(Debug)]
pub struct Runtime {
    /// The library file.
    pub path: PathBuf,
    /// Where it was named (`--ort-lib`, `ORT_DYLIB_PATH`, the config file, the data folder, the system).
    pub source: &'static str,
    /// Its version.
    pub version: String,
    environment: Environment,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

impl Runtime {
    /// Load the runtime the first time; later calls return it (ONNX Runtime allows one environment per process).
    pub fn get_or_init(search: &RuntimeSearch) -> Result<&'static Runtime> {
        if let Some(runtime) = RUNTIME.get() {
            return Ok(runtime);
        }
        // ONNX Runtime allows one environment per process: load it under a lock so racing threads wait.
        static LOADING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOADING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(runtime) = RUNTIME.get() {
            return Ok(runtime);
        }
        let candidate = search.resolve()?;
        let runtime = Self::load(&candidate)?;
        Ok(RUNTIME.get_or_init(|| runtime))
    }

    /// The runtime loaded earlier, if any.
    pub fn loaded() -> Option<&'static Runtime> {
        RUNTIME.get()
    }

    fn load(candidate: &RuntimeCandidate) -> Result<Runtime> {
        let load_error = |message: String| Error::RuntimeLoad { path: candidate.path.clone(), message };
        let builder = ort::init_from(&candidate.path).map_err(|e| load_error(e.to_string()))?;
        let environment =
            builder.with_name("demod-voice").with_telemetry(false).build().map_err(|e| load_error(e.to_string()))?;
        let version = ort_version(&candidate.path);
        Ok(Runtime { path: candidate.path.clone(), source: candidate.source, version, environment })
    }

    /// Execution providers this runtime build offers (e.g. `CPUExecutionProvider`, `CUDAExecutionProvider`).
    pub fn available_providers(&self) -> Vec<String> {
        available_providers()
    }

    /// Build a session for the model file `model`. With [`SessionOptions::optimized_cache`] on CPU, the graph
    /// ONNX Runtime optimised the first time is saved there and later loads take it with optimisation off (the
    /// same graph, built again without the work: about a third of the load time).
    pub fn session_from_file(&self, model: &Path, options: &SessionOptions) -> Result<LoadedSession> {
        let on_cpu = options.provider == Provider::Cpu
            || (options.provider == Provider::Auto
                && !self.available_providers().iter().any(|p| p.starts_with("CUDA")));
        let Some(cached) =
            options.optimized_cache.as_ref().filter(|_| on_cpu).and_then(|dir| self.optimized_path(dir, model))
        else {
            return self.session(model, options, None, |builder| builder.commit_from_file(model));
        };
        if cached.is_file() {
            match self.session(model, options, Some(GraphOptimizationLevel::Disable), |b| b.commit_from_file(&cached)) {
                Ok(session) => return Ok(session),
                Err(e) => {
                    tracing::warn!("the optimised copy {} is unusable ({e}); optimising again", cached.display());
                    let _ = std::fs::remove_file(&cached);
                }
            }
        }
        let folder = crate::durable::folder_of(&cached);
        let _ = std::fs::create_dir_all(&folder);
        // Older copies of this model (another runtime, another edit of the file) go.
        let stem = crate::piper::synth::voice_name(model);
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("{stem}.")) && name.ends_with(".opt.onnx") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let temp = folder.join(format!(".{stem}.{}.partial", std::process::id()));
        let session = self.session_saving(model, options, None, Some(&temp), |builder| builder.commit_from_file(model));
        if session.is_ok() && temp.is_file() {
            if let Err(e) = std::fs::rename(&temp, &cached) {
                tracing::debug!("cannot keep the optimised model: {e}");
            }
        }
        let _ = std::fs::remove_file(&temp);
        session
    }

    /// Where the optimised copy of `model` lives: its name, the runtime version, this CPU's features and the model
    /// file's identity (path, size, modification time) in the file name.
    fn optimized_path(&self, dir: &Path, model: &Path) -> Option<PathBuf> {
        use sha2::Digest;
        let meta = std::fs::metadata(model).ok()?;
        let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        let canonical = std::fs::canonicalize(model).ok()?;
        let identity = format!(
            "{}|{}|{modified}|{}|{}|{}",
            canonical.display(),
            meta.len(),
            self.version,
            std::env::consts::ARCH,
            cpu_features()
        );
        let digest = sha2::Sha256::digest(identity.as_bytes());
        let key: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{}.{key}.opt.onnx", crate::piper::synth::voice_name(model))))
    }

    /// Build a session from model bytes (tests use tiny committed graphs this way).
    pub fn session_from_memory(&self, name: &Path, bytes: &[u8], options: &SessionOptions) -> Result<LoadedSession> {
        self.session(name, options, None, |builder| builder.commit_from_memory(bytes))
    }

    fn session(
        &self,
        model: &Path,
        options: &SessionOptions,
        level: Option<GraphOptimizationLevel>,
        commit: impl Fn(&mut ort::session::builder::SessionBuilder) -> ort::Result<Session>,
    ) -> Result<LoadedSession> {
        self.session_saving(model, options, level, None, commit)
    }

    /// [`Runtime::session`], writing the optimised graph to `save_to` when given.
    fn session_saving(
        &self,
        model: &Path,
        options: &SessionOptions,
        level: Option<GraphOptimizationLevel>,
        save_to: Option<&Path>,
        commit: impl Fn(&mut ort::session::builder::SessionBuilder) -> ort::Result<Session>,
    ) -> Result<LoadedSession> {
        let context = |what: &str| format!("{what} for {}", model.display());
        let threads = match options.intra_threads {
            Some(n) if n > 0 => n,
            _ => physical_cores(),
        };
        let builder = Session::builder(&self.environment)
            .map_err(|e| Error::onnx(context("creating session options"), e))?
            .with_optimization_level(level.unwrap_or(GraphOptimizationLevel::All))
            .map_err(|e| Error::onnx(context("setting optimisation level"), e.into()))?
            .with_intra_threads(threads)
            .map_err(|e| Error::onnx(context("setting threads"), e.into()))?;
        let builder = match save_to {
            Some(path) => builder
                .with_optimized_model_path(path)
                .map_err(|e| Error::onnx(context("setting the optimised model's path"), e.into()))?,
            None => builder,
        };
        let (mut builder, provider) = self.choose_provider(builder, options);
        let session = commit(&mut builder).map_err(|e| Error::VoiceModel {
            path: model.to_path_buf(),
            message: format!("ONNX Runtime cannot load it: {e}"),
        })?;
        tracing::info!("{}: {provider}, {threads} intra-op threads", model.display());
        Ok(LoadedSession { session, provider: provider.into(), intra_threads: threads })
    }

    /// Register the requested GPU provider if this runtime has it and a device answers; otherwise stay on CPU.
    /// An explicit request that cannot be met gives one warning per process saying why.
    fn choose_provider(
        &self,
        builder: ort::session::builder::SessionBuilder,
        options: &SessionOptions,
    ) -> (ort::session::builder::SessionBuilder, &'static str) {
        use ort::ep::{ExecutionProvider, TensorRT, CUDA};
        const CPU: &str = "CPUExecutionProvider";
        let wanted = match options.provider {
            Provider::Cpu => return (builder, CPU),
            Provider::Auto | Provider::Cuda => CUDA::NAME,
            Provider::TensorRt => TensorRT::NAME,
        };
        let explicit = options.provider != Provider::Auto;
        let offered = self.available_providers();
        if !offered.iter().any(|p| p == wanted) {
            let why = format!(
                "{} requested (device {}) but the ONNX Runtime at {} has no {wanted} (it offers {}); using CPU. \
                 Install the GPU runtime with `demod-voice setup --gpu`",
                options.provider.as_str(),
                options.device_id,
                self.path.display(),
                offered.join(", ")
            );
            if explicit {
                warn_once(&why);
            } else {
                tracing::debug!("{why}");
            }
            return (builder, CPU);
        }
        let dispatch = match options.provider {
            Provider::TensorRt => TensorRT::default().with_device_id(options.device_id).build().error_on_failure(),
            _ => CUDA::default()
                .with_device_id(options.device_id)
                // Exhaustive search is why CUDA Piper often runs slower than CPU; the heuristic is near-optimal.
                .with_conv_algorithm_search(ort::ep::cuda::ConvAlgorithmSearch::Heuristic)
                .build()
                .error_on_failure(),
        };
        match builder.with_execution_providers([dispatch]) {
            Ok(builder) => (builder, wanted),
            Err(e) => {
                let why =
                    format!("{wanted} could not start on device {} ({}); using CPU", options.device_id, e.message());
                if explicit {
                    warn_once(&why);
                } else {
                    tracing::info!("{why}");
                }
                (e.recover(), CPU)
            }
        }
    }
}

/// Warn once per process for the same message (a batch loading many sessions says it once).
fn warn_once(message: &str) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if !seen.iter().any(|m| m == message) {
        tracing::warn!("{message}");
        seen.push(message.to_string());
    }
}

/// The version string the library at `path` reports (it is already loaded, so this only takes a reference).
fn ort_version(path: &Path) -> String {
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: `init_from` has already opened and checked this library, so opening it again only bumps its
    // reference count; `OrtGetApiBase` has this signature in every ONNX Runtime release, and `GetVersionString`
    // returns a pointer to a static C string.
    unsafe {
        let Ok(lib) = libloading::Library::new(path) else {
            return "unknown".into();
        };
        let Ok(get_base) = lib.get::<GetApiBase>(b"OrtGetApiBase\0") else {
            return "unknown".into();
        };
        let base = get_base();
        if base.is_null() {
            return "unknown".into();
        }
        let version = ((*base).GetVersionString)();
        std::ffi::CStr::from_ptr(version).to_string_lossy().into_owned()
    }
}

fn available_providers() -> Vec<String> {
    let api = ort::api();
    let mut providers: *mut *mut std::ffi::c_char = std::ptr::null_mut();
    let mut count: std::ffi::c_int = 0;
    // SAFETY: the out-pointers are valid; the list is released with the matching release call below.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut providers, &mut count);
        if !status.0.is_null() || providers.is_null() {
            return Vec::new();
        }
        let list = (0..count as usize)
            .map(|idx| std::ffi::CStr::from_ptr(*providers.add(idx)).to_string_lossy().into_owned())
            .collect();
        let _ = (api.ReleaseAvailableProviders)(providers, count);
        list
    }
}

/// Which execution provider to ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Provider {
    /// CUDA when the runtime offers it and a device answers, else CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// NVIDIA TensorRT.
    TensorRt,
}

impl Provider {
    /// The provider's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Auto => "auto",
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt => "tensorrt",
        }
    }
}

impl From<crate::config::ProviderName> for Provider {
    fn from(name: crate::config::ProviderName) -> Self {
        use crate::config::ProviderName;
        match name {
            ProviderName::Auto => Provider::Auto,
            ProviderName::Cpu => Provider::Cpu,
            ProviderName::Cuda => Provider::Cuda,
            ProviderName::Tensorrt => Provider::TensorRt,
        }
    }
}

/// Session settings.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Which provider to ask for.
    pub provider: Provider,
    /// GPU index for CUDA and TensorRT.
    pub device_id: i32,
    /// Intra-op threads; `None` means the number of physical cores.
    pub intra_threads: Option<usize>,
    /// Keep each model's optimised graph here (per runtime version, CPU features and model file) and load that
    /// instead of optimising again: on CPU only; `None` optimises at every load.
    pub optimized_cache: Option<PathBuf>,
}

/// A session plus what it really runs on.
#[derive(Debug)]
pub struct LoadedSession {
    /// The ONNX Runtime session.
    pub session: Session,
    /// The provider the session actually uses.
    pub provider: String,
    /// Intra-op threads it was built with.
    pub intra_threads: usize,
}

/// Physical cores (not hyper-threads), falling back to the logical count.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::HashSet::new();
    let mut physical_id = String::new();
    for line in cpuinfo.lines() {
        if let Some(value) = line.strip_prefix("physical id") {
            physical_id = value.trim_start_matches([' ', '\t', ':']).to_string();
        } else if let Some(value) = line.strip_prefix("core id") {
            cores.insert((physical_id.clone(), value.trim_start_matches([' ', '\t', ':']).to_string()));
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

/// The CPU features an optimised graph may depend on (ONNX Runtime picks kernels and layouts by them).
fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let features = [
            ("avx", std::arch::is_x86_feature_detected!("avx")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
            ("avx512vnni", std::arch::is_x86_feature_detected!("avx512vnni")),
            ("avxvnni", std::arch::is_x86_feature_detected!("avxvnni")),
        ];
        features.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect::<Vec<_>>().join(",")
    }
    #[cfg(target_arch = "aarch64")]
    {
        let features = [
            ("neon", std::arch::is_aarch64_feature_detected!("neon")),
            ("dotprod", std::arch::is_aarch64_feature_detected!("dotprod")),
            ("fp16", std::arch::is_aarch64_feature_detected!("fp16")),
            ("i8mm", std::arch::is_aarch64_feature_detected!("i8mm")),
            ("sve", std::arch::is_aarch64_feature_detected!("sve")),
        ];
        features.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect::<Vec<_>>().join(",")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_path_is_an_error_naming_it() {
        let search =
            RuntimeSearch { flag: Some(PathBuf::from("/nonexistent/libonnxruntime.so")), ..Default::default() };
        let err = search.resolve().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/libonnxruntime.so") && err.contains("--ort-lib"), "{err}");
    }

    #[test]
    fn search_order_is_flag_env_config_data_system() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("libonnxruntime.so.1.31.1"), b"").unwrap();
        let search = RuntimeSearch {
            flag: Some("/a".into()),
            env: Some("/b".into()),
            config: Some("/c".into()),
            data_dir: Some(dir.path().to_path_buf()),
        };
        let sources: Vec<&str> = search.candidates().iter().map(|c| c.source).collect();
        assert_eq!(sources, ["--ort-lib", "ORT_DYLIB_PATH", "config", "data directory", "system", "system"]);
    }

    #[test]
    fn physical_cores_is_at_least_one() {
        assert!(physical_cores() >= 1);
    }
}
