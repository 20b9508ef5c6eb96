//! `voices catalog|download|remove`: Piper's voice catalogue, installing from it, removing installed voices.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context as _, Result};
use demod_voice_core::catalog::{self, human_age, human_size, CatalogVoice, LoadedCatalog};

use crate::context::Context;
use crate::error::usage;

/// Say where the catalogue came from and how old it is (stderr), and any warning its loading gave.
fn say_origin(ctx: &Context, loaded: &LoadedCatalog) {
    if let Some(warning) = &loaded.warning {
        eprintln!("warning: {warning}");
    } else if !ctx.global.quiet {
        let how = if loaded.from_cache { "cached copy" } else { "fetched now" };
        eprintln!("catalogue: {} ({how}, {} old)", loaded.url, human_age(loaded.age()));
    }
}

pub fn list(ctx: &Context, language: Option<&str>, quality: Option<&str>, refresh: bool, json: bool) -> Result<()> {
    if let Some(q) = quality {
        if catalog::quality_rank(q) > 3 {
            return Err(usage(format!("--quality {q}: expected x_low, low, medium or high")));
        }
    }
    let loaded = ctx.settings.catalog(refresh)?;
    say_origin(ctx, &loaded);
    let installed: std::collections::HashSet<String> =
        demod_voice_core::assets::installed_voices(&ctx.settings.dirs.voices_dir())
            .into_iter()
            .map(|v| v.name)
            .collect();
    let voices = loaded.catalog.filter(language, quality);
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<serde_json::Value> = voices
            .iter()
            .map(|v| {
                serde_json::json!({
                    "key": v.key,
                    "language": v.language,
                    "quality": v.quality,
                    "num_speakers": v.num_speakers,
                    "size_bytes": v.download_bytes(),
                    "aliases": v.aliases,
                    "installed": installed.contains(&v.key),
                })
            })
            .collect();
        let fetched = loaded.fetched.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "url": loaded.url,
                "fetched_unix": fetched,
                "age_seconds": loaded.age().as_secs(),
                "from_cache": loaded.from_cache,
                "voices": rows,
            }),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    if voices.is_empty() {
        let languages: std::collections::BTreeSet<&str> =
            loaded.catalog.voices.values().map(|v| v.language.code.as_str()).collect();
        bail!(
            "no voice in the catalogue matches{}{}; its languages: {}",
            language.map(|l| format!(" --language {l}")).unwrap_or_default(),
            quality.map(|q| format!(" --quality {q}")).unwrap_or_default(),
            languages.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    writeln!(out, "{:<34} {:<36} {:<7} {:>8} {:>9}  INSTALLED", "KEY", "LANGUAGE", "QUALITY", "SPEAKERS", "SIZE")?;
    for v in voices {
        let language = format!("{} {}", v.language.code, v.language_names());
        writeln!(
            out,
            "{:<34} {:<36} {:<7} {:>8} {:>9}  {}",
            v.key,
            truncate(&language, 36),
            v.quality,
            v.num_speakers,
            human_size(v.download_bytes()),
            if installed.contains(&v.key) { "yes" } else { "-" }
        )?;
    }
    Ok(())
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// The catalogue entry for `key` (its key or an alias), or an error naming the nearest keys.
fn find<'a>(loaded: &'a LoadedCatalog, key: &str) -> Result<&'a CatalogVoice> {
    if let Some(voice) = loaded.catalog.find(key) {
        return Ok(voice);
    }
    let suggestions = loaded.catalog.suggestions(key);
    let hint =
        if suggestions.is_empty() { String::new() } else { format!(" (did you mean {}?)", suggestions.join(", ")) };
    Err(usage(format!(
        "`{key}` is not in the voice catalogue{hint}; `demod-voice voices catalog [--language CODE]` lists its voices"
    )))
}

/// A download's progress on stderr when it is a terminal (and not `--quiet`), redrawn at most ten times a second
/// and once at the end: a bar when the size is known, the bytes so far otherwise.
pub(crate) struct ProgressLine {
    shown: bool,
    last_drawn: std::time::Instant,
}

