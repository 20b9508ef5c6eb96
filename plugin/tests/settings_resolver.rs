//! The plugin resolves its settings exactly as the command line does: the same config file, the same user preset
//! (with its voice profile and real-time settings), through core's `Settings`. A user preset naming a profile is
//! applied by core's resolver and sentence converter on its live path (the real-time engine, as the plugin runs it;
//! `convert` itself matches offline, on the whole clip) and by the plugin in the CLAP test host; the two outputs
//! must agree sample for sample.
//!
//! This test binary holds one test: it points the data and config folders at a temporary folder through the
//! environment, which the plugin (loaded in this process) reads when it activates.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use demod_voice_core::pipeline::SentenceConverter;
use demod_voice_core::settings::Settings;
use support::host::load;
use support::{clap_bundle, with_persisted};

#[test]
fn a_user_preset_with_a_profile_converts_the_same_in_convert_and_in_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY (edition 2021: safe): the only test of this binary, set before the plugin is loaded.
    std::env::set_var("XDG_CONFIG_HOME", dir.path().join("config"));
    std::env::set_var("DEMOD_VOICE_DATA_DIR", dir.path().join("data"));
    let settings = Settings::load(None).unwrap();

    // A profile in the library and a user preset that matches it, with real-time settings of its own.
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
    demod_voice_core::library::add_profile(
        &settings.profiles_dir(),
        "reader",
        std::slice::from_ref(&reference),
        false,
        || None,
    )
    .unwrap();
    std::fs::create_dir_all(settings.presets_dir()).unwrap();
    std::fs::write(
        settings.presets_dir().join("match-reader.yaml"),
        "schema_version: 1\nname: match-reader\ndescription: toward the reader\n\
         realtime:\n  hop_ms: 20\n  crossfade_ms: 5\nconverter:\n  engine: dsp\n  profile: reader\n",
    )
    .unwrap();

    // Input: a female voice (far from the reader's), at the host rate.
    let rate = 48_000u32;
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/arctic_slt_female.wav");
    let (samples, source_rate) = demod_voice_core::wav::read_wav_mono(&source).unwrap();
    let input = demod_voice_core::wav::resample(&samples, source_rate, rate).unwrap();

    // `convert --preset match-reader`'s settings: the resolver, then the sentence converter's live path.
    let mut resolved = Settings::load(None).unwrap();
    resolved.apply_preset("match-reader").unwrap();
    let converter = SentenceConverter::from_settings(&resolved).unwrap().unwrap();
    assert!(converter.target.is_some(), "the preset's profile is loaded");
    let converted = converter.apply_live(&input, rate).unwrap();

    // The plugin, whose project names the preset (and no profile of its own), rendering offline.
    let bundle = clap_bundle(dir.path());
    let mut plugin = load(&bundle);
    let state = with_persisted(&plugin.save_state(), "preset", "match-reader");
    plugin.load_state(&state);
    let (output, latency) = plugin.run(f64::from(rate), &[], &[input.clone(), input.clone()], &[480, 333], false);
    let status = String::from_utf8_lossy(&plugin.save_state()[8..]).into_owned();
    assert!(status.contains("\"status\":\"\\\"\\\"\""), "the plugin reported a problem: {status}");
    let latency = latency as usize;
    let aligned = &output[0][latency..];
    let compared = aligned.len().min(converted.len());
    assert!(compared > input.len() / 2);
    let worst =
        aligned[..compared].iter().zip(&converted[..compared]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "plugin and convert differ by up to {worst}");

    // And the preset mattered: without it the plugin's output is another.
    let mut plain = load(&bundle);
    let (unmatched, latency) = plain.run(f64::from(rate), &[], &[input.clone(), input], &[480], false);
    let unmatched = &unmatched[0][latency as usize..];
    let different = unmatched.iter().zip(&converted).filter(|(a, b)| (*a - *b).abs() > 1e-3).count();
    assert!(different > compared / 10, "without the preset the output should differ ({different} samples do)");
}
