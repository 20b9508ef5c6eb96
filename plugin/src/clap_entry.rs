//! The CLAP entry point. The plugin itself is nice-plug's (its wrapper does everything a CLAP plugin does), and this
//! adds what nice-plug does not offer: a preset provider (CLAP preset discovery) that lists the factory presets
//! (inside the plugin) and the user presets (YAML files in the presets folder) with their names and descriptions,
//! so hosts' preset browsers show them, and the preset-load extension through which a host loads one: the preset's
//! converter settings become the parameters' values and its profile the project's, and the plugin restarts with its
//! real-time settings.
//!
//! The plugin the host sees is a copy of the wrapper's `clap_plugin` whose `get_extension` answers for preset
//! loading and forwards everything else, and whose `destroy` frees the copy too; every other function is the
//! wrapper's own and finds the wrapper through `plugin_data`, which the copy keeps.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use clap_sys::entry::clap_plugin_entry;
use clap_sys::ext::preset_load::{
    clap_host_preset_load, clap_plugin_preset_load, CLAP_EXT_PRESET_LOAD, CLAP_EXT_PRESET_LOAD_COMPAT,
};
use clap_sys::factory::plugin_factory::{clap_plugin_factory, CLAP_PLUGIN_FACTORY_ID};
use clap_sys::factory::preset_discovery::*;
use clap_sys::host::clap_host;
use clap_sys::plugin::{clap_plugin, clap_plugin_descriptor};
use clap_sys::universal_plugin_id::clap_universal_plugin_id;
use clap_sys::version::CLAP_VERSION;
use demod_voice_core::presets::{FoundPreset, PresetSource};
use demod_voice_core::settings::Settings;
use nice_plug::wrapper::clap::{PluginDescriptor, Wrapper};

use crate::DemodVoice;

/// The CLAP plugin's entry point.
#[no_mangle]
#[used]
pub static clap_entry: clap_plugin_entry = clap_plugin_entry {
    clap_version: CLAP_VERSION,
    init: Some(init),
    deinit: Some(deinit),
    get_factory: Some(get_factory),
};

extern "C" fn init(_plugin_path: *const c_char) -> bool {
    nice_plug::wrapper::setup_logger::<DemodVoice>();
    true
}

extern "C" fn deinit() {}

extern "C" fn get_factory(factory_id: *const c_char) -> *const c_void {
    if factory_id.is_null() {
        return std::ptr::null();
    }
    // SAFETY: the host passes a NUL-terminated string.
    let id = unsafe { CStr::from_ptr(factory_id) };
    if id == CLAP_PLUGIN_FACTORY_ID {
        &PLUGIN_FACTORY as *const clap_plugin_factory as *const c_void
    } else if id == CLAP_PRESET_DISCOVERY_FACTORY_ID || id == CLAP_PRESET_DISCOVERY_FACTORY_ID_COMPAT {
        &PRESET_FACTORY as *const clap_preset_discovery_factory as *const c_void
    } else {
        std::ptr::null()
    }
}

// --- The plugin factory -------------------------------------------------------------------------------------------

static PLUGIN_FACTORY: clap_plugin_factory = clap_plugin_factory {
    get_plugin_count: Some(plugin_count),
    get_plugin_descriptor: Some(plugin_descriptor),
    create_plugin: Some(create_plugin),
};

fn descriptor() -> &'static PluginDescriptor {
    static DESCRIPTOR: OnceLock<PluginDescriptor> = OnceLock::new();
    DESCRIPTOR.get_or_init(PluginDescriptor::for_plugin::<DemodVoice>)
}

unsafe extern "C" fn plugin_count(_factory: *const clap_plugin_factory) -> u32 {
    1
}

unsafe extern "C" fn plugin_descriptor(
    _factory: *const clap_plugin_factory,
    index: u32,
) -> *const clap_plugin_descriptor {
    if index == 0 {
        descriptor().clap_plugin_descriptor()
    } else {
        std::ptr::null()
    }
}

