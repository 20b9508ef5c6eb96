//! `cargo xtask`: bundle the plugin (nice-plug's bundler), install the bundles where hosts look, and cut a
//! release into `dist/`.
//!
//! ```text
//! cargo xtask bundle demod-voice-plugin --release   # target/bundled/DeMoD Voice.clap and .vst3
//! cargo xtask install                                # copy them to ~/.clap and ~/.vst3
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const BUNDLE_NAME: &str = "DeMoD Voice";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("install") => install(),
        Some(command) => {
            let rest: Vec<String> = std::iter::once(command.to_string()).chain(args).collect();
            nice_plug_xtask::main_with_args("cargo xtask", rest).map_err(|e| anyhow::anyhow!("{e:#}"))
        }
        None => bail!("usage: cargo xtask bundle demod-voice-plugin [--release] | cargo xtask install"),
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
