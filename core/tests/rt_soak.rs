//! The real-time engine's soak, bounded for the test suite (`SOAK_BLOCKS=1000000 cargo test -p demod-voice-core
//! --test rt_soak` runs the full million under the allocation checker, which exists in builds with debug
//! assertions only; `demod-voice bench --soak` runs it without):
//! random block sizes 1..4096, random automation and engine switches, non-finite input now and then, workers that
//! stall now and then. The audio side runs inside `assert_no_alloc` (this binary's allocator aborts on any
//! allocation there); the output stays finite and the passthrough engine stays aligned to the latency at every
//! sample.

#![allow(clippy::unwrap_used)]

use assert_no_alloc::{assert_no_alloc, AllocDisabler};
use demod_voice_core::realtime::soak::{soak, SoakOptions};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

#[test]
fn a_bounded_soak_never_allocates_on_the_audio_side_and_never_drifts() {
    let blocks = std::env::var("SOAK_BLOCKS").ok().and_then(|v| v.parse().ok()).unwrap_or(4_000u64);
    let options = SoakOptions { blocks, stall_every_hops: 150, seed: 7, ..Default::default() };
    let report = soak(&options, &mut |audio| assert_no_alloc(audio)).unwrap();
    eprintln!("{report:?}");
    assert_eq!(report.blocks, blocks);
    assert_eq!(report.non_finite, 0, "{report:?}");
    assert!(report.max_alignment_error < 1e-5, "{report:?}");
    assert!(report.peak < 2.0, "{report:?}");
    assert!(report.stalls > 0 && report.switches > 10 && report.automation > 100, "{report:?}");
    assert!(report.samples > blocks * 1_000, "{report:?}");
}
