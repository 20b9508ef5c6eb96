//! Voice converters: one [`Converter`] trait, several engines.
//!
//! - [`Passthrough`]: output = input; used to measure the real-time engine's latency exactly.
//! - [`dsp::DspConverter`]: pitch and formant matching with no model (PSOLA with grain resampling).
//!
//! A converter processes one block at a time on the real-time worker thread (never on the audio thread, so it may
//! allocate, although the engines here do not after `prepare`). A block is `context | hop | lookahead`: the left
//! context gives block-based (stateless) models history; the lookahead is what the worker needs for its SOLA
//! overlap and what [`Converter::latency`] asks for. The output is time-aligned with the input block.

pub mod dsp;

/// A voice converter driven by the real-time engine (and by `convert` offline, through the same engine).
pub trait Converter: Send {
    /// Short engine name (`passthrough`, `dsp`).
    fn name(&self) -> &'static str;

    /// The rate this converter wants to run at; `None` runs at the host rate (no resampling).
    fn sample_rate(&self) -> Option<u32>;

    /// Allocate for `sample_rate_hz` and hops of at most `max_hop` samples (and blocks of at most `max_block`).
    fn prepare(&mut self, sample_rate_hz: u32, max_hop: usize, max_block: usize);

    /// Samples of input needed to the right of a sample before that sample's output is final.
    fn latency(&self) -> usize;

    /// Convert `input` (`context | hop | lookahead`, with the hop at `hop_start..hop_start + hop_len`) into
    /// `output` (same length, time-aligned). A stateful converter advances its state by the hop only: the
    /// lookahead part is a preview that the next block recomputes.
    fn process(&mut self, input: &[f32], hop_start: usize, hop_len: usize, output: &mut [f32]);

    /// Forget all history (a new stream starts).
    fn reset(&mut self);

    /// True when consecutive hops already join sample-exactly (a stateful streaming converter); the engine then
    /// skips the SOLA search and cross-fade, and their lookahead.
    fn continuous(&self) -> bool {
        false
    }
}

/// Output equals input.
#[derive(Debug, Default, Clone)]
pub struct Passthrough {
    /// Run at this rate instead of the host's (tests use it to exercise resampling).
    pub forced_rate: Option<u32>,
}

impl Converter for Passthrough {
    fn name(&self) -> &'static str {
        "passthrough"
    }
    fn sample_rate(&self) -> Option<u32> {
        self.forced_rate
    }
    fn prepare(&mut self, _sample_rate_hz: u32, _max_hop: usize, _max_block: usize) {}
    fn latency(&self) -> usize {
        0
    }
    fn process(&mut self, input: &[f32], _hop_start: usize, _hop_len: usize, output: &mut [f32]) {
        output.copy_from_slice(input);
    }
    fn reset(&mut self) {}
}

/// Engines a user can pick by name.
pub const ENGINE_NAMES: &[&str] = &["passthrough", "dsp"];