impl ProgressLine {
    pub(crate) fn new(ctx: &Context) -> ProgressLine {
        ProgressLine {
            shown: !ctx.global.quiet && std::io::stderr().is_terminal(),
            last_drawn: std::time::Instant::now() - std::time::Duration::from_secs(1),
        }
    }

    pub(crate) fn draw(&mut self, key: &str, done: u64, total: Option<u64>) {
        if self.shown && (self.last_drawn.elapsed().as_millis() >= 100 || total == Some(done)) {
            self.last_drawn = std::time::Instant::now();
            match total {
                Some(total) => eprint!("{}", bar(key, done, total)),
                None => eprint!("\r{key} {}", human_size(done)),
            }
        }
    }

    /// End the line (after the download, whatever its outcome).
    pub(crate) fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// A progress bar: `key [#####.....] 45% 28.1/63.2 MB`.
fn bar(key: &str, done: u64, total: u64) -> String {
    let width = 24;
    let filled = (done.min(total) * width as u64).checked_div(total).map_or(width, |f| f as usize);
    format!(
        "\r{key} [{}{}] {:>3}% {}/{}",
        "#".repeat(filled),
        ".".repeat(width - filled),
        (done * 100).checked_div(total).unwrap_or(100),
        human_size(done),
        human_size(total)
    )
}

pub fn download(ctx: &Context, keys: &[String], force: bool) -> Result<()> {
    if ctx.settings.offline {
        return Err(usage("--offline forbids downloading; run `voices download` without it"));
    }
    let loaded = ctx.settings.catalog(false)?;
    say_origin(ctx, &loaded);
    // Every key is checked before anything is fetched.
    let voices: Vec<&CatalogVoice> = keys.iter().map(|key| find(&loaded, key)).collect::<Result<_>>()?;
    let voices_dir = ctx.settings.dirs.voices_dir();
    for (voice, asked) in voices.into_iter().zip(keys) {
        if asked != &voice.key && !ctx.global.quiet {
            eprintln!("{asked} is an alias of {}", voice.key);
        }
        let mut line = ProgressLine::new(ctx);
        let installed = catalog::download(voice, &voices_dir, &ctx.settings.download_options(force), &mut |p| {
            line.draw(p.key, p.done, Some(p.total));
        });
        line.finish();
        let installed = installed.with_context(|| format!("voice {} was not installed", voice.key))?;
        if ctx.global.quiet {
            continue;
        }
        if installed.already {
            eprintln!(
                "{} is already installed ({}); pass --force to download it again",
                voice.key,
                installed.model.display()
            );
        } else {
            let resumed = if installed.resumed > 0 {
                format!(", resumed after {}", human_size(installed.resumed))
            } else {
                String::new()
            };
            eprintln!(
                "installed {} into {} ({} fetched{resumed}; size and md5 match the catalogue)",
                voice.key,
                installed.model.parent().unwrap_or(&voices_dir).display(),
                human_size(installed.fetched)
            );
        }
    }
    Ok(())
}

pub fn remove(ctx: &Context, keys: &[String]) -> Result<()> {
    let voices_dir = ctx.settings.dirs.voices_dir();
    // An alias names the installed key; the cached catalogue is enough to tell (nothing is fetched to remove).
    let cached = catalog::load(&ctx.settings.catalog_options(), &ctx.settings.dirs.cache, catalog::Refresh::Never).ok();
    for key in keys {
        let name = cached
            .as_ref()
            .and_then(|c| c.catalog.find(key))
            .map(|v| v.key.clone())
            .filter(|k| demod_voice_core::assets::resolve_voice(k, &voices_dir).is_ok())
            .unwrap_or_else(|| key.clone());
        let removed = catalog::remove(&name, &voices_dir)?;
        if !ctx.global.quiet {
            eprintln!("removed {name} ({} files and folders)", removed.len());
            if name == ctx.settings.config.tts.voice {
                eprintln!("note: {name} is the configured voice (tts.voice); it is installed again on first use");
            }
        }
    }
    Ok(())
}
