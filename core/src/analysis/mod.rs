//! Signal analysis shared by voice profiles and the `dsp` converter: YIN pitch estimation and spectral-envelope
//! formant scale estimation.

pub mod envelope;
pub mod pitch;
pub mod synthetic;
