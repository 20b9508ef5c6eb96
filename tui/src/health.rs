//! The installation checks (runtime, GPU, espeak-ng, voices, config, disk, sound devices): what works, what does
//! not, and what to do about it. `demod-voice health` prints them; the app's Health screen shows them.
//!
//! The JSON layout is versioned (`schema_version`) and described by `docs/health.schema.json`. Each check is
//! `ok`, `warning` or `error`; the command exits 1 when any check is an error. Checks carry the name the old
//! Python tool used (`legacy_name`) so scripts written for it can find them.

use std::time::Instant;

use demod_voice_core::assets;
use demod_voice_core::onnx::{Runtime, RuntimeSearch};
use demod_voice_core::piper::SynthesisOptions;
use serde::Serialize;

use crate::context::Context;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Error,
}

#[derive(Serialize)]
pub struct Check {
    pub name: &'static str,
    pub legacy_name: &'static str,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub status: Status,
    pub version: String,
    pub checks: Vec<Check>,
}

pub(crate) fn check(
    name: &'static str,
    legacy_name: &'static str,
    status: Status,
    message: impl Into<String>,
) -> Check {
    Check { name, legacy_name, status, message: message.into(), hint: None, details: serde_json::json!({}) }
}

impl Check {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

pub fn collect(ctx: &Context, deep: bool, config_problem: Option<String>) -> Report {
    let version = format!(
        "{} ({} {}, {} build)",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    let mut checks = vec![check("version", "demod-voice", Status::Ok, format!("demod-voice {version}"))];
    let runtime = runtime_check(ctx, &mut checks);
    checks.push(gpu_check(runtime, ctx));
    let espeak_ok = espeak_check(ctx, &mut checks);
    checks.push(voices_check(ctx));
    if deep {
        checks.push(deep_check(ctx, runtime.is_some() && espeak_ok));
    }
    checks.push(config_check(ctx, config_problem));
    checks.push(disk_check(ctx));
    checks.push(audio_check(&ctx.settings.config.audio));
    let status = checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok);
    Report { schema_version: SCHEMA_VERSION, status, version: env!("CARGO_PKG_VERSION").into(), checks }
}

/// Sound devices, for the terminal app's Speak and Live screens. Missing ones are a warning: files and pipes work
/// without them.
fn audio_check(audio: &demod_voice_core::config::AudioSection) -> Check {
    let output = crate::devices::describe(audio.output_device.as_deref(), false);
    let input = crate::devices::describe(audio.input_device.as_deref(), true);
    let details = serde_json::json!({
        "output": output.as_ref().ok(),
        "input": input.as_ref().ok(),
    });
    match (&output, &input) {
        (Ok(out), Ok(inp)) => check("audio", "audio", Status::Ok, format!("output {out}; input {inp}")),
        (Ok(out), Err(problem)) => check("audio", "audio", Status::Warning, format!("output {out}; no input: {problem}"))
            .hint("the app's Live screen needs a microphone; Speak and files work"),
        (Err(problem), _) => check("audio", "audio", Status::Warning, format!("no audio output: {problem}"))
            .hint("speak to files or pipes works everywhere; for sound in the app, check the sound card (aplay -l) or the ALSA/PulseAudio setup"),
    }
    .details(details)
}

fn runtime_check(ctx: &Context, checks: &mut Vec<Check>) -> Option<&'static Runtime> {
    // Health never installs anything: it reports what is there.
    let search: RuntimeSearch = ctx.settings.runtime_search();
    let result =
        search.resolve().and_then(|candidate| Runtime::get_or_init(&search).map(|runtime| (candidate, runtime)));
    match result {
        Ok((candidate, runtime)) => {
            let providers = runtime.available_providers();
            checks.push(
                check(
                    "runtime",
                    "onnxruntime",
                    Status::Ok,
                    format!("ONNX Runtime {} from {} ({})", runtime.version, runtime.path.display(), candidate.source),
                )
                .details(serde_json::json!({
                    "path": runtime.path,
                    "version": runtime.version,
                    "found_by": candidate.source,
                    "providers": providers,
                })),
            );
            Some(runtime)
        }
        Err(e) => {
            checks.push(
                check("runtime", "onnxruntime", Status::Error, e.to_string())
                    .hint("run `demod-voice setup`, or point --ort-lib / ORT_DYLIB_PATH at a libonnxruntime.so"),
            );
            None
        }
    }
}