/// The plugin as the host holds it: the wrapper's functions (the copy keeps its `plugin_data`) with our
/// `get_extension` and `destroy`. `plugin` is first, so a pointer to it is a pointer to the whole.
#[repr(C)]
struct Proxy {
    plugin: clap_plugin,
    inner: *const clap_plugin,
    host: *const clap_host,
}

unsafe extern "C" fn create_plugin(
    _factory: *const clap_plugin_factory,
    host: *const clap_host,
    plugin_id: *const c_char,
) -> *const clap_plugin {
    // SAFETY: the host passes a NUL-terminated id.
    if host.is_null() || plugin_id.is_null() || unsafe { CStr::from_ptr(plugin_id) } != descriptor().clap_id() {
        return std::ptr::null();
    }
    // SAFETY: `host` is the host's, valid for the plugin's life. The wrapper's reference is given up here and taken
    // back in its own `destroy`, as nice-plug's own factory does.
    let inner: *const clap_plugin = unsafe { (*Arc::into_raw(Wrapper::<DemodVoice>::new(host))).clap_plugin.as_ptr() };
    // SAFETY: the wrapper's `clap_plugin` is complete (and its `plugin_data` set) once `new` returns.
    let mut plugin = unsafe { *inner };
    plugin.get_extension = Some(get_extension);
    plugin.destroy = Some(destroy);
    Box::into_raw(Box::new(Proxy { plugin, inner, host })) as *const clap_plugin
}

/// # Safety
/// `plugin` is a pointer [`create_plugin`] returned.
unsafe fn proxy<'a>(plugin: *const clap_plugin) -> &'a Proxy {
    unsafe { &*(plugin as *const Proxy) }
}

unsafe extern "C" fn destroy(plugin: *const clap_plugin) {
    if plugin.is_null() {
        return;
    }
    // SAFETY: made by `create_plugin`; the host destroys a plugin once.
    let proxy = unsafe { Box::from_raw(plugin as *mut Proxy) };
    // SAFETY: the wrapper's own destroy, on its own plugin.
    if let Some(destroy) = unsafe { (*proxy.inner).destroy } {
        unsafe { destroy(proxy.inner) };
    }
}

static PRESET_LOAD: clap_plugin_preset_load = clap_plugin_preset_load { from_location: Some(from_location) };

unsafe extern "C" fn get_extension(plugin: *const clap_plugin, id: *const c_char) -> *const c_void {
    if plugin.is_null() || id.is_null() {
        return std::ptr::null();
    }
    // SAFETY: the host passes a NUL-terminated id and one of our plugins.
    let (proxy, name) = unsafe { (proxy(plugin), CStr::from_ptr(id)) };
    if name == CLAP_EXT_PRESET_LOAD || name == CLAP_EXT_PRESET_LOAD_COMPAT {
        return &PRESET_LOAD as *const clap_plugin_preset_load as *const c_void;
    }
    // SAFETY: the wrapper's own function on its own plugin.
    match unsafe { (*proxy.inner).get_extension } {
        Some(get) => unsafe { get(proxy.inner, id) },
        None => std::ptr::null(),
    }
}

