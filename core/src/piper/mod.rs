//! Piper voices: config, phonemes and ids, and synthesis with an ONNX Runtime session.

pub mod config;
pub mod language_rules;
pub mod phonemes;
pub mod synth;

pub use config::{PhonemeType, VoiceConfig};
pub use phonemes::{phonemes_to_ids, phonemize, Sentence, MAX_SENTENCE_PHONEMES};
pub use synth::{PiperVoice, SynthesisOptions};
