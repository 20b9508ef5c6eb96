//! Files that appear whole or not at all, and files that are never opened through a planted symlink.
//!
//! Outputs are written to a temporary file beside their target, created with `O_EXCL` under an unguessable name
//! (so a symlink planted in a shared folder is never followed), synced to disk, then renamed into place, and the
//! folder is synced so the rename survives a power cut. Temporary files still being written are registered, so an
//! interrupted process ([`remove_pending`], called from the command-line's signal handler) leaves none behind.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Temporary files being written now, and whether the process is ending (no new ones then).
static PENDING: Mutex<Pending> = Mutex::new(Pending { files: Vec::new(), closing: false });

struct Pending {
    files: Vec<PathBuf>,
    closing: bool,
}

impl std::ops::Deref for Pending {
    type Target = Vec<PathBuf>;
    fn deref(&self) -> &Vec<PathBuf> {
        &self.files
    }
}

impl std::ops::DerefMut for Pending {
    fn deref_mut(&mut self) -> &mut Vec<PathBuf> {
        &mut self.files
    }
}

fn pending() -> std::sync::MutexGuard<'static, Pending> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// The folder a path's file lives in (`.` for a bare name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A new temporary file beside `target`, named `.NAME.RANDOM.partial`, created exclusively (it cannot be a
/// symlink or another process's file) and registered until [`commit`] or [`discard`].
pub fn create_temp_beside(target: &Path) -> std::io::Result<(File, PathBuf)> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    let folder = folder_of(target);
    let mut attempt = 0;
    loop {
        let path = folder.join(format!(".{name}.{}.partial", random_suffix()));
        // Created and registered under the list's lock, so an interruption either sees the file or comes first
        // (and then no file is made: the process is ending).
        let mut list = pending();
        if list.closing {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "the process is ending"));
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(file) => {
                list.push(path.clone());
                return Ok((file, path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// 16 hex digits no other process can predict: std's per-process random hash keys, over the time and a counter.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Sync `temp` to disk, rename it onto `target`, and sync the folder.
pub fn commit(temp: &Path, target: &Path) -> std::io::Result<()> {
    let result = File::open(temp).and_then(|f| f.sync_all()).and_then(|()| std::fs::rename(temp, target));
    if result.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    pending().retain(|p| p != temp);
    result?;
    // The rename is durable once the folder is synced.
    sync_folder(&folder_of(target));
    Ok(())
}

/// Sync a folder after renames into it (best effort: a folder that cannot be opened for it is not an error).
pub fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

/// Remove a temporary file that will not be committed.
pub fn discard(temp: &Path) {
    let _ = std::fs::remove_file(temp);
    pending().retain(|p| p != temp);
}

/// Remove every temporary file still being written (called when the process is interrupted, from an ordinary
/// thread: the list's lock is only ever held for a push or a removal, so waiting for it is short).
/// No temporary file is created after this (the process is ending).
pub fn remove_pending() -> usize {
    let mut list = pending();
    list.closing = true;
    let removed = list.drain(..).filter(|p| std::fs::remove_file(p).is_ok()).count();
    removed
}

/// Write `bytes` to `path` atomically and durably (see the module's text).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let write_error = |source| Error::Write { path: path.to_path_buf(), source };
    let (mut file, temp) = create_temp_beside(path).map_err(write_error)?;
    if let Err(source) = file.write_all(bytes) {
        discard(&temp);
        return Err(write_error(source));
    }
    drop(file);
    commit(&temp, path).map_err(write_error)
}

/// Open `path` for appending, creating it, but never through a symlink (`O_NOFOLLOW`).
pub fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().create(true).append(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Open `path` for reading and writing, creating it, never through a symlink (`O_NOFOLLOW`).
pub fn open_read_write(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Replace `path` with a new empty file: the old one (or a symlink planted there) is removed, then the new one is
/// created exclusively.
pub fn create_fresh(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_leaves_only_the_target_and_replaces_a_planted_symlink_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let target = dir.path().join("out.txt");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(!std::fs::symlink_metadata(&target).unwrap().file_type().is_symlink());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn temporary_names_are_unguessable_and_registered_until_committed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.wav");
        let (_f1, one) = create_temp_beside(&target).unwrap();
        let (_f2, two) = create_temp_beside(&target).unwrap();
        assert_ne!(one, two);
        let name = one.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".a.wav.") && name.ends_with(".partial") && name.len() > ".a.wav..partial".len() + 6);
        // Registered until committed or discarded (removing them all is the signal handler's job, tested end to
        // end: a test here would race the other tests' pending files).
        assert!(pending().contains(&one) && pending().contains(&two));
        discard(&one);
        commit(&two, &target).unwrap();
        assert!(!pending().contains(&one) && !pending().contains(&two));
        assert!(!one.exists() && target.is_file());
    }

    #[test]
    fn journals_and_logs_refuse_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("journal");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(open_append(&link).is_err());
        assert!(open_read_write(&link).is_err());
        create_fresh(&link).unwrap().write_all(b"log").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