/// Load a preset the preset provider listed: a factory preset by name (`load_key`), or a user preset file.
unsafe extern "C" fn from_location(
    plugin: *const clap_plugin,
    location_kind: clap_preset_discovery_location_kind,
    location: *const c_char,
    load_key: *const c_char,
) -> bool {
    if plugin.is_null() {
        return false;
    }
    // SAFETY: one of our plugins; the strings are the host's, NUL-terminated when not null.
    let proxy = unsafe { proxy(plugin) };
    let text = |p: *const c_char| (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned());
    let wanted = match location_kind {
        CLAP_PRESET_DISCOVERY_LOCATION_PLUGIN => text(load_key),
        _ => text(location),
    };
    let settings = Settings::load(None).unwrap_or_else(|_| Settings::defaults());
    let found = wanted
        .ok_or_else(|| "no preset named".to_string())
        .and_then(|name| demod_voice_core::presets::find(&name, &settings.presets_dir()).map_err(|e| e.to_string()));
    // SAFETY: the copy's `plugin_data` is the wrapper, alive while the plugin is.
    let wrapper = unsafe { &*((*plugin).plugin_data as *const Wrapper<DemodVoice>) };
    let host_load = host_preset_load(proxy.host);
    match found {
        Ok(found) => {
            let mut state = wrapper.get_state_object();
            apply(&found, &mut state);
            wrapper.set_state_object_from_gui(state);
            wrapper.request_restart();
            if let Some((host, loaded)) = host_load.and_then(|(h, ext)| Some((h, ext.loaded?))) {
                // SAFETY: the host's own function, with the strings it gave.
                unsafe { loaded(host, location_kind, location, load_key) };
            }
            true
        }
        Err(problem) => {
            nice_plug::prelude::nice_error!("DeMoD Voice: cannot load the preset: {problem}");
            if let Some((host, on_error)) = host_load.and_then(|(h, ext)| Some((h, ext.on_error?))) {
                let message = CString::new(problem).unwrap_or_default();
                // SAFETY: the host's own function, with the strings it gave and ours.
                unsafe { on_error(host, location_kind, location, load_key, 0, message.as_ptr()) };
            }
            false
        }
    }
}

/// The host's preset-load extension, when it has one.
fn host_preset_load(host: *const clap_host) -> Option<(*const clap_host, &'static clap_host_preset_load)> {
    // SAFETY: the host pointer lives as long as the plugin; its `get_extension` takes a NUL-terminated id.
    unsafe {
        let get = (*host).get_extension?;
        let mut ext = get(host, CLAP_EXT_PRESET_LOAD.as_ptr()) as *const clap_host_preset_load;
        if ext.is_null() {
            ext = get(host, CLAP_EXT_PRESET_LOAD_COMPAT.as_ptr()) as *const clap_host_preset_load;
        }
        ext.as_ref().map(|ext| (host, ext))
    }
}

/// A preset into a plugin state: its converter settings (or their defaults) as the parameters' values, its name
/// and profile as the project's preset and profile.
fn apply(found: &FoundPreset, state: &mut nice_plug::prelude::PluginState) {
    use nice_plug::plugin::ParamValue;
    let json = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    state.fields.insert("preset".into(), json(&found.preset.name));
    // A preset without converter settings means the defaults (no shift, the whole match, fully wet).
    let converter = found.preset.converter.clone().unwrap_or_default();
    state.fields.insert("profile".into(), json(converter.profile.as_deref().unwrap_or("")));
    for (id, value) in [
        ("pitch", converter.pitch_semitones),
        ("formant", converter.formant_ratio),
        ("amount", converter.profile_amount),
        ("mix", converter.mix),
    ] {
        state.params.insert(id.into(), ParamValue::F32(value));
    }
    if crate::PLUGIN_ENGINES.contains(&converter.engine) {
        state.params.insert("engine".into(), ParamValue::String(converter.engine.name().into()));
    }
    if let Some(model) = &converter.model {
        state.fields.insert("model".into(), json(model));
    }
}

// --- The preset provider ------------------------------------------------------------------------------------------

const PROVIDER_ID: &CStr = c"com.demod.voice.presets";

static PRESET_FACTORY: clap_preset_discovery_factory = clap_preset_discovery_factory {
    count: Some(provider_count),
    get_descriptor: Some(provider_descriptor),
    create: Some(create_provider),
};

/// Strings and structs the host reads for as long as the library is loaded.
struct Statics {
    descriptor: clap_preset_discovery_provider_descriptor,
}

