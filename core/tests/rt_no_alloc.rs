//! The audio side allocates nothing: this test binary installs `assert_no_alloc`'s allocator, which aborts the
//! process on any allocation or deallocation inside `assert_no_alloc(..)`, and calls `process` 100 000 times with
//! random block sizes while the worker runs on its own thread (where allocation is allowed).

#![allow(clippy::unwrap_used)]

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use demod_voice_core::config::UnderrunMode;
use demod_voice_core::convert::Passthrough;
use demod_voice_core::realtime::{RtConfig, RtEngine};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn process_never_allocates() {
    for (channels, mode, resample) in [(1, UnderrunMode::Dry, false), (2, UnderrunMode::Silence, true)] {
        let config = RtConfig {
            sample_rate_hz: 48_000,
            max_block: 1024,
            channels,
            hop_ms: 10.0,
            crossfade_ms: 3.0,
            context_ms: 20.0,
            underrun: mode,
            offline: false,
            min_latency: 0,
        };
        let converter = Passthrough { forced_rate: resample.then_some(24_000) };
        let (mut audio, worker) = RtEngine::build(&config, Box::new(converter)).unwrap();
        let controls = audio.controls();
        let thread = worker.spawn().unwrap();
        let input: Vec<Vec<f32>> =
            (0..channels).map(|c| (0..1024).map(|i| ((i * (c + 3)) as f32 * 0.01).sin()).collect()).collect();
        let mut output = vec![vec![0.0f32; 1024]; channels];
        let mut rng = demod_voice_core::realtime::soak::XorShift(0x2545_F491_4F6C_DD1D);
        let mut calls = 0usize;
        assert_no_alloc(|| {
            while calls < 100_000 {
                let n = 1 + rng.below(1024) as usize;
                let ins: [&[f32]; 2] = [&input[0][..n], &input[channels - 1][..n]];
                let (left, right) = output.split_at_mut(1);
                let mut outs: [&mut [f32]; 2] =
                    [&mut left[0][..n], right.first_mut().map_or(&mut [][..], |r| &mut r[..n])];
                audio.process(&ins[..channels], &mut outs[..channels]);
                if calls.is_multiple_of(1000) {
                    controls.set_mix(0.5);
                }
                calls += 1;
            }
        });
        assert_eq!(calls, 100_000);
        thread.stop();
    }
}
