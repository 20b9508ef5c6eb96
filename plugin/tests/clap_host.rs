//! The CLAP plugin in a small real host built on `clack-host`: it loads the test build of the plugin (with
//! nice-plug's `assert_process_allocs`, so an allocation in `process` aborts this test), lists the parameters,
//! sets them through the plugin's own text-to-value conversion, processes audio in varying block sizes at 44.1
//! and 48 kHz, compares the reported latency with the measured delay (passthrough), checks the dsp engine's pitch,
//! checks that instruments keep their level, feeds NaN/Inf/denormal input, round-trips the state, and loads a project whose voice profile was deleted.

#![allow(clippy::unwrap_used)]

mod support;

use demod_voice_core::analysis::pitch::{cents, median_f0, track};
use support::host::load;
use support::{clap_bundle, with_persisted};

fn noise(frames: usize, seed: u64) -> [Vec<f32>; 2] {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4
    };
    [(0..frames).map(|_| next()).collect(), (0..frames).map(|_| next()).collect()]
}

#[test]
fn clap_plugin_in_a_real_host() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = clap_bundle(dir.path());
    let mut plugin = load(&bundle);
    let _ = &plugin.entry;
    for name in ["Engine", "Pitch", "Formant", "Profile Match", "Mix", "Output Gain", "Bypass"] {
        assert!(plugin.ids.contains_key(name), "parameter {name:?} missing from {:?}", plugin.ids.keys());
    }
    // Text-to-value goes through the plugin's own formatters. nice-plug exposes CLAP values normalised to 0..1:
    // +12 of -24..+24 semitones is 0.75, 50% mix is 0.5.
    assert!((plugin.text_to_value("Pitch", "12") - 0.75).abs() < 1e-6);
    assert!((plugin.text_to_value("Mix", "50%") - 0.5).abs() < 1e-6);
    assert!((plugin.text_to_value("Output Gain", "0 dB") - plugin.text_to_value("Output Gain", "0")).abs() < 1e-6);

    // Passthrough: output = mono input delayed by exactly the reported latency, any block sizes.
    for rate in [44_100.0, 48_000.0] {
        let input = noise(rate as usize, 7);
        let mono: Vec<f32> = (0..input[0].len()).map(|i| (input[0][i] + input[1][i]) / 2.0).collect();
        let (output, latency) =
            plugin.run(rate, &[("Engine", "Passthrough")], &input, &[1, 17, 64, 333, 512, 1024, 5, 256], false);
        let latency = latency as usize;
        assert!(latency > 0);
        for (m, &out) in output[0].iter().enumerate() {
            let expected = if m >= latency { mono[m - latency] } else { 0.0 };
            assert!((out - expected).abs() < 1e-5, "{rate} Hz: sample {m}: {out} vs {expected} (latency {latency})");
        }
        assert_eq!(output[0], output[1]);
    }

    // dsp at +12 semitones: a sung-like 220 Hz note becomes 440 Hz within 10 cents. Rendered offline so the
    // result does not depend on how busy the machine is (the unoptimised test build's worker is slow).
    for rate in [44_100.0f64, 48_000.0] {
        let frames = (rate * 2.0) as usize;
        let note: Vec<f32> = (0..frames)
            .map(|i| {
                let t = i as f32 / rate as f32;
                (1..5).map(|h| (2.0 * std::f32::consts::PI * 220.0 * h as f32 * t).sin() / h as f32).sum::<f32>() * 0.2
            })
            .collect();
        let (output, latency) =
            plugin.run(rate, &[("Engine", "DSP"), ("Pitch", "12")], &[note.clone(), note], &[256], false);
        let start = latency as usize + (rate * 0.5) as usize;
        let steady = &output[0][start..frames - 1000];
        let f0 = median_f0(&track(steady, rate as u32, rate as usize / 200)).unwrap();
        assert!(cents(f0, 440.0).abs() <= 10.0, "{rate} Hz: +12 st gave {f0:.2} Hz");
    }

    // Instruments keep their level at any pitch and formant setting through the host (a square wave at +12 used to
    // come out 32 dB quieter and a sine almost vanished).
    let rate = 48_000.0f64;
    let frames = (rate * 1.5) as usize;
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    for shape in ["sine", "square", "sawtooth"] {
        let wave: Vec<f32> = (0..frames)
            .map(|i| {
                let phase = (220.0 * i as f64 / rate).fract() as f32;
                0.5 * match shape {
                    "sine" => (2.0 * std::f32::consts::PI * phase).sin(),
                    "square" if phase < 0.5 => 1.0,
                    "square" => -1.0,
                    _ => 2.0 * phase - 1.0,
                }
            })
            .collect();
        for (pitch, formant) in [("12", "0.7"), ("12", "1.4"), ("-12", "0.7"), ("-12", "1.4")] {
            let settings = [("Engine", "DSP"), ("Pitch", pitch), ("Formant", formant)];
            let (output, latency) = plugin.run(rate, &settings, &[wave.clone(), wave.clone()], &[512], false);
            let start = latency as usize + (rate * 0.5) as usize;
            let change = 20.0 * (rms(&output[0][start..frames - 2000]) / rms(&wave[start..frames - 2000])).log10();
            assert!(change.abs() <= 4.0, "{shape} at {pitch} st, formant {formant}: level {change:+.1} dB");
        }
    }

    // Live (real-time mode, paced by the clock): the audio keeps flowing whatever the worker does.
    let (live, _) = plugin.run(48_000.0, &[("Engine", "DSP"), ("Pitch", "3")], &noise(24_000, 5), &[128, 96], true);
    assert!(live.iter().flatten().all(|s| s.is_finite()) && live[0].iter().any(|s| s.abs() > 0.01));

    // Hostile input: NaN, infinities and denormals never come out as non-finite samples.
    let mut hostile = noise(48_000, 3);
    for channel in hostile.iter_mut() {
        channel[100..110].fill(f32::NAN);
        channel[200..210].fill(f32::INFINITY);
        channel[300..310].fill(f32::NEG_INFINITY);
        channel[400..2400].fill(1e-40);
    }
    for engine in ["DSP", "Passthrough"] {
        let (output, _) = plugin.run(48_000.0, &[("Engine", engine)], &hostile, &[128, 77], false);
        assert!(output.iter().flatten().all(|s| s.is_finite()), "{engine}: non-finite output");
    }

    // State round trip: a setting survives save -> load into a fresh instance.
    let _ = plugin.run(48_000.0, &[("Pitch", "7"), ("Formant", "1.2")], &noise(4800, 1), &[256], false);
    let (pitch7, formant12) = (plugin.text_to_value("Pitch", "7"), plugin.text_to_value("Formant", "1.2"));
    assert!((plugin.value("Pitch") - pitch7).abs() < 1e-6);
    let state = plugin.save_state();
    let mut restored = load(&bundle);
    restored.load_state(&state);
    assert!((restored.value("Pitch") - pitch7).abs() < 1e-6, "pitch after reload: {}", restored.value("Pitch"));
    assert!((restored.value("Formant") - formant12).abs() < 1e-3);

    // A project whose voice profile was deleted still loads and plays, and says what is missing.
    // nice-plug's CLAP state: an 8-byte little-endian length, then JSON with the persisted fields.
    let text = String::from_utf8(state[8..].to_vec()).unwrap();
    assert!(text.contains("\"profile\""), "the state persists the profile: {text}");
    let edited_state = with_persisted(&state, "profile", "deleted-profile");
    let mut project = load(&bundle);
    project.load_state(&edited_state);
    let (output, _) = project.run(48_000.0, &[], &noise(48_000, 9), &[512], false);
    assert!(output.iter().flatten().all(|s| s.is_finite()));
    assert!(output[0].iter().any(|s| s.abs() > 0.01), "the plugin still produces audio");
    let saved = String::from_utf8_lossy(&project.save_state()[8..]).into_owned();
    assert!(saved.contains("deleted-profile") && saved.contains("no voice profile named"), "{saved}");
    assert!((project.value("Pitch") - pitch7).abs() < 1e-6, "parameters are kept");
}