// SAFETY: the pointers inside point to `'static` C strings.
unsafe impl Send for Statics {}
unsafe impl Sync for Statics {}

fn statics() -> &'static Statics {
    static STATICS: OnceLock<Statics> = OnceLock::new();
    STATICS.get_or_init(|| Statics {
        descriptor: clap_preset_discovery_provider_descriptor {
            clap_version: CLAP_VERSION,
            id: PROVIDER_ID.as_ptr(),
            name: c"DeMoD Voice presets".as_ptr(),
            vendor: c"DeMoD".as_ptr(),
        },
    })
}

unsafe extern "C" fn provider_count(_factory: *const clap_preset_discovery_factory) -> u32 {
    1
}

unsafe extern "C" fn provider_descriptor(
    _factory: *const clap_preset_discovery_factory,
    index: u32,
) -> *const clap_preset_discovery_provider_descriptor {
    if index == 0 {
        &statics().descriptor
    } else {
        std::ptr::null()
    }
}

/// A provider as the host holds it (`provider` first, as with [`Proxy`]).
#[repr(C)]
struct Provider {
    provider: clap_preset_discovery_provider,
    indexer: *const clap_preset_discovery_indexer,
    /// Where user presets live, as the location declared to the host.
    user_dir: CString,
}

unsafe extern "C" fn create_provider(
    _factory: *const clap_preset_discovery_factory,
    indexer: *const clap_preset_discovery_indexer,
    provider_id: *const c_char,
) -> *const clap_preset_discovery_provider {
    // SAFETY: the host passes a NUL-terminated id.
    if indexer.is_null() || provider_id.is_null() || unsafe { CStr::from_ptr(provider_id) } != PROVIDER_ID {
        return std::ptr::null();
    }
    let settings = Settings::load(None).unwrap_or_else(|_| Settings::defaults());
    let user_dir = CString::new(settings.presets_dir().to_string_lossy().into_owned()).unwrap_or_default();
    let provider = clap_preset_discovery_provider {
        desc: &statics().descriptor,
        provider_data: std::ptr::null_mut(),
        init: Some(provider_init),
        destroy: Some(provider_destroy),
        get_metadata: Some(provider_get_metadata),
        get_extension: Some(provider_get_extension),
    };
    Box::into_raw(Box::new(Provider { provider, indexer, user_dir })) as *const clap_preset_discovery_provider
}

/// # Safety
/// `provider` is a pointer [`create_provider`] returned.
unsafe fn provider<'a>(provider: *const clap_preset_discovery_provider) -> &'a Provider {
    unsafe { &*(provider as *const Provider) }
}

unsafe extern "C" fn provider_init(raw: *const clap_preset_discovery_provider) -> bool {
    if raw.is_null() {
        return false;
    }
    // SAFETY: ours; the indexer is the host's, alive while the provider is.
    let this = unsafe { provider(raw) };
    let indexer = unsafe { &*this.indexer };
    let filetype = clap_preset_discovery_filetype {
        name: c"DeMoD Voice preset".as_ptr(),
        description: c"Converter, speech and real-time settings with a voice profile (YAML)".as_ptr(),
        file_extension: c"yaml".as_ptr(),
    };
    let factory = clap_preset_discovery_location {
        flags: CLAP_PRESET_DISCOVERY_IS_FACTORY_CONTENT,
        name: c"DeMoD Voice factory presets".as_ptr(),
        kind: CLAP_PRESET_DISCOVERY_LOCATION_PLUGIN,
        location: std::ptr::null(),
    };
    let user = clap_preset_discovery_location {
        flags: CLAP_PRESET_DISCOVERY_IS_USER_CONTENT,
        name: c"DeMoD Voice user presets".as_ptr(),
        kind: CLAP_PRESET_DISCOVERY_LOCATION_FILE,
        location: this.user_dir.as_ptr(),
    };
    // SAFETY: the host's functions, with structs that live through the calls.
    unsafe {
        let declared_type = indexer.declare_filetype.is_some_and(|f| f(this.indexer, &filetype));
        let declared_factory = indexer.declare_location.is_some_and(|f| f(this.indexer, &factory));
        // The user folder may not exist yet; the factory presets are listed either way.
        let _ = indexer.declare_location.is_some_and(|f| f(this.indexer, &user));
        declared_type && declared_factory
    }
}

