//! CPU per block of the DeMoD Voice plugin in a CLAP host: 10 s of audio at 48 kHz in 128-frame blocks, paced in
//! real time like a live host, with the dsp engine at +4 semitones.
//!
//! ```text
//! cargo xtask bundle demod-voice-plugin --release
//! cargo run --release -p demod-voice-plugin --example process_bench [-- "path/to/DeMoD Voice.clap"]
//! ```

#![allow(clippy::unwrap_used)]

#[path = "../tests/support/host.rs"]
mod host;

use std::path::PathBuf;

fn main() {
    let bundle = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        target.join("bundled/DeMoD Voice.clap")
    });
    assert!(bundle.exists(), "{} not found; run `cargo xtask bundle demod-voice-plugin --release`", bundle.display());
    let mut plugin = host::load(&bundle);
    let rate = 48_000.0;
    let frames = 10 * 48_000;
    let signal: Vec<f32> = (0..frames)
        .map(|i| {
            let t = i as f32 / rate as f32;
            (1..6).map(|h| (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32).sum::<f32>() * 0.2
        })
        .collect();
    let (output, latency) =
        plugin.run(rate, &[("Engine", "DSP"), ("Pitch", "4")], &[signal.clone(), signal], &[128], true);
    assert!(output[0].iter().all(|s| s.is_finite()));
    let mut times: Vec<f64> = plugin.call_times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let block_us = 128.0 / rate * 1e6;
    println!("DeMoD Voice (CLAP), 48 kHz, 128-frame blocks, dsp +4 st, latency {latency} samples");
    println!(
        "process per block: {mean:.2} us mean, {:.2} us p99, {:.2} us max ({:.2}% of the {block_us:.0} us block)",
        times[times.len() * 99 / 100],
        times[times.len() - 1],
        mean / block_us * 100.0
    );
}
