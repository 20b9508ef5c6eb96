//! `cargo xtask`: bundle the plugin (nice-plug's bundler), install the bundles where hosts look, and cut a
//! release into `dist/`.
//!
//! ```text
//! cargo xtask bundle demod-voice-plugin --release   # target/bundled/DeMoD Voice.clap and .vst3
//! cargo xtask install                                # copy them to ~/.clap and ~/.vst3
//! cargo xtask dist                                   # release binary + bundles + SHA256SUMS in dist/
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::Digest;

const BUNDLE_NAME: &str = "DeMoD Voice";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("install") => install(),
        Some("dist") => dist(),
        Some(command) => {
            let rest: Vec<String> = std::iter::once(command.to_string()).chain(args).collect();
            nice_plug_xtask::main_with_args("cargo xtask", rest).map_err(|e| anyhow::anyhow!("{e:#}"))
        }
        None => {
            bail!("usage: cargo xtask bundle demod-voice-plugin [--release] | cargo xtask install | cargo xtask dist")
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// Copy the bundles from `target/bundled` into the per-user folders Reaper and Bitwig scan.
fn install() -> Result<()> {
    let home = std::env::var_os("HOME").map(PathBuf::from).context("HOME is not set")?;
    let bundled = target_dir().join("bundled");
    for (ext, folder) in [("clap", ".clap"), ("vst3", ".vst3")] {
        let from = bundled.join(format!("{BUNDLE_NAME}.{ext}"));
        if !from.exists() {
            bail!("{} not found; run `cargo xtask bundle demod-voice-plugin --release` first", from.display());
        }
        let to_dir = home.join(folder);
        std::fs::create_dir_all(&to_dir).with_context(|| format!("cannot create {}", to_dir.display()))?;
        let to = to_dir.join(from.file_name().context("bundle name")?);
        if to.is_dir() {
            std::fs::remove_dir_all(&to).with_context(|| format!("cannot replace {}", to.display()))?;
        } else if to.exists() {
            std::fs::remove_file(&to).with_context(|| format!("cannot replace {}", to.display()))?;
        }
        copy_recursive(&from, &to)?;
        println!("installed {}", to.display());
    }
    Ok(())
}

/// Build the release binary and the plugin bundles and collect them in `dist/` with a checksum file.
fn dist() -> Result<()> {
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "demod-voice"])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the demod-voice binary failed");
    }
    nice_plug_xtask::main_with_args("cargo xtask", ["bundle", "demod-voice-plugin", "--release"].map(String::from))
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let dist = root.join("dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist).with_context(|| format!("cannot clear {}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist)?;
    let target = target_dir();
    copy_recursive(&target.join("release/demod-voice"), &dist.join("demod-voice"))?;
    for ext in ["clap", "vst3"] {
        let name = format!("{BUNDLE_NAME}.{ext}");
        copy_recursive(&target.join("bundled").join(&name), &dist.join(&name))?;
    }
    // One line per file (bundle folders are listed file by file), in `sha256sum -c` format.
    let mut files = Vec::new();
    collect_files(&dist, &dist, &mut files)?;
    files.sort();
    let mut sums = String::new();
    for relative in &files {
        let bytes = std::fs::read(dist.join(relative))?;
        let digest = sha2::Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        sums.push_str(&format!("{hex}  {}\n", relative.display()));
    }
    std::fs::write(dist.join("SHA256SUMS"), sums)?;
    println!("wrote {} with {} files and SHA256SUMS", dist.display(), files.len());
    Ok(())
}

fn collect_files(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(base, &path, out)?;
        } else if path.file_name().is_some_and(|n| n != "SHA256SUMS") {
            out.push(path.strip_prefix(base)?.to_path_buf());
        }
    }
    Ok(())
}

fn copy_recursive(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_recursive(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}
