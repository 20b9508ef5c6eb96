//! `xtts-zero-shot REF TEXT --output --language` (the old tool's spelling of cloning): speech from the configured
//! (or given) voice through the pipeline, converted toward a profile measured from the reference recording.

use anyhow::Result;
use demod_voice_core::convert::Engine;
use demod_voice_core::profile::VoiceProfile;
use demod_voice_core::settings::Setting;

use crate::cli::{ScaleArgs, ZeroShotArgs};
use crate::commands::speak::{check_writable, speak_to};
use crate::context::Context;
use crate::error::usage;

pub fn zero_shot(ctx: &mut Context, args: ZeroShotArgs) -> Result<()> {
    if args.text.trim().is_empty() {
        return Err(usage("the text is empty: nothing to speak"));
    }
    if !args.reference.is_file() {
        return Err(usage(format!("reference recording {} does not exist", args.reference.display())));
    }
    check_writable(&args.output)?;
    let profile = VoiceProfile::from_recordings("reference", std::slice::from_ref(&args.reference))?;
    ctx.apply_speech_flags(&ScaleArgs::default())?;
    ctx.set_voice(args.voice.voice.as_deref(), "--voice");
    if ctx.settings.converter.is_none() {
        ctx.settings.set(Setting::Engine(Engine::Dsp), "xtts-zero-shot");
    }
    let voice_path = ctx.settings.voice_path(None)?;
    let config =
        demod_voice_core::piper::VoiceConfig::load(&demod_voice_core::piper::VoiceConfig::path_for_model(&voice_path))?;
    let language = config.language_code();
    if !demod_voice_core::batch::speaks(&language, &args.language) {
        tracing::warn!(
            "--language {} differs from the voice's language {language}; the voice's is used",
            args.language
        );
    }
    speak_to(ctx, &args.text, Some(&args.output), false, Some(profile.target()))
}
