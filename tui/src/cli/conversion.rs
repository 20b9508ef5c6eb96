//! The voice-conversion commands' arguments: `convert`, `clone` (and its old spelling), `similarity`, `models`,
//! and the neural engines' options they share.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use demod_voice_core::convert::Engine;
use demod_voice_core::limits;

use super::parsers::{engine, within};
use super::{ScaleArgs, VoiceArgs};

#[derive(Debug, Args)]
pub struct SimilarityArgs {
    /// The reference recording (WAV).
    pub reference: PathBuf,
    /// The recordings to score against it (WAV).
    #[arg(required = true)]
    pub others: Vec<PathBuf>,
    /// Print JSON: {"reference", "threshold", "files": [{"file", "similarity", "same_speaker"}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input WAV (any rate, mono or stereo; converted as mono).
    pub input: PathBuf,
    /// Match this voice profile (name or path).
    #[arg(long, value_name = "PROFILE")]
    pub to: Option<String>,
    /// Pitch shift in semitones (-24..24), on top of any profile match.
    #[arg(long, allow_hyphen_values = true, value_parser = within(limits::PITCH_SEMITONES))]
    pub pitch: Option<f32>,
    /// Formant ratio (0.5..2.0), on top of any profile match.
    #[arg(long, value_parser = within(limits::FORMANT_RATIO))]
    pub formant: Option<f32>,
    /// How much of the profile match to apply (0..1).
    #[arg(long, value_parser = within(limits::PROFILE_AMOUNT))]
    pub amount: Option<f32>,
    /// Wet/dry mix (0..1).
    #[arg(long, value_parser = within(limits::MIX))]
    pub mix: Option<f32>,
    /// Conversion engine (dsp, passthrough, tone-color, rvc).
    #[arg(long, value_parser = engine)]
    pub engine: Option<Engine>,
    #[command(flatten)]
    pub neural: NeuralArgs,
    /// Preset name or path (its converter and real-time settings apply).
    #[arg(long)]
    pub preset: Option<String>,
    /// Output WAV (16-bit, the input's rate, the input's length).
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct CloneArgs {
    /// Reference recording of the target voice (WAV, at least 3 s of voiced speech).
    pub reference: PathBuf,
    /// Text to speak.
    pub text: String,
    /// Output WAV.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub voice: VoiceArgs,
    /// Print a JSON report: similarity before and after, F0, the fit and the times.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub scales: ScaleArgs,
    /// How to move the voice: dsp (default: the fitted model-free conversion), tone-color (an installed tone colour
    /// model toward the reference's tone) or rvc (an installed RVC voice model; the reference is only measured).
    #[arg(long, value_parser = engine)]
    pub engine: Option<Engine>,
    #[command(flatten)]
    pub neural: NeuralArgs,
}

/// The neural engines' options, shared by `convert` and `clone`.
#[derive(Debug, Default, Args)]
pub struct NeuralArgs {
    /// The installed model --engine tone-color or rvc runs (`models list`); tone-color moves toward the profile's
    /// (convert --to) or the reference's (clone) tone; rvc takes --pitch as its pitch shift.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// How far tone-color moves toward the target tone (0..1, default 0.3).
    #[arg(long, value_parser = within(limits::TAU))]
    pub tau: Option<f32>,
    /// The speaker an RVC model trained on several speakers speaks as (its speaker id; default 0).
    #[arg(long, value_name = "ID")]
    pub model_speaker: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ZeroShotArgs {
    /// Reference recording of the target voice (WAV, at least 3 s of voiced speech).
    pub reference: PathBuf,
    /// Text to speak.
    pub text: String,
    /// Output WAV.
    #[arg(short, long, default_value = "output.wav")]
    pub output: PathBuf,
    #[command(flatten)]
    pub voice: VoiceArgs,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Install a model: an RVC voice model (.onnx, WebUI or w-okada export), a content encoder (HuBERT /
    /// ContentVec), an RMVPE pitch model, or a tone colour converter with its reference encoder (two files), from
    /// files or http(s) URLs (downloaded with resume). Its kind is read from the graph; a file of no known kind is
    /// refused naming what it has and what each kind needs.
    Add {
        /// The model file(s) or URL(s).
        #[arg(required = true, value_name = "FILE|URL")]
        files: Vec<String>,
        /// Its name (default: the first file's name without .onnx).
        #[arg(long)]
        name: Option<String>,
        /// The file's expected SHA-256 (one file).
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Replace an installed model of that name.
        #[arg(long)]
        force: bool,
        /// The licence the model is under, kept in its manifest (see the model's own terms).
        #[arg(long, value_name = "TEXT")]
        licence: Option<String>,
    },
    /// The installed models.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One model's files, kinds and checksums.
    Show { name: String },
    /// Remove an installed model.
    Remove { name: String },
}
