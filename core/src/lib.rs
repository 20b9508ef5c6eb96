//! demod-voice core: everything the front-ends (the `demod-voice` command and terminal app, the DAW plugin) share.
//!
//! Map of the crate, one line per module:
//!
//! | module | what it holds |
//! |---|---|
//! | [`error`] | the one error type; its messages say what went wrong, where, and what to do |
//! | [`config`] | the config file: sections, defaults, validation with file, line and key |
//! | [`limits`] | the accepted range of every number a user sets (pitch, formant, mix, scales) |
//! | [`presets`] | factory and user presets laid over the config; converter settings |
//! | [`settings`] | the one settings resolver: defaults -> config file -> preset -> flags, with sources |
//! | [`speaker`] | the speaker encoder (d-vectors) and similarity between voices |
//! | [`onnx`] | finding and loading ONNX Runtime, execution providers, sessions |
//! | [`espeak`] | the espeak-ng binding (loaded at run time) |
//! | [`piper`] | Piper voices: config, phonemes and ids, synthesis |
//! | [`pipeline`] | the one speech pipeline: text -> sentences -> ids -> audio -> converter -> resample -> sink |
//! | [`assets`] | data folders, `setup` (runtime, espeak-ng, default voice), installed voices |
//! | [`library`] | installed voices and the profile library as the front-ends list them; adding a profile |
//! | [`wav`] | WAV reading and atomic writing, resampling, streaming headers |
//! | [`analysis`] | pitch tracking and spectral envelopes (pure signal analysis) |
//! | [`profile`] | voice profiles measured from reference recordings, stored in the library |
//! | [`clone`] | cloning: matching pitch, vocal tract and timbre to a reference, fitted against the speaker encoder |
//! | [`convert`] | the `Converter` trait and its engines (passthrough, dsp) |
//! | [`realtime`] | the lock-free real-time engine: audio side, worker thread, latency |
//! | [`batch`] | manifests, validation, the resumable parallel runner, journals and progress logs |
//! | [`preprocess`] | training-data preparation (LJSpeech layout in, Piper trainer layout out) |
//!
//! Rules: core never imports a front-end; only the real-time worker touches ONNX sessions on behalf of the audio
//! side; the audio side never allocates, locks, logs or waits.

#![warn(missing_docs)]

pub mod analysis;
pub mod assets;
pub mod batch;
pub mod catalog;
pub mod clone;
pub mod config;
pub mod convert;
pub mod durable;
pub mod error;
pub mod espeak;
pub mod library;
pub mod limits;
pub mod matching;
pub mod monitor;
pub mod neural;
pub mod onnx;
pub mod pipeline;
pub mod piper;
pub mod preprocess;
pub mod presets;
pub mod profile;
pub mod realtime;
pub mod settings;
pub mod speaker;
pub mod speakers;
pub mod vocoder;
pub mod wav;

pub use error::{Error, Result};
