//! The plugin's window in a real X server: Xvfb with Mesa's software OpenGL. A small CLAP host (clack-host with the
//! GUI extension) embeds the editor in an X11 window of its own, shows it, takes a screenshot (kept as
//! `editor.png` in Cargo's test folder; `DEMOD_VOICE_SCREENSHOT=PATH` also writes it there, which is how
//! `docs/editor.png` is made), moves the Pitch parameter from the host and sees the window change, drags the Pitch
//! slider with synthetic mouse events (XTEST) and reads the gesture and the new value from the plugin's parameter
//! queue, processes audio with the window open (the test build aborts on any allocation in `process`), then opens
//! and closes the window 20 times and checks that no window or thread is left behind.
//!
//! Needs `Xvfb` (Debian package `xvfb`; `.ci/run` installs it). Without it the test fails and says so.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use clack_extensions::gui::{GuiApiType, GuiConfiguration, PluginGui, Window as ClapWindow};
use clack_extensions::params::PluginParams;
use clack_host::events::event_types::{ParamGestureBeginEvent, ParamGestureEndEvent, ParamValueEvent};
use clack_host::prelude::*;
use support::clap_bundle;
use support::host::load;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _, CreateWindowAux, ImageFormat, WindowClass};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

/// A private X server, stopped when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let number = 90 + std::process::id() % 400;
        let display = format!(":{number}");
        let mut child = Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Xvfb ({e}): install the `xvfb` package (.ci/run does)"));
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        for _ in 0..100 {
            if socket.exists() && x11rb::connect(Some(&display)).is_ok() {
                return Xvfb { child, display };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("Xvfb did not start on {display}");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RGB screenshot of `window`.
struct Shot {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Shot {
    fn take(conn: &RustConnection, window: u32, width: u16, height: u16) -> Shot {
        let image = conn.get_image(ImageFormat::Z_PIXMAP, window, 0, 0, width, height, !0).unwrap().reply().unwrap();
        // 24-bit depth is stored as 32 bits per pixel, blue first.
        let rgb = image.data.chunks_exact(4).map(|p| [p[2], p[1], p[0]]).collect();
        Shot { width: width.into(), height: height.into(), rgb }
    }

    fn distinct_colours(&self) -> usize {
        let mut colours: Vec<[u8; 3]> = self.rgb.clone();
        colours.sort_unstable();
        colours.dedup();
        colours.len()
    }

    fn save(&self, path: &Path) {
        let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut encoder = png::Encoder::new(file, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&self.rgb.concat()).unwrap();
    }

    /// The rows and columns of pixels of colour `rgb` (within `tolerance` per channel), in the first run of
    /// consecutive rows that has any: (top, bottom, left, right).
    fn first_band_of(&self, rgb: [u8; 3], tolerance: u8) -> Option<(usize, usize, usize, usize)> {
        let matches = |p: &[u8; 3]| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= tolerance);
        let row_span = |y: usize| {
            let row = &self.rgb[y * self.width..(y + 1) * self.width];
            let first = row.iter().position(matches)?;
            let last = row.iter().rposition(matches)?;
            Some((first, last))
        };
        let top = (0..self.height).find(|&y| row_span(y).is_some())?;
        let bottom = (top..self.height).take_while(|&y| row_span(y).is_some()).last()?;
        let (left, right) =
            (top..=bottom).filter_map(row_span).fold((usize::MAX, 0), |(l, r), (a, b)| (l.min(a), r.max(b)));
        Some((top, bottom, left, right))
    }
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn children(conn: &RustConnection, window: u32) -> usize {
    conn.query_tree(window).unwrap().reply().unwrap().children.len()
}

#[test]
fn the_editor_opens_in_an_x11_window_follows_the_host_and_moves_parameters() {
    let xvfb = Xvfb::start();
    // The plugin's window connects to $DISPLAY; Mesa renders OpenGL in software there. Set before the plugin is
    // loaded, while this test binary runs no other thread that reads the environment.
    std::env::set_var("DISPLAY", &xvfb.display);
    std::env::set_var("LIBGL_ALWAYS_SOFTWARE", "1");
    let (conn, screen_index) = x11rb::connect(Some(&xvfb.display)).unwrap();
    let root = conn.setup().roots[screen_index].root;

    let dir = tempfile::tempdir().unwrap();
    let bundle = clap_bundle(dir.path());
    let mut plugin = load(&bundle);
    let pitch = plugin.ids["Pitch"];
    let config = GuiConfiguration { api_type: GuiApiType::X11, is_floating: false };
    let gui: PluginGui = plugin.instance.plugin_handle().get_extension().expect("the plugin has the GUI extension");

    // Open the editor in a window of the host's.
    let threads_before = threads();
    let open = |plugin: &mut support::host::Loaded, scale: f64| -> (u32, u16, u16) {
        let handle = plugin.instance.plugin_handle();
        assert!(gui.is_api_supported(&handle, config), "the editor supports embedding in X11");
        gui.create(&handle, config).unwrap();
        gui.set_scale(&handle, scale).unwrap();
        let size = gui.get_size(&handle).expect("the editor has a size");
        assert!(size.width >= 400 && size.height >= 400, "editor size {}x{}", size.width, size.height);
        let (width, height) = (size.width as u16, size.height as u16);
        let parent = conn.generate_id().unwrap();
        let aux = CreateWindowAux::new().background_pixel(conn.setup().roots[screen_index].black_pixel);
        conn.create_window(0, parent, root, 0, 0, width, height, 0, WindowClass::INPUT_OUTPUT, 0, &aux).unwrap();
        conn.map_window(parent).unwrap();
        conn.flush().unwrap();
        // SAFETY: `parent` is a live X11 window on the display the plugin uses; it outlives the editor.
        unsafe { gui.set_parent(&handle, ClapWindow::from_x11_handle(parent.into())) }.unwrap();
        gui.show(&handle).unwrap();
        (parent, width, height)
    };
    let close = |plugin: &mut support::host::Loaded, parent: u32| {
        let handle = plugin.instance.plugin_handle();
        gui.hide(&handle).unwrap();
        gui.destroy(&handle);
        // The editor takes its window away itself (on its own thread); then the host's goes.
        for _ in 0..100 {
            if children(&conn, parent) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(children(&conn, parent), 0, "the editor's window outlived gui.destroy");
        conn.destroy_window(parent).unwrap();
        conn.flush().unwrap();
    };
    let (parent, width, height) = open(&mut plugin, 1.0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(children(&conn, parent), 1, "the editor embeds one window in the host's");
    let shot = Shot::take(&conn, parent, width, height);
    let artifact = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("editor.png");
    shot.save(&artifact);
    if let Some(path) = std::env::var_os("DEMOD_VOICE_SCREENSHOT") {
        shot.save(Path::new(&path));
    }
    let colours = shot.distinct_colours();
    assert!(colours > 20, "the screenshot ({}) has {colours} colours: nothing was drawn", artifact.display());

    // The host moves Pitch to +12: the slider follows (the window changes).
    let value = plugin.text_to_value("Pitch", "12");
    let moved = [ParamValueEvent::new(0, pitch, Pckn::match_all(), value)];
    {
        let mut handle = plugin.instance.inactive_plugin_handle().unwrap();
        let params: PluginParams = plugin_params(&mut handle);
        let mut sink = EventBuffer::new();
        params.flush(&mut handle, &InputEvents::from_buffer(&moved), &mut OutputEvents::from_buffer(&mut sink));
    }
    std::thread::sleep(Duration::from_millis(500));
    let followed = Shot::take(&conn, parent, width, height);
    let changed = shot.rgb.iter().zip(&followed.rgb).filter(|(a, b)| a != b).count();
    assert!(changed > 50, "only {changed} pixels changed after the host set Pitch to +12");
    assert!((plugin.value("Pitch") - 12.0).abs() < 0.01 || (plugin.value("Pitch") - value).abs() < 1e-6);

    // Drag the Pitch slider (the first slider: egui fills sliders with the selection colour) to near its left end.
    let (top, bottom, left, right) =
        followed.first_band_of([0, 92, 128], 12).expect("a slider filled with egui's selection colour is on screen");
    let y = ((top + bottom) / 2) as i16;
    let from = right as i16;
    let to = left as i16 + 3;
    let fake = |kind: u8, detail: u8, x: i16, y: i16| {
        conn.xtest_fake_input(kind, detail, 0, root, x, y, 0).unwrap();
        conn.flush().unwrap();
        std::thread::sleep(Duration::from_millis(60));
    };
    const MOTION: u8 = 6;
    const PRESS: u8 = 4;
    const RELEASE: u8 = 5;
    fake(MOTION, 0, from, y);
    fake(PRESS, 1, from, y);
    for step in 1..=8 {
        fake(MOTION, 0, from + (to - from) * step / 8, y);
    }
    fake(RELEASE, 1, to, y);
    std::thread::sleep(Duration::from_millis(300));
    let mut queue = EventBuffer::new();
    {
        let mut handle = plugin.instance.inactive_plugin_handle().unwrap();
        let params: PluginParams = plugin_params(&mut handle);
        params.flush(&mut handle, &InputEvents::empty(), &mut OutputEvents::from_buffer(&mut queue));
    }
    let begins = queue
        .iter()
        .filter(|e| e.as_event::<ParamGestureBeginEvent>().and_then(|g| g.param_id()) == Some(pitch))
        .count();
    let ends =
        queue.iter().filter(|e| e.as_event::<ParamGestureEndEvent>().and_then(|g| g.param_id()) == Some(pitch)).count();
    let values: Vec<f64> = queue
        .iter()
        .filter_map(|e| e.as_event::<ParamValueEvent>())
        .filter(|v| v.param_id() == Some(pitch))
        .map(ParamValueEvent::value)
        .collect();
    assert!(begins >= 1 && ends >= 1, "the drag was not one gesture: {begins} begins, {ends} ends");
    let last = *values.last().expect("the drag sent Pitch values to the host");
    assert!(last < value - 0.2, "Pitch went to {last} (normalised), from {value}: the drag did not move it down");
    assert!((plugin.value("Pitch") - last).abs() < 1e-6 || plugin.value("Pitch") < 0.0);

    // Audio with the window open: the test build aborts on any allocation in `process`.
    let input = [vec![0.1f32; 48_000], vec![0.1f32; 48_000]];
    let (output, _) = plugin.run(48_000.0, &[], &input, &[256, 512, 1024], true);
    assert!(output[0].iter().all(|v| v.is_finite()));

    // The host resizes the window: the size is kept with the project.
    {
        let handle = plugin.instance.plugin_handle();
        let size = clack_extensions::gui::GuiSize { width: 640, height: 600 };
        conn.configure_window(parent, &ConfigureWindowAux::new().width(640).height(600)).unwrap();
        conn.flush().unwrap();
        gui.set_size(&handle, size).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let state = String::from_utf8_lossy(&plugin.save_state()).into_owned();
    assert!(state.contains("[640,600]"), "the new size is not in the saved state: {state}");
    close(&mut plugin, parent);

    // Twenty more openings and closings leave no window or thread behind.
    let windows_before = children(&conn, root);
    for _ in 0..20 {
        let (parent, _, _) = open(&mut plugin, 1.0);
        std::thread::sleep(Duration::from_millis(100));
        close(&mut plugin, parent);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(children(&conn, root), windows_before, "windows left behind after 20 openings");
    let threads_after = threads();
    assert!(
        threads_after <= threads_before + 1,
        "{threads_before} threads before the editor, {threads_after} after 21 openings"
    );
    drop(plugin);
}

/// The plugin's parameter extension, from an inactive instance's handle.
fn plugin_params(handle: &mut clack_host::plugin::InactivePluginMainThreadHandle) -> PluginParams {
    handle.get_extension().expect("the plugin has the params extension")
}
