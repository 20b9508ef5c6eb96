//! Installing a catalogue voice: both files fetched into `VOICES/.downloads/KEY/` (kept there between tries, so an
//! interrupted download resumes), each checked against the catalogue's size and md5, then moved into the library
//! as one folder rename (`VOICES/KEY/KEY.onnx` and `.onnx.json`). A mismatch installs nothing and says so.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::{CatalogVoice, Http, HttpOptions};
use crate::error::{Error, Result};

/// Where the catalogue's files are and how to fetch them.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// What the catalogue's file paths are relative to.
    pub base_url: String,
    /// Download again even when the voice is installed.
    pub force: bool,
    /// Timeouts and retries.
    pub http: HttpOptions,
}

/// How far a download is.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The voice.
    pub key: &'a str,
    /// The file being fetched (its name).
    pub file: &'a str,
    /// Bytes of the voice (both files) here so far.
    pub done: u64,
    /// Bytes of the voice in all.
    pub total: u64,
}

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The voice's key (its name in the library).
    pub key: String,
    /// The installed model.
    pub model: PathBuf,
    /// Bytes fetched now (0 when it was already installed).
    pub fetched: u64,
    /// Bytes that an earlier, interrupted download had already fetched.
    pub resumed: u64,
    /// True when it was installed already and nothing was fetched.
    pub already: bool,
}

/// The hidden folder downloads are staged in (never listed as voices).
pub fn staging_dir(voices_dir: &Path) -> PathBuf {
    voices_dir.join(".downloads")
}

fn md5_hex(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// `base` + `path`, one slash between; spaces and the like percent-encoded.
pub fn join_url(base: &str, path: &str) -> String {
    let encoded: String = path
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("{}/{encoded}", base.trim_end_matches('/'))
}

/// An exclusive lock on one key's download (two processes fetching the same voice would mix their bytes).
struct DownloadLock {
    _file: File,
}

impl DownloadLock {
    fn take(path: &Path, key: &str) -> Result<DownloadLock> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| Error::Write { path: path.to_path_buf(), source })?;
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            return Err(Error::Download {
                url: key.to_string(),
                problem: format!(
                    "another demod-voice is downloading this voice (lock {}); wait for it",
                    path.display()
                ),
            });
        }
        Ok(DownloadLock { _file: file })
    }
}

