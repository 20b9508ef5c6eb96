//! `phonemize`: the phonemes and ids a voice would use for a text.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::cli::PhonemizeArgs;
use crate::commands::speak::read_text;
use crate::context::Context;

#[derive(Serialize)]
struct PhonemizedSentence {
    text: String,
    phonemes: String,
    phoneme_ids: Vec<i64>,
}

#[derive(Serialize)]
struct Phonemized {
    sentences: Vec<PhonemizedSentence>,
}

pub fn phonemize(ctx: &mut Context, args: PhonemizeArgs) -> Result<()> {
    let text = read_text(args.text, None)?;
    ctx.set_voice_args(&args.voice)?;
    let model = ctx.settings.voice_path(None)?;
    let config =
        demod_voice_core::piper::VoiceConfig::load(&demod_voice_core::piper::VoiceConfig::path_for_model(&model))?;
    let espeak = match config.phoneme_type {
        demod_voice_core::piper::PhonemeType::Espeak => Some(ctx.settings.espeak()?),
        _ => None,
    };
    let sentences = demod_voice_core::piper::phonemize(&config, espeak, &text)?;
    let out = Phonemized {
        sentences: sentences
            .iter()
            .map(|s| {
                let (ids, unknown) = demod_voice_core::piper::phonemes_to_ids(&s.phonemes, &config.phoneme_id_map);
                for phoneme in unknown.0 {
                    tracing::warn!("phoneme {phoneme:?} is not in the voice's id map; skipped");
                }
                PhonemizedSentence { text: s.text.clone(), phonemes: s.phoneme_string(), phoneme_ids: ids }
            })
            .collect(),
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut stdout, &out)?;
        writeln!(stdout)?;
    } else {
        for s in &out.sentences {
            writeln!(stdout, "{}", s.phonemes)?;
        }
    }
    Ok(())
}
