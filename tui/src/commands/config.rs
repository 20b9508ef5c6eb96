//! `config show|init|check` and `presets list|show`.

use std::io::Write;

use anyhow::{Context as _, Result};
use demod_voice_core::config;
use demod_voice_core::presets::{self, PresetSource};
use serde::Serialize;

use crate::cli::{ConfigCommand, PresetsCommand};
use crate::context::Context;
use crate::error::usage;

#[derive(Serialize)]
struct ShownKey {
    key: String,
    value: String,
    source: String,
}

pub fn config(ctx: &Context, command: ConfigCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        ConfigCommand::Show { json } => {
            let entries: Vec<ShownKey> = ctx
                .settings
                .entries()
                .into_iter()
                .map(|(key, value, source)| ShownKey { key, value, source })
                .collect();
            if json {
                let file = ctx.settings.path.as_ref().map(|p| p.display().to_string());
                serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "file": file, "keys": entries }))?;
                writeln!(out)?;
            } else {
                match &ctx.settings.path {
                    Some(path) => writeln!(out, "# config file: {}", path.display())?,
                    None => writeln!(
                        out,
                        "# no config file ({} does not exist); built-in defaults",
                        ctx.settings.default_config_path.display()
                    )?,
                }
                let width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
                for entry in entries {
                    writeln!(out, "{:<width$}  {:<20}  # {}", entry.key, entry.value, entry.source)?;
                }
            }
        }
        ConfigCommand::Init { path, force } => {
            let path = path.unwrap_or_else(|| ctx.settings.default_config_path.clone());
            if path.exists() && !force {
                return Err(usage(format!("{} already exists; pass --force to replace it", path.display())));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            demod_voice_core::durable::write_atomic(&path, config::DEFAULT_FILE.as_bytes())?;
            writeln!(out, "wrote {}", path.display())?;
        }
        ConfigCommand::Check { path } => {
            let loaded = config::load_file(&path)?;
            for warning in &loaded.warnings {
                writeln!(out, "warning: {warning}")?;
            }
            let set = loaded.sources.len();
            writeln!(out, "{}: ok ({set} key(s) set, the rest default)", path.display())?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct PresetRow {
    name: String,
    description: String,
    source: String,
    problem: Option<String>,
}

pub fn presets(ctx: &Context, command: PresetsCommand) -> Result<()> {
    let user_dir = ctx.settings.dirs.config.join("presets");
    let mut out = std::io::stdout().lock();
    match command {
        PresetsCommand::List { json } => {
            let rows: Vec<PresetRow> = presets::all(&user_dir)
                .into_iter()
                .map(|entry| match entry {
                    Ok(found) => PresetRow {
                        name: found.preset.name,
                        description: found.preset.description,
                        source: found.source.to_string(),
                        problem: None,
                    },
                    Err(e) => PresetRow {
                        name: "?".into(),
                        description: String::new(),
                        source: "user".into(),
                        problem: Some(e.to_string()),
                    },
                })
                .collect();
            if json {
                serde_json::to_writer_pretty(&mut out, &rows)?;
                writeln!(out)?;
            } else {
                for row in rows {
                    match row.problem {
                        None => writeln!(out, "{:<20} {:<8} {}", row.name, short_source(&row.source), row.description)?,
                        Some(problem) => writeln!(out, "{:<20} unusable: {problem}", row.name)?,
                    }
                }
            }
        }
        PresetsCommand::Show { name } => {
            let found = presets::find(&name, &user_dir)?;
            writeln!(
                out,
                "# {} preset",
                match &found.source {
                    PresetSource::Factory => "factory".to_string(),
                    PresetSource::User(path) => format!("user preset from {}", path.display()),
                }
            )?;
            let text = match &found.source {
                PresetSource::Factory => presets::FACTORY
                    .iter()
                    .find(|(n, _)| *n == found.preset.name)
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_default(),
                PresetSource::User(path) => std::fs::read_to_string(path)?,
            };
            write!(out, "{text}")?;
        }
    }
    Ok(())
}

fn short_source(source: &str) -> &str {
    if source.starts_with("user") {
        "user"
    } else {
        source
    }
}