fn gpu_check(runtime: Option<&Runtime>, ctx: &Context) -> Check {
    let devices = nvidia_devices();
    let device_json: Vec<serde_json::Value> = devices
        .iter()
        .map(|(name, memory_mib)| serde_json::json!({ "name": name, "memory_mib": memory_mib }))
        .collect();
    let Some(runtime) = runtime else {
        return check("gpu", "cuda", Status::Warning, "unknown: no ONNX Runtime loaded")
            .details(serde_json::json!({ "cuda_provider": false, "devices": device_json }));
    };
    let has_cuda = runtime.available_providers().iter().any(|p| p == "CUDAExecutionProvider");
    let details = serde_json::json!({
        "cuda_provider": has_cuda,
        "devices": device_json,
        "requested_provider": ctx.settings.config.runtime.provider.as_str(),
        "device_id": ctx.settings.config.runtime.device_id,
    });
    match (has_cuda, devices.is_empty()) {
        (true, false) => check(
            "gpu",
            "cuda",
            Status::Ok,
            format!(
                "CUDA usable: {}",
                devices
                    .iter()
                    .map(|(n, m)| match m {
                        Some(m) => format!("{n} ({m} MiB)"),
                        None => n.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .details(details),
        (true, true) => check(
            "gpu",
            "cuda",
            Status::Warning,
            "the runtime has CUDA but no NVIDIA device was found; models run on CPU",
        )
        .hint("check the NVIDIA driver (nvidia-smi)")
        .details(details),
        (false, _) => check(
            "gpu",
            "cuda",
            Status::Warning,
            format!("CPU only: the ONNX Runtime at {} has no CUDA provider", runtime.path.display()),
        )
        .hint(if devices.is_empty() {
            "no NVIDIA GPU found either; CPU synthesis is fully supported".to_string()
        } else {
            "an NVIDIA GPU is present: install the GPU runtime with `demod-voice setup --gpu`".to_string()
        })
        .details(details),
    }
}

/// NVIDIA devices from the driver's proc files, with memory from nvidia-smi when it is installed.
fn nvidia_devices() -> Vec<(String, Option<u64>)> {
    if let Ok(output) = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
        .output()
    {
        if output.status.success() {
            return String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| {
                    let (name, memory) = line.split_once(',')?;
                    Some((name.trim().to_string(), memory.trim().parse().ok()))
                })
                .collect();
        }
    }
    let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("information")).ok())
        .filter_map(|info| info.lines().find_map(|l| l.strip_prefix("Model:").map(|m| (m.trim().to_string(), None))))
        .collect()
}

fn espeak_check(ctx: &Context, checks: &mut Vec<Check>) -> bool {
    let lookup = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let found = match assets::find_espeak(&ctx.settings.dirs, lookup) {
        Ok(Some(found)) => found,
        Ok(None) => {
            checks.push(
                check("espeak", "espeak", Status::Error, "espeak-ng not found")
                    .hint("run `demod-voice setup` or install espeak-ng (apt install espeak-ng)"),
            );
            return false;
        }
        Err(e) => {
            checks.push(check("espeak", "espeak", Status::Error, e.to_string()));
            return false;
        }
    };
    let loaded = demod_voice_core::espeak::Espeak::get_or_load(&found.paths)
        .and_then(|espeak| espeak.clauses("en-us", "hello").map(|c| (espeak, c)));
    match loaded {
        Ok((espeak, clauses)) => {
            let phonemes: String = clauses.iter().map(|c| c.phonemes.as_str()).collect();
            let ok = !phonemes.is_empty();
            checks.push(
                check(
                    "espeak",
                    "espeak",
                    if ok { Status::Ok } else { Status::Error },
                    format!("espeak-ng {} ({}); \"hello\" -> {phonemes}", espeak.version(), found.source),
                )
                .details(serde_json::json!({
                    "library": found.paths.library,
                    "data": found.paths.data_dir,
                    "version": espeak.version(),
                    "phonemes": phonemes,
                })),
            );
            ok
        }
        Err(e) => {
            checks
                .push(check("espeak", "espeak", Status::Error, e.to_string()).hint("run `demod-voice setup --force`"));
            false
        }
    }
}

fn voices_check(ctx: &Context) -> Check {
    let voices = assets::installed_voices(&ctx.settings.dirs.voices_dir());
    let profiles = demod_voice_core::profile::list(&ctx.settings.profiles_dir()).len();
    let configured = &ctx.settings.config.tts.voice;
    let has_configured = assets::resolve_voice(configured, &ctx.settings.dirs.voices_dir()).is_ok();
    let details = serde_json::json!({
        "voices_dir": ctx.settings.dirs.voices_dir(),
        "voices": voices.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
        "profiles": profiles,
        "default_voice": configured,
    });
    let message =
        format!("{} voice(s), {profiles} profile(s) in {}", voices.len(), ctx.settings.dirs.voices_dir().display());
    if has_configured {
        check("voices", "piper", Status::Ok, message).details(details)
    } else {
        check(
            "voices",
            "piper",
            Status::Warning,
            format!("{message}; the default voice `{configured}` is not installed"),
        )
        .hint("run `demod-voice setup` (it is also installed on first use)")
        .details(details)
    }
}

fn deep_check(ctx: &Context, prerequisites: bool) -> Check {
    if !prerequisites {
        return check("synthesis", "tts", Status::Error, "skipped: the runtime or espeak-ng is missing");
    }
    let started = Instant::now();
    let result = ctx.settings.load_voice_no_install(None).and_then(|voice| {
        let load = started.elapsed().as_secs_f64();
        let synth_start = Instant::now();
        let mut samples = 0usize;
        voice.synthesize("Hello.", &SynthesisOptions::default(), |audio| {
            samples += audio.samples.len();
            Ok::<(), demod_voice_core::Error>(())
        })?;
        let seconds = synth_start.elapsed().as_secs_f64();
        let audio = samples as f64 / f64::from(voice.sample_rate());
        Ok((voice.name.clone(), voice.provider(), load, seconds, audio))
    });
    match result {
        Ok((name, provider, load, seconds, audio)) if audio > 0.0 => check(
            "synthesis",
            "tts",
            Status::Ok,
            format!(
                "{name} on {provider}: loaded in {load:.2} s, \"Hello.\" ({audio:.2} s) in {seconds:.3} s, real-time factor {:.3}",
                seconds / audio
            ),
        )
        .details(serde_json::json!({
            "voice": name, "provider": provider, "load_seconds": load,
            "synth_seconds": seconds, "audio_seconds": audio, "real_time_factor": seconds / audio,
        })),
        Ok(_) => check("synthesis", "tts", Status::Error, "the voice produced no audio"),
        Err(e) => check("synthesis", "tts", Status::Error, format!("{e:#}")),
    }
}

fn config_check(ctx: &Context, problem: Option<String>) -> Check {
    let path = ctx.settings.path.clone();
    let shown = path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| format!("{} (absent: defaults)", ctx.settings.default_config_path.display()));
    match problem {
        Some(problem) => check("config", "config", Status::Error, problem)
            .hint("fix the file or check it with `demod-voice config check FILE`; the built-in defaults were used for these checks")
            .details(serde_json::json!({ "path": path, "valid": false })),
        None if !ctx.settings.warnings.is_empty() => check(
            "config",
            "config",
            Status::Warning,
            format!("{shown}: {}", ctx.settings.warnings.join("; ")),
        )
        .details(serde_json::json!({ "path": path, "valid": true, "warnings": ctx.settings.warnings })),
        None => check("config", "config", Status::Ok, format!("{shown}: valid"))
            .details(serde_json::json!({ "path": path, "valid": true })),
    }
}

fn disk_check(ctx: &Context) -> Check {
    // The data directory may not exist yet: measure the nearest existing parent.
    let mut probe = ctx.settings.dirs.data.clone();
    while !probe.exists() {
        if !probe.pop() {
            break;
        }
    }
    let free = free_bytes(&probe);
    let details = serde_json::json!({ "path": ctx.settings.dirs.data, "free_bytes": free });
    match free {
        Some(bytes) => {
            let gib = bytes as f64 / (1u64 << 30) as f64;
            let message = format!("{gib:.1} GiB free for {}", ctx.settings.dirs.data.display());
            let status = if bytes < 200 << 20 {
                Status::Error
            } else if bytes < 1 << 30 {
                Status::Warning
            } else {
                Status::Ok
            };
            let c = check("disk", "disk", status, message).details(details);
            if status == Status::Ok {
                c
            } else {
                c.hint("voices need about 60-120 MB each; free some space")
            }
        }
        None => check("disk", "disk", Status::Warning, format!("cannot measure free space at {}", probe.display()))
            .details(details),
    }
}

fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is a plain C struct of integers, for which all-zero bytes are a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stat` is a valid out-pointer of the right type.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}
