//! The plugin's status shows the output's rolling similarity to the project's voice profile: the speaker encoder
//! scores the heard output about once a second on its own thread (the audio thread only copies samples into a
//! lock-free ring; this cdylib's test build aborts on any allocation in `process`).
//!
//! This test binary holds one test: it points the data and config folders at a temporary folder through the
//! environment (with the installed runtime and encoder linked in), which the plugin reads when it activates.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use demod_voice_core::settings::Settings;
use support::host::load;
use support::{clap_bundle, with_persisted};

#[test]
fn the_status_shows_the_outputs_similarity_to_the_profile() {
    let installed = demod_voice_core::assets::Dirs::from_env();
    assert!(installed.encoder_path().is_file(), "run `demod-voice setup` first (the speaker encoder is needed)");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for asset in ["runtime", "encoder"] {
        std::os::unix::fs::symlink(installed.data.join(asset), data.join(asset)).unwrap();
    }
    // SAFETY (edition 2021: safe): the only test of this binary, set before the plugin is loaded.
    std::env::set_var("XDG_CONFIG_HOME", dir.path().join("config"));
    std::env::set_var("DEMOD_VOICE_DATA_DIR", &data);
    let settings = Settings::load(None).unwrap();
    let encoder = settings.speaker_encoder().unwrap();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/voices/librivox_male_two_cities.wav");
    demod_voice_core::library::add_profile(
        &settings.profiles_dir(),
        "reader",
        std::slice::from_ref(&reference),
        false,
        || Some(encoder),
    )
    .unwrap();

    // The reader's own voice through the plugin toward the reader's profile: the output sounds like the reader.
    let rate = 48_000u32;
    let (samples, source_rate) = demod_voice_core::wav::read_wav_mono(&reference).unwrap();
    let mut input = demod_voice_core::wav::resample(&samples, source_rate, rate).unwrap();
    input.truncate(rate as usize * 5);
    let bundle = clap_bundle(dir.path());
    let mut plugin = load(&bundle);
    let state = with_persisted(&plugin.save_state(), "profile", "reader");
    plugin.load_state(&state);
    // Real time (paced by the clock), as a DAW plays: the monitor scores once a second.
    let (output, _) = plugin.run(f64::from(rate), &[], &[input.clone(), input], &[512], true);
    assert!(output[0].iter().any(|s| s.abs() > 0.01));
    let saved = String::from_utf8_lossy(&plugin.save_state()[8..]).into_owned();
    let at = saved.find("similarity to reader: ").unwrap_or_else(|| panic!("no similarity in the status: {saved}"));
    let score: f32 = saved[at + "similarity to reader: ".len()..][..4].parse().unwrap();
    assert!(score > demod_voice_core::speaker::SAME_SPEAKER_THRESHOLD, "{saved}");
}
