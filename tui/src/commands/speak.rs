//! `speak` and `piper-infer`: text through the speech pipeline into a file, a WAV stream or raw PCM.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context as _, Result};
use demod_voice_core::convert::dsp::Target;
use demod_voice_core::pipeline::{Sink, Speech};
use demod_voice_core::wav::{AtomicWav, WavEncoding};

use crate::cli::{PiperInferArgs, ScaleArgs, SpeakArgs};
use crate::context::Context;
use crate::error::usage;

/// Read the text to speak from the argument, a file, or standard input.
pub fn read_text(text: Option<String>, input: Option<&Path>) -> Result<String> {
    let text = match (text, input) {
        (Some(text), _) => text,
        (None, Some(path)) if path == Path::new("-") => read_stdin()?,
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read text file {}", path.display()))?;
            decode_utf8(bytes, &path.display().to_string())?
        }
        (None, None) => {
            if std::io::stdin().is_terminal() {
                return Err(usage("no text given: pass TEXT, -i FILE, or pipe text into standard input"));
            }
            read_stdin()?
        }
    };
    if text.trim().is_empty() {
        return Err(usage("the text is empty: nothing to speak"));
    }
    Ok(text)
}

fn read_stdin() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).context("cannot read standard input")?;
    decode_utf8(bytes, "standard input")
}

fn decode_utf8(bytes: Vec<u8>, source: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        usage(format!("{source} is not valid UTF-8 (first bad byte at offset {at}); convert it to UTF-8 first"))
    })
}

pub fn speak(ctx: &mut Context, args: SpeakArgs) -> Result<()> {
    let text = read_text(args.text, args.input.as_deref())?;
    ctx.apply_speech_flags(&args.scales)?;
    ctx.set_voice_args(&args.voice)?;
    let to_stdout = args.output_raw || args.output.as_deref() == Some(Path::new("-"));
    if args.output.is_none() && !args.output_raw {
        return Err(usage("say where the audio goes: -o FILE.wav, -o - (WAV on standard output) or --output-raw"));
    }
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(usage("refusing to write audio to a terminal; redirect standard output or use -o FILE.wav"));
    }
    // An unwritable output fails before the model is loaded.
    let file = match &args.output {
        Some(path) if path != Path::new("-") => Some(path.clone()),
        _ => None,
    };
    if let Some(path) = &file {
        check_writable(path)?;
    }
    if let Some(server) = args.server.as_deref().filter(|s| !s.is_empty()) {
        return super::remote::speak_remote(ctx, server, &text, file.as_deref(), args.output_raw);
    }
    speak_to(ctx, &text, file.as_deref(), args.output_raw, None)
}

/// Creating (and dropping) the atomic writer proves the folder is writable and leaves nothing behind.
pub fn check_writable(path: &Path) -> Result<()> {
    drop(AtomicWav::create(path, 22050)?);
    Ok(())
}

/// Speak `text` with the settings' voice into `file`, or standard output (raw PCM or a WAV stream), and report.
/// `target` replaces the converter's target (a clone's reference).
pub fn speak_to(ctx: &Context, text: &str, file: Option<&Path>, raw: bool, target: Option<Target>) -> Result<()> {
    let voice = ctx.settings.load_voice(None)?;
    let mut speech = Speech::new(&voice, &ctx.settings)?;
    if let (Some(target), Some(converter)) = (target, speech.converter.as_mut()) {
        converter.target = Some(target);
    }
    let rate = speech.output_rate_hz;
    let encoding = WavEncoding::from(ctx.settings.config.output.format);
    let sink = match file {
        Some(path) => Sink::File(AtomicWav::create_with(path, rate, encoding)?),
        None if raw => Sink::Raw(Box::new(std::io::stdout())),
        None => Sink::wav_stream(Box::new(std::io::BufWriter::new(std::io::stdout())), rate, encoding)
            .context("writing WAV to standard output")?,
    };
    let started = std::time::Instant::now();
    let (spoken, path) = speech.to_sink(text, sink)?;
    if !ctx.global.quiet {
        let seconds = spoken.seconds();
        let elapsed = started.elapsed().as_secs_f64();
        match path {
            Some(path) => eprintln!(
                "wrote {} ({seconds:.2} s of audio at {rate} Hz, {} sentence(s), {:.2}x real time)",
                path.display(),
                spoken.sentences,
                seconds / elapsed.max(1e-9)
            ),
            None => tracing::info!("{seconds:.2} s of audio at {rate} Hz"),
        }
    }
    Ok(())
}

pub fn piper_infer(ctx: &mut Context, args: PiperInferArgs) -> Result<()> {
    if args.text.trim().is_empty() {
        return Err(usage("the text is empty: nothing to speak"));
    }
    let to_stdout = args.output == Path::new("-");
    if !to_stdout {
        check_writable(&args.output)?;
    } else if std::io::stdout().is_terminal() {
        return Err(usage("refusing to write audio to a terminal; redirect standard output"));
    }
    let scales = ScaleArgs { speaker: args.speaker, preset: args.preset, ..Default::default() };
    ctx.apply_speech_flags(&scales)?;
    ctx.set_voice(Some(&args.model), "MODEL");
    let file = (!to_stdout).then_some(args.output.as_path());
    speak_to(ctx, &args.text, file, false, None)
}