unsafe extern "C" fn provider_destroy(raw: *const clap_preset_discovery_provider) {
    if !raw.is_null() {
        // SAFETY: made by `create_provider`; destroyed once.
        drop(unsafe { Box::from_raw(raw as *mut Provider) });
    }
}

unsafe extern "C" fn provider_get_extension(
    _provider: *const clap_preset_discovery_provider,
    _extension_id: *const c_char,
) -> *const c_void {
    std::ptr::null()
}

unsafe extern "C" fn provider_get_metadata(
    raw: *const clap_preset_discovery_provider,
    location_kind: clap_preset_discovery_location_kind,
    location: *const c_char,
    receiver: *const clap_preset_discovery_metadata_receiver,
) -> bool {
    if raw.is_null() || receiver.is_null() {
        return false;
    }
    // SAFETY: ours, and the host's receiver for the length of this call.
    let (this, receiver_ref) = unsafe { (provider(raw), &*receiver) };
    let user_dir = PathBuf::from(this.user_dir.to_string_lossy().into_owned());
    let presets: Vec<FoundPreset> = if location_kind == CLAP_PRESET_DISCOVERY_LOCATION_PLUGIN {
        demod_voice_core::presets::all(&user_dir)
            .into_iter()
            .flatten()
            .filter(|found| found.source == PresetSource::Factory)
            .collect()
    } else if location.is_null() {
        Vec::new()
    } else {
        // SAFETY: the host passes a NUL-terminated path.
        let path = unsafe { CStr::from_ptr(location) }.to_string_lossy().into_owned();
        match demod_voice_core::presets::find(&path, &user_dir) {
            Ok(found) => vec![found],
            Err(e) => {
                let message = CString::new(e.to_string()).unwrap_or_default();
                if let Some(on_error) = receiver_ref.on_error {
                    // SAFETY: the host's function, with a string that lives through the call.
                    unsafe { on_error(receiver, 0, message.as_ptr()) };
                }
                return false;
            }
        }
    };
    let plugin_id = clap_universal_plugin_id { abi: c"clap".as_ptr(), id: crate::CLAP_ID_C.as_ptr() };
    for found in &presets {
        let name = CString::new(found.preset.name.clone()).unwrap_or_default();
        let description = CString::new(found.preset.description.clone()).unwrap_or_default();
        // A factory preset is loaded by its name; a file holds one preset, loaded by its path.
        let key = (location_kind == CLAP_PRESET_DISCOVERY_LOCATION_PLUGIN).then(|| name.clone());
        let flags = if found.source == PresetSource::Factory {
            CLAP_PRESET_DISCOVERY_IS_FACTORY_CONTENT
        } else {
            CLAP_PRESET_DISCOVERY_IS_USER_CONTENT
        };
        // SAFETY: the host's functions; every string lives through its call.
        unsafe {
            let begun = receiver_ref
                .begin_preset
                .is_some_and(|f| f(receiver, name.as_ptr(), key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr())));
            if !begun {
                return true;
            }
            if let Some(f) = receiver_ref.add_plugin_id {
                f(receiver, &plugin_id);
            }
            if let Some(f) = receiver_ref.set_flags {
                f(receiver, flags);
            }
            if let Some(f) = receiver_ref.add_creator {
                f(receiver, c"DeMoD".as_ptr());
            }
            if let Some(f) = receiver_ref.set_description {
                f(receiver, description.as_ptr());
            }
        }
    }
    true
}
