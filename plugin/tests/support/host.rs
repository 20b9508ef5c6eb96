//! A small CLAP host on `clack-host`, shared by the host test and the process benchmark.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::ffi::CString;
use std::path::Path;

use clack_extensions::latency::PluginLatency;
use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;

pub struct Shared;

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

/// The host side of the GUI extension: the editor's window lives in the test's own X11 window, which never
/// resizes, so requests are acknowledged and nothing else happens.
impl clack_extensions::gui::HostGuiImpl for Shared {
    fn resize_hints_changed(&self) {}
    fn request_resize(&self, _new_size: clack_extensions::gui::GuiSize) -> Result<(), HostError> {
        Ok(())
    }
    fn request_show(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn request_hide(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn closed(&self, _was_destroyed: bool) {}
}

pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<clack_extensions::gui::HostGui>();
    }
}

pub const PLUGIN_ID: &str = "com.demod.voice";

pub struct Loaded {
    pub entry: PluginEntry,
    pub instance: PluginInstance<TestHost>,
    /// Parameter name -> id.
    pub ids: HashMap<String, ClapId>,
    /// How long each `process` call of the last run took.
    pub call_times: Vec<std::time::Duration>,
}

pub fn load(bundle: &Path) -> Loaded {
    // SAFETY: the bundle is this crate's own plugin, built for this machine.
    let entry = unsafe { PluginEntry::load(bundle) }.unwrap();
    let host_info = HostInfo::new("demod-voice test host", "DeMoD", "https://example.invalid", "0.1.0").unwrap();
    let id = CString::new(PLUGIN_ID).unwrap();
    let mut instance = PluginInstance::<TestHost>::new(|_| Shared, |_| (), &entry, &id, &host_info).unwrap();
    let mut ids = HashMap::new();
    {
        let handle = instance.plugin_handle();
        let params: PluginParams = handle.get_extension().expect("the plugin has the params extension");
        for index in 0..params.count(&handle) {
            let mut buffer = ParamInfoBuffer::new();
            let info = params.get_info(&handle, index, &mut buffer).unwrap();
            ids.insert(String::from_utf8_lossy(info.name).into_owned(), info.id);
        }
    }
    Loaded { entry, instance, ids, call_times: Vec::new() }
}

impl Loaded {
    /// A parameter's plain value from text, through the plugin's own conversion.
    pub fn text_to_value(&mut self, name: &str, text: &str) -> f64 {
        let id = self.ids[name];
        let handle = self.instance.plugin_handle();
        let params: PluginParams = handle.get_extension().unwrap();
        params
            .text_to_value(&handle, id, &CString::new(text).unwrap())
            .unwrap_or_else(|| panic!("{name}: {text:?} not accepted"))
    }

    pub fn value(&mut self, name: &str) -> f64 {
        let id = self.ids[name];
        let handle = self.instance.plugin_handle();
        let params: PluginParams = handle.get_extension().unwrap();
        params.get_value(&handle, id).unwrap()
    }

    pub fn save_state(&mut self) -> Vec<u8> {
        let handle = self.instance.plugin_handle();
        let state: PluginState = handle.get_extension().unwrap();
        let mut bytes = Vec::new();
        state.save(&handle, &mut bytes).unwrap();
        bytes
    }

    pub fn load_state(&mut self, bytes: &[u8]) {
        let handle = self.instance.plugin_handle();
        let state: PluginState = handle.get_extension().unwrap();
        state.load(&handle, &mut std::io::Cursor::new(bytes)).unwrap();
    }

    /// Activate at `rate`, send `settings` (name, text) as parameter events, and run `input` (stereo) through
    /// in blocks from `block_sizes` (cycled). With `real_time`, blocks are paced by the clock as in a live host;
    /// otherwise the host renders offline (the render extension), as fast as it can.
    /// Returns the output and the reported latency.
    pub fn run(
        &mut self,
        rate: f64,
        settings: &[(&str, &str)],
        input: &[Vec<f32>; 2],
        block_sizes: &[usize],
        real_time: bool,
    ) -> ([Vec<f32>; 2], u32) {
        let max_block = *block_sizes.iter().max().unwrap();
        let events: Vec<ParamValueEvent> = settings
            .iter()
            .map(|(name, text)| {
                let value = self.text_to_value(name, text);
                ParamValueEvent::new(0, self.ids[*name], Pckn::match_all(), value)
            })
            .collect();
        {
            let handle = self.instance.plugin_handle();
            let render: PluginRender = handle.get_extension().expect("the plugin has the render extension");
            render.set(&handle, if real_time { RenderMode::Realtime } else { RenderMode::Offline }).unwrap();
        }
        let config =
            PluginAudioConfiguration { sample_rate: rate, min_frames_count: 1, max_frames_count: max_block as u32 };
        let processor = self.instance.activate(|_, _| (), config).unwrap();
        let latency = {
            let handle = self.instance.plugin_handle();
            let latency: PluginLatency = handle.get_extension().expect("the plugin has the latency extension");
            latency.get(&handle)
        };
        let mut processor = processor.start_processing().unwrap();
        let frames = input[0].len();
        let mut output = [vec![0.0f32; frames], vec![0.0f32; frames]];
        let mut in_buffers = [vec![0.0f32; max_block], vec![0.0f32; max_block]];
        let mut out_buffers = [vec![0.0f32; max_block], vec![0.0f32; max_block]];
        let mut input_ports = AudioPorts::with_capacity(2, 1);
        let mut output_ports = AudioPorts::with_capacity(2, 1);
        let mut output_events_buffer = EventBuffer::new();
        self.call_times.clear();
        let started = std::time::Instant::now();
        let mut pos = 0;
        let mut call = 0;
        while pos < frames {
            let n = block_sizes[call % block_sizes.len()].min(frames - pos);
            if real_time {
                let due = std::time::Duration::from_secs_f64(pos as f64 / rate);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            for c in 0..2 {
                in_buffers[c][..n].copy_from_slice(&input[c][pos..pos + n]);
            }
            let input_events = if call == 0 { InputEvents::from_buffer(&events) } else { InputEvents::empty() };
            let mut output_events = OutputEvents::from_buffer(&mut output_events_buffer);
            let audio_in = input_ports.with_input_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_input_only(
                    in_buffers.iter_mut().map(|b| InputChannel::variable(&mut b[..n])),
                ),
            }]);
            let mut audio_out = output_ports.with_output_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(out_buffers.iter_mut().map(|b| &mut b[..n])),
            }]);
            let call_started = std::time::Instant::now();
            processor.process(&audio_in, &mut audio_out, &input_events, &mut output_events, None, None).unwrap();
            self.call_times.push(call_started.elapsed());
            for c in 0..2 {
                output[c][pos..pos + n].copy_from_slice(&out_buffers[c][..n]);
            }
            pos += n;
            call += 1;
        }
        let stopped = processor.stop_processing();
        self.instance.deactivate(stopped);
        (output, latency)
    }
}
