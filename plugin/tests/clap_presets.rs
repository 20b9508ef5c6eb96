//! The plugin's presets as a CLAP host sees them: the preset provider (CLAP preset discovery) declares the preset
//! file type, the factory location (inside the plugin) and the user presets folder, and lists every factory preset
//! with its name, description, load key and plugin id, and a user preset file with its own; then the host loads
//! presets through the plugin's preset-load extension and the parameters and the project's preset and profile
//! follow.

#![allow(clippy::unwrap_used)]

mod support;

use std::ffi::{CStr, CString};

use clack_extensions::preset_discovery::prelude::*;
use clack_host::prelude::*;
use support::clap_bundle;
use support::host::load;

/// What the provider declares.
#[derive(Default)]
struct Indexer {
    filetypes: Vec<String>,
    /// (name, path: None for the plugin itself).
    locations: Vec<(String, Option<String>)>,
}

impl IndexerImpl for Indexer {
    fn declare_filetype(&mut self, file_type: FileType) -> Result<(), HostError> {
        self.filetypes.push(file_type.file_extension.map(|e| e.to_string_lossy().into_owned()).unwrap_or_default());
        Ok(())
    }
    fn declare_location(&mut self, location: LocationInfo) -> Result<(), HostError> {
        let path = match location.location {
            Location::Plugin => None,
            Location::File { path } => Some(path.to_string_lossy().into_owned()),
        };
        self.locations.push((location.name.to_string_lossy().into_owned(), path));
        Ok(())
    }
    fn declare_soundpack(&mut self, _soundpack: Soundpack) -> Result<(), HostError> {
        Ok(())
    }
}

/// One listed preset.
#[derive(Debug, Default, Clone)]
struct Listed {
    name: String,
    load_key: Option<String>,
    plugin_ids: Vec<String>,
    description: String,
    factory: bool,
}

#[derive(Default)]
struct Receiver {
    presets: Vec<Listed>,
    errors: Vec<String>,
}

impl MetadataReceiverImpl for Receiver {
    fn on_error(&mut self, _error_code: i32, error_message: Option<&CStr>) {
        self.errors.push(error_message.map(|m| m.to_string_lossy().into_owned()).unwrap_or_default());
    }
    fn begin_preset(&mut self, name: Option<&CStr>, load_key: Option<&CStr>) -> Result<(), HostError> {
        self.presets.push(Listed {
            name: name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            load_key: load_key.map(|k| k.to_string_lossy().into_owned()),
            ..Listed::default()
        });
        Ok(())
    }
    fn add_plugin_id(&mut self, plugin_id: UniversalPluginId) {
        if let Some(preset) = self.presets.last_mut() {
            preset.plugin_ids.push(plugin_id.id.to_string_lossy().into_owned());
        }
    }
    fn set_soundpack_id(&mut self, _soundpack_id: &CStr) {}
    fn set_flags(&mut self, flags: Flags) {
        if let Some(preset) = self.presets.last_mut() {
            preset.factory = flags.contains(Flags::IS_FACTORY_CONTENT);
        }
    }
    fn add_creator(&mut self, _creator: &CStr) {}
    fn set_description(&mut self, description: &CStr) {
        if let Some(preset) = self.presets.last_mut() {
            preset.description = description.to_string_lossy().into_owned();
        }
    }
    fn set_timestamps(&mut self, _creation_time: Option<Timestamp>, _modification_time: Option<Timestamp>) {}
    fn add_feature(&mut self, _feature: &CStr) {}
    fn add_extra_info(&mut self, _key: &CStr, _value: &CStr) {}
}

