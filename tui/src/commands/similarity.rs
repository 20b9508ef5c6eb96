//! `similarity REF.wav OTHER.wav... [--json]`: how much each recording sounds like the reference's speaker, by the
//! speaker encoder's cosine similarity, with a verdict against a documented threshold.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use demod_voice_core::speaker::SAME_SPEAKER_THRESHOLD;
use serde::Serialize;

use crate::cli::SimilarityArgs;
use crate::context::Context;
use crate::error::usage;

#[derive(Serialize)]
struct Scored {
    file: PathBuf,
    similarity: f32,
    same_speaker: bool,
}

pub fn similarity(ctx: &Context, args: SimilarityArgs) -> Result<()> {
    for path in std::iter::once(&args.reference).chain(&args.others) {
        if !path.is_file() {
            return Err(usage(format!("{} does not exist", path.display())));
        }
    }
    let encoder = ctx.settings.speaker_encoder()?;
    // A score of silence or a click says nothing about a speaker: half a second is the least that is scored.
    let embed = |path: &std::path::Path| -> Result<demod_voice_core::speaker::Embedding> {
        let demod_voice_core::wav::MonoAudio { samples, rate, .. } = demod_voice_core::wav::read_reference(path)?;
        let seconds = samples.len() as f64 / f64::from(rate);
        if seconds < 0.5 {
            return Err(usage(format!(
                "{} has {seconds:.2} s of audio; give at least half a second of speech",
                path.display()
            )));
        }
        Ok(encoder.embed(&samples, rate)?)
    };
    let reference = embed(&args.reference)?;
    let mut scored = Vec::with_capacity(args.others.len());
    for other in &args.others {
        let embedding = embed(other)?;
        let similarity = embedding.cosine(&reference);
        scored.push(Scored { file: other.clone(), similarity, same_speaker: similarity >= SAME_SPEAKER_THRESHOLD });
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = serde_json::json!({
            "reference": args.reference,
            "threshold": SAME_SPEAKER_THRESHOLD,
            "files": scored,
        });
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    for s in &scored {
        writeln!(out, "{:.3}  {}", s.similarity, s.file.display())?;
    }
    let same = scored.iter().filter(|s| s.same_speaker).count();
    writeln!(
        out,
        "verdict: {same} of {} sound like the reference's speaker (cosine >= {SAME_SPEAKER_THRESHOLD}; one speaker \
         scores about 0.9, two speakers 0.0-0.5)",
        scored.len()
    )?;
    Ok(())
}
