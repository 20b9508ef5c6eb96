//! `models add|list|show|remove`: the neural conversion models in the data folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use demod_voice_core::neural;

use crate::cli::ModelsCommand;
use crate::context::Context;
use crate::error::usage;

/// Each FILE|URL argument as a local file and where it came from: URLs downloaded (resuming a broken download,
/// with a progress line on a terminal), paths as they are.
fn fetch_sources(ctx: &Context, dir: &Path, args: &[String]) -> Result<Vec<(PathBuf, String)>> {
    let mut sources = Vec::new();
    for arg in args {
        if !neural::is_url(arg) {
            sources.push((PathBuf::from(arg), arg.clone()));
            continue;
        }
        if ctx.settings.offline {
            return Err(usage(format!("--offline forbids downloading {arg}; download it yourself and give the file")));
        }
        let name = arg.rsplit('/').next().unwrap_or(arg);
        let http = ctx.settings.download_options(false).http;
        let mut line = super::catalog::ProgressLine::new(ctx);
        let path = neural::download(arg, dir, &http, &mut |done, total| line.draw(name, done, total));
        line.finish();
        sources.push((path?, arg.clone()));
    }
    Ok(sources)
}

pub fn models(ctx: &Context, command: ModelsCommand) -> Result<()> {
    let dir = ctx.settings.models_dir();
    let mut out = std::io::stdout().lock();
    match command {
        ModelsCommand::Add { files, name, sha256, force, licence } => {
            let runtime = ctx.settings.runtime()?;
            let sources = fetch_sources(ctx, &dir, &files)?;
            let added = neural::add_with(
                runtime,
                &dir,
                &sources,
                name.as_deref(),
                sha256.as_deref(),
                force,
                licence.as_deref(),
            );
            // A downloaded file is not kept once installed or refused (a refused one would only be refused again).
            for (path, origin) in &sources {
                if neural::is_url(origin) {
                    let _ = std::fs::remove_file(path);
                }
            }
            let manifest = added?;
            if !ctx.global.quiet {
                let kinds: Vec<String> = manifest.files.iter().map(|f| f.kind.describe()).collect();
                eprintln!(
                    "installed model {} ({} engine: {}) into {}",
                    manifest.name,
                    manifest.engine,
                    kinds.join(" + "),
                    dir.join(&manifest.name).display()
                );
            }
        }
        ModelsCommand::List { json } => {
            let installed = neural::list(&dir);
            if json {
                let rows: Vec<serde_json::Value> = installed
                    .iter()
                    .map(|(name, manifest)| match manifest {
                        Ok(m) => serde_json::to_value(m).unwrap_or_default(),
                        Err(problem) => serde_json::json!({"name": name, "problem": problem}),
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut out, &serde_json::json!({"models": rows}))?;
                writeln!(out)?;
                return Ok(());
            }
            if installed.is_empty() {
                writeln!(
                    out,
                    "no models installed in {}; `demod-voice models add FILE.onnx` installs one",
                    dir.display()
                )?;
                return Ok(());
            }
            writeln!(out, "{:<24} {:<11} WHAT", "NAME", "ENGINE")?;
            for (name, manifest) in installed {
                match manifest {
                    Ok(m) => {
                        let kinds: Vec<String> = m.files.iter().map(|f| f.kind.describe()).collect();
                        writeln!(out, "{:<24} {:<11} {}", name, m.engine, kinds.join(" + "))?;
                    }
                    Err(problem) => writeln!(out, "{name:<24} unusable: {problem}")?,
                }
            }
        }
        ModelsCommand::Show { name } => {
            let manifest = neural::find(&dir, &name)?;
            writeln!(out, "model          {}", manifest.name)?;
            writeln!(out, "engine         {}", manifest.engine)?;
            for file in &manifest.files {
                writeln!(out, "file           {} ({})", file.file, file.kind.describe())?;
                writeln!(out, "  sha256       {}", file.sha256)?;
                writeln!(out, "  from         {}", file.source)?;
            }
            if let Some(licence) = &manifest.licence {
                writeln!(out, "licence        {licence}")?;
            }
        }
        ModelsCommand::Remove { name } => {
            let removed = neural::remove(&dir, &name)?;
            if !ctx.global.quiet {
                eprintln!("removed {}", removed.display());
            }
        }
    }
    Ok(())
}