#[test]
fn the_preset_provider_lists_every_preset_and_the_host_loads_them() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = clap_bundle(dir.path());
    let mut plugin = load(&bundle);
    let host_info = HostInfo::new("demod-voice test host", "DeMoD", "https://example.invalid", "0.1.0").unwrap();

    // The factory lists one provider; the provider declares the YAML file type and both locations.
    let factory: PresetDiscoveryFactory =
        plugin.entry.get_factory().expect("the plugin has a preset discovery factory");
    let descriptor = factory.provider_descriptors().next().expect("one preset provider");
    let provider_id = CString::from(descriptor.id().unwrap());
    let mut provider = Provider::instantiate(Indexer::default(), &plugin.entry, &provider_id, &host_info).unwrap();
    assert_eq!(provider.indexer().filetypes, ["yaml"]);
    let locations = provider.indexer().locations.clone();
    assert!(locations.iter().any(|(_, path)| path.is_none()), "no factory location: {locations:?}");
    let user_dir = locations.iter().find_map(|(_, path)| path.clone()).expect("a user presets location");

    // Every factory preset, with its name, description and the plugin's id, loadable by name.
    let mut receiver = Receiver::default();
    provider.get_metadata(Location::Plugin, &mut receiver);
    let factory_presets: Vec<_> = demod_voice_core::presets::all(dir.path())
        .into_iter()
        .flatten()
        .filter(|p| p.source == demod_voice_core::presets::PresetSource::Factory)
        .collect();
    assert!(!factory_presets.is_empty());
    for preset in &factory_presets {
        let listed =
            receiver.presets.iter().find(|l| l.name == preset.preset.name).unwrap_or_else(|| {
                panic!("factory preset {} is not listed: {:?}", preset.preset.name, receiver.presets)
            });
        assert_eq!(listed.load_key.as_deref(), Some(preset.preset.name.as_str()));
        assert_eq!(listed.description, preset.preset.description);
        assert_eq!(listed.plugin_ids, ["com.demod.voice"]);
        assert!(listed.factory);
    }
    assert_eq!(receiver.presets.len(), factory_presets.len());

    // A user preset file is read from its path; a broken one is reported, not listed.
    let user_file = dir.path().join("my-voice.yaml");
    std::fs::write(
        &user_file,
        "schema_version: 1\nname: my-voice\ndescription: Mine, a fifth up\nconverter:\n  pitch_semitones: 7\n  mix: 0.5\n",
    )
    .unwrap();
    let mut receiver = Receiver::default();
    let path = CString::new(user_file.to_string_lossy().into_owned()).unwrap();
    provider.get_metadata(Location::File { path: &path }, &mut receiver);
    assert_eq!(receiver.presets.len(), 1, "{:?} {:?}", receiver.presets, receiver.errors);
    assert_eq!(receiver.presets[0].name, "my-voice");
    assert_eq!(receiver.presets[0].description, "Mine, a fifth up");
    assert!(!receiver.presets[0].factory);
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "converter: [not, a, map]\n").unwrap();
    let mut receiver = Receiver::default();
    let broken_path = CString::new(broken.to_string_lossy().into_owned()).unwrap();
    provider.get_metadata(Location::File { path: &broken_path }, &mut receiver);
    assert!(receiver.presets.is_empty() && receiver.errors.len() == 1, "{:?}", receiver.errors);
    assert!(!user_dir.is_empty());

    // Loading through the plugin: the file's converter settings become the parameters.
    let handle = plugin.instance.plugin_handle();
    let loader: PluginPresetLoad = handle.get_extension().expect("the plugin has the preset-load extension");
    loader.load_from_location(&handle, Location::File { path: &path }, None).unwrap();
    // (CLAP values are normalised: the plugin's own text-to-value says what +7 st is.)
    let seven = plugin.text_to_value("Pitch", "7");
    assert!((plugin.value("Pitch") - seven).abs() < 1e-4, "Pitch is {} after loading my-voice", plugin.value("Pitch"));
    let half = plugin.text_to_value("Mix", "50%");
    assert!((plugin.value("Mix") - half).abs() < 1e-4, "Mix is {}", plugin.value("Mix"));
    let state = String::from_utf8_lossy(&plugin.save_state()).into_owned();
    assert!(state.contains("my-voice"), "the project's preset is not my-voice: {state}");

    // And a factory preset by its load key.
    let first = &factory_presets[0].preset;
    let key = CString::new(first.name.clone()).unwrap();
    let handle = plugin.instance.plugin_handle();
    loader.load_from_location(&handle, Location::Plugin, Some(&key)).unwrap();
    let want = first.converter.as_ref().map_or(0.0, |c| c.pitch_semitones);
    let want = plugin.text_to_value("Pitch", &want.to_string());
    assert!((plugin.value("Pitch") - want).abs() < 1e-4, "Pitch {} after {}", plugin.value("Pitch"), first.name);
    assert!(String::from_utf8_lossy(&plugin.save_state()).contains(&first.name));

    // An unknown name is refused.
    let handle = plugin.instance.plugin_handle();
    assert!(loader.load_from_location(&handle, Location::Plugin, Some(c"no-such-preset")).is_err());
}