/// Install `voice` from the catalogue into `voices_dir` (see the module's description). `progress` is told how
/// far it is after every chunk.
pub fn download(
    voice: &CatalogVoice,
    voices_dir: &Path,
    options: &DownloadOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Installed> {
    let key = voice.key.as_str();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    let target = voices_dir.join(key);
    let flat_model = voices_dir.join(format!("{key}.onnx"));
    if !options.force {
        if let Ok(model) = crate::assets::resolve_voice(key, voices_dir) {
            return Ok(Installed { key: key.to_string(), model, fetched: 0, resumed: 0, already: true });
        }
    }
    let (Some(model), Some(config)) = (voice.model_file(), voice.config_file()) else {
        return Err(Error::Catalog { origin: key.to_string(), problem: "the entry names no .onnx/.onnx.json".into() });
    };
    let staging = staging_dir(voices_dir).join(key);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let _lock = DownloadLock::take(&staging_dir(voices_dir).join(format!("{key}.lock")), key)?;
    let http = Http::new(options.http.clone());
    let total = voice.download_bytes();
    let mut done_before = 0u64;
    let mut fetched = 0u64;
    let mut resumed = 0u64;
    let files = [(config, format!("{key}.onnx.json")), (model, format!("{key}.onnx"))];
    for ((remote_path, remote), name) in &files {
        let partial = staging.join(format!("{name}.partial"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&partial)
            .map_err(io(&partial))?;
        let had = file.metadata().map_err(io(&partial))?.len();
        if had > remote.size_bytes {
            file.set_len(0).map_err(io(&partial))?;
        } else if had > 0 {
            resumed += had;
            tracing::info!("resuming {name} at {}", super::human_size(had));
        }
        let url = join_url(&options.base_url, remote_path);
        let got = http.download_into(&url, &mut file, Some(remote.size_bytes), &mut |here, _| {
            progress(&Progress { key, file: name, done: done_before + here, total });
        })?;
        fetched += got - had.min(got);
        file.sync_all().map_err(io(&partial))?;
        drop(file);
        let refuse = |problem: String| {
            // A bad copy is not kept to resume from: the next try starts clean.
            let _ = std::fs::remove_dir_all(&staging);
            Err(Error::Checksum { key: key.to_string(), file: name.clone(), url: url.clone(), problem })
        };
        let size = std::fs::metadata(&partial).map_err(io(&partial))?.len();
        if size != remote.size_bytes {
            return refuse(format!("{size} bytes where the catalogue says {}", remote.size_bytes));
        }
        let digest = md5_hex(&partial).map_err(io(&partial))?;
        if !digest.eq_ignore_ascii_case(&remote.md5_digest) {
            return refuse(format!("md5 {digest} where the catalogue says {}", remote.md5_digest));
        }
        done_before += remote.size_bytes;
    }
    // Both files are whole: assemble the folder beside the library and move it in with one rename.
    let ready = staging_dir(voices_dir).join(format!("{key}.ready"));
    let _ = std::fs::remove_dir_all(&ready);
    std::fs::create_dir_all(&ready).map_err(io(&ready))?;
    for (_, name) in &files {
        let from = staging.join(format!("{name}.partial"));
        std::fs::rename(&from, ready.join(name)).map_err(io(&from))?;
    }
    crate::durable::sync_folder(&ready);
    let old = staging_dir(voices_dir).join(format!("{key}.old"));
    if target.exists() {
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(&target, &old).map_err(io(&target))?;
    }
    std::fs::rename(&ready, &target).map_err(io(&target))?;
    crate::durable::sync_folder(voices_dir);
    let _ = std::fs::remove_dir_all(&old);
    let _ = std::fs::remove_dir_all(&staging);
    // A flat copy of the same voice (as `setup` installs the default one) would shadow or duplicate the new one.
    if options.force && flat_model.is_file() {
        let _ = std::fs::remove_file(&flat_model);
        let _ = std::fs::remove_file(crate::piper::VoiceConfig::path_for_model(&flat_model));
    }
    Ok(Installed { key: key.to_string(), model: target.join(format!("{key}.onnx")), fetched, resumed, already: false })
}

/// Remove the installed voice `name` from `voices_dir` (its folder, or its two files when it lies flat in the
/// library); the paths removed. A voice given by path, or outside the library, is not touched.
pub fn remove(name: &str, voices_dir: &Path) -> Result<Vec<PathBuf>> {
    let voice = crate::assets::installed_voices(voices_dir).into_iter().find(|v| v.name == name).ok_or_else(|| {
        let installed: Vec<String> = crate::assets::installed_voices(voices_dir).into_iter().map(|v| v.name).collect();
        Error::VoiceNotFound {
            name: name.to_string(),
            installed: if installed.is_empty() { "none".into() } else { installed.join(", ") },
        }
    })?;
    let config = crate::piper::VoiceConfig::path_for_model(&voice.model);
    let folder = voice.model.parent().map(Path::to_path_buf).unwrap_or_default();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Write { path, source }
    };
    let mut removed = Vec::new();
    for path in [&voice.model, &config] {
        if path.exists() {
            std::fs::remove_file(path).map_err(io(path))?;
            removed.push(path.clone());
        }
    }
    // Its own folder goes too, with what the catalogue put beside it, when nothing else lives there.
    if folder != voices_dir && folder.file_name().is_some_and(|f| f == name) {
        let others = std::fs::read_dir(&folder)
            .map(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "onnx")))
            .unwrap_or(true);
        if !others {
            std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
            removed.push(folder);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_joined_with_one_slash_and_encoded() {
        assert_eq!(join_url("http://h/r/", "de/x y.onnx"), "http://h/r/de/x%20y.onnx");
        assert_eq!(join_url("http://h/r", "a.onnx"), "http://h/r/a.onnx");
    }

    #[test]
    fn md5_is_lower_case_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(md5_hex(&path).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn removing_a_voice_takes_its_folder_and_leaves_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("de_DE-x-low");
        std::fs::create_dir_all(&folder).unwrap();
        for (path, bytes) in [
            (folder.join("de_DE-x-low.onnx"), "m"),
            (folder.join("de_DE-x-low.onnx.json"), "{}"),
            (dir.path().join("en_US-y-low.onnx"), "m"),
            (dir.path().join("en_US-y-low.onnx.json"), "{}"),
        ] {
            std::fs::write(path, bytes).unwrap();
        }
        let removed = remove("de_DE-x-low", dir.path()).unwrap();
        assert_eq!(removed.len(), 3);
        assert!(!folder.exists());
        assert!(dir.path().join("en_US-y-low.onnx").exists());
        let err = remove("de_DE-x-low", dir.path()).unwrap_err().to_string();
        assert!(err.contains("en_US-y-low"), "{err}");
    }
}
