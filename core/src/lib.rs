//! demod-voice core: ONNX Runtime loading, Piper text-to-speech, assets and audio helpers.
//!
//! Front-ends (the `demod-voice` terminal app and the DAW plugin) are thin layers over this crate.

pub mod error;
pub mod espeak;
pub mod piper;
pub mod runtime;
pub mod voice;

pub use error::{Error, Result};
pub mod assets;
pub mod audio;
pub mod batch;
pub mod config;
pub mod convert;
pub mod dsp;
pub mod preprocess;
pub mod presets;
pub mod rt;
