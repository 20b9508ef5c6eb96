//! Background work: each [`Job`] runs on a thread of its own and reports through the run loop's channel. The
//! job functions themselves live with their screens; this is the dispatcher and what the threads share.

use demod_voice_core::speaker::Embedding;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use demod_voice_core::pipeline::VoiceCache;

use super::messages::{AppEvent, Job};
use super::screens::batch::{run_batch, watch_batch};
use super::screens::catalog::{download_voice, load_catalog, remove_voice};
use super::screens::health::check_infos;
use super::screens::live::{device_list, start_live, LiveRequest};
use super::screens::speech::{play_job, save_job, speak_job};
use super::screens::synthesize::OutputInfo;
use super::screens::voices::add_profile;
use crate::cli::GlobalArgs;
use crate::context::Context;

/// What job threads share: the output device and the voice kept loaded between Speaks.
#[derive(Clone, Default)]
pub(crate) struct Shared {
    pub(crate) playback: Arc<Mutex<Option<crate::devices::Playback>>>,
    /// The running live conversion (its streams and worker).
    pub(crate) live: Arc<Mutex<Option<crate::devices::Live>>>,
    /// Loaded voices, shared with `bench` and batch runs through core's cache.
    pub(crate) voices: Arc<VoiceCache>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A context for one background job, built afresh so config edits apply. Quiet: a summary line on stderr would
/// tear the full-screen display.
pub(crate) fn quiet_context(global: &GlobalArgs) -> Result<Context> {
    Context::new(GlobalArgs { quiet: true, verbose: 0, ..global.clone() })
}

/// The name of background job threads.
pub(crate) const JOB_THREAD: &str = "demod-voice-job";

/// Run a job's work; its error, or a panic in it, becomes the one line the app shows.
pub(crate) fn guarded<T>(work: impl FnOnce() -> Result<T>) -> std::result::Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(crate::one_line(&error)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(format!("internal error (a bug, please report it): {message}"))
        }
    }
}

/// Do one job (on a job thread) and send its outcome to the run loop.
pub(crate) fn dispatch(job: Job, global: &GlobalArgs, shared: &Shared, sender: &Sender<AppEvent>) {
    match job {
        Job::Speak { id, text, voice, scales, stop } => {
            let outcome = guarded(|| speak_job(global, shared, sender, id, &text, voice, &scales, &stop));
            let _ = sender.send(AppEvent::SpeakDone { id, outcome });
        }
        Job::Play { id, source, stop } => {
            let outcome = guarded(|| play_job(shared, sender, id, source, &stop));
            let _ = sender.send(AppEvent::SpeakDone { id, outcome });
        }
        Job::StartLive { input, output, engine, model, profile, tau, params, mix, similarity_target } => {
            let request = LiveRequest { input, output, engine, model, profile, tau, params, mix, similarity_target };
            let outcome = guarded(|| start_live(global, shared, request));
            let _ = sender.send(AppEvent::LiveStarted(outcome));
        }
        Job::StopLive => drop(lock(&shared.live).take()),
        Job::Score { take, source, profile, target } => {
            let outcome = guarded(|| score_take(global, source, &target)).map(|score| (profile, score));
            let _ = sender.send(AppEvent::Scored { take, outcome });
        }
        Job::Synthesize { text, path, voice, scales } => {
            let outcome = guarded(|| save_job(global, text, &path, voice, scales));
            let _ = sender.send(AppEvent::Saved { path, outcome });
        }
        Job::AddProfile { name, reference } => {
            let outcome = guarded(|| add_profile(global, &name, reference));
            let _ = sender.send(AppEvent::ProfileAdded { name, outcome });
        }
        Job::RunBatch { manifest, cancel } => {
            let outcome = guarded(|| {
                quiet_context(global).and_then(|mut ctx| {
                    let loaded = |jobs: &[demod_voice_core::batch::Job],
                                  errors: &[demod_voice_core::batch::RowError]| {
                        let rows = jobs.iter().map(|j| (j.row, j.output_as_written.clone())).collect();
                        let invalid = errors.iter().map(ToString::to_string).collect();
                        let _ = sender.send(AppEvent::BatchLoaded { rows, invalid });
                    };
                    let events = std::sync::Mutex::new(sender.clone());
                    let forward = |event| {
                        let _ = events.lock().unwrap_or_else(|p| p.into_inner()).send(AppEvent::Batch(event));
                    };
                    run_batch(&mut ctx, &manifest, cancel, loaded, &forward)
                })
            })
            .map(|_| ());
            let _ = sender.send(AppEvent::BatchDone(outcome));
        }
        Job::WatchBatch { manifest, stop } => {
            let outcome = guarded(|| watch_batch(&manifest, &stop, sender));
            let _ = sender.send(AppEvent::BatchDone(outcome));
        }
        Job::LoadCatalog { refresh } => {
            let outcome = guarded(|| load_catalog(global, refresh));
            let _ = sender.send(AppEvent::CatalogLoaded(outcome));
        }
        Job::DownloadVoice { key } => {
            let outcome = guarded(|| {
                download_voice(global, &key, &mut |done, total| {
                    let _ = sender.send(AppEvent::DownloadProgress { key: key.clone(), done, total });
                })
            });
            let _ = sender.send(AppEvent::VoicesChanged { key, what: "installed", outcome });
        }
        Job::RemoveVoice { key } => {
            let outcome = guarded(|| remove_voice(global, &key));
            let _ = sender.send(AppEvent::VoicesChanged { key, what: "removed", outcome });
        }
        Job::CheckHealth => {
            let outcome = guarded(|| quiet_context(global).map(|ctx| check_infos(&ctx)));
            let _ = sender.send(AppEvent::HealthChecked(outcome));
        }
        Job::OpenOutput { device } => {
            let mut playback = lock(&shared.playback);
            *playback = None;
            let outcome = crate::devices::Playback::open(device.as_deref()).map(|opened| {
                let info = OutputInfo { device: opened.device.clone(), rate: opened.rate, state: opened.state.clone() };
                *playback = Some(opened);
                info
            });
            drop(playback);
            let _ = sender.send(AppEvent::OutputOpened(outcome));
        }
        Job::ListDevices => {
            let inputs = device_list(crate::devices::device_names(true));
            let outputs = device_list(crate::devices::device_names(false));
            let _ = sender.send(AppEvent::Devices { inputs, outputs });
        }
    }
}

/// The speaker-encoder similarity of a take to `target` (the encoder must be installed: the app never downloads it).
fn score_take(global: &GlobalArgs, source: super::messages::TakeAudio, target: &Embedding) -> Result<f32> {
    let ctx = quiet_context(global)?;
    let Some(encoder) = ctx.settings.installed_speaker_encoder() else {
        anyhow::bail!("the speaker encoder is not installed (demod-voice setup)");
    };
    let encoder = encoder?;
    let (samples, rate) = match source {
        super::messages::TakeAudio::Samples(samples, rate) => (samples.to_vec(), rate),
        super::messages::TakeAudio::File(path) => {
            let audio = demod_voice_core::wav::read_reference(&path)?;
            (audio.samples, audio.rate)
        }
    };
    Ok(encoder.embed(&samples, rate)?.cosine(target))
}
