//! Warm voices for the server: per voice a pool of sessions (each its own ONNX Runtime session with its own
//! threads), loaded on first use and evicted, least recently used first, when the loaded voices would exceed the
//! memory budget; one admission count for every request (HTTP and Wyoming) that refuses work past `--max-queue`;
//! and the counters `/metrics` prints.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use demod_voice_core::piper::PiperVoice;
use demod_voice_core::settings::Settings;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One voice's sessions.
struct Slot {
    /// Idle sessions.
    free: Mutex<Vec<Arc<PiperVoice>>>,
    /// Sessions that exist (idle or leased).
    created: AtomicUsize,
    returned: Condvar,
    /// Model file size: what one session costs, roughly.
    bytes: u64,
    last_used: Mutex<Instant>,
}

/// A session lent to one request; it goes back to its pool when dropped.
pub struct Lease {
    slot: Arc<Slot>,
    voice: Option<Arc<PiperVoice>>,
}

impl Lease {
    pub fn voice(&self) -> &PiperVoice {
        self.voice.as_deref().expect("a lease holds its voice until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(voice) = self.voice.take() {
            lock(&self.slot.free).push(voice);
            *lock(&self.slot.last_used) = Instant::now();
            self.slot.returned.notify_one();
        }
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    /// (endpoint, status) -> requests.
    pub requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Microseconds spent synthesising.
    pub synthesis_us: AtomicU64,
    /// Audio produced, in samples at 1 Hz resolution of milliseconds.
    pub audio_ms: AtomicU64,
    pub errors: AtomicU64,
    pub evictions: AtomicU64,
}

impl Metrics {
    pub fn count(&self, endpoint: &str, status: u16) {
        *lock(&self.requests).entry((endpoint.to_string(), status)).or_default() += 1;
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Admission: counts requests waiting or running; refuses past the limit.
pub struct Admission<'p> {
    pool: &'p Pool,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.pool.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every voice the server has loaded, and what it is doing.
pub struct Pool {
    /// The server's settings (config file and flags); each request lays its own values over a copy.
    pub settings: Settings,
    /// Sessions per voice.
    pub sessions: usize,
    /// Loaded sessions may use this much (model file sizes), else the least recently used idle voice goes.
    pub budget_bytes: u64,
    /// Requests waiting or running beyond this are refused.
    pub max_queue: usize,
    /// Longest wait for a free session, and for one request's synthesis.
    pub timeout: Duration,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    in_flight: AtomicUsize,
    pub metrics: Metrics,
    /// Set on SIGTERM: new requests are refused, running ones finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// A client must send its whole request within this.
    pub client_timeout: Duration,
}

impl Pool {
    /// Sessions get `settings`' runtime threads (`runtime.intra_threads`).
    pub fn new(settings: Settings, sessions: usize, budget_bytes: u64, max_queue: usize, timeout: Duration) -> Pool {
        Pool {
            settings,
            sessions: sessions.max(1),
            budget_bytes,
            max_queue: max_queue.max(1),
            timeout,
            slots: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            metrics: Metrics::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
            client_timeout: Duration::from_secs(10),
        }
    }

    /// Requests waiting or running now.
    pub fn queue_depth(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Take a place in the queue, or `None` when it is full (or the server is draining).
    pub fn admit(&self) -> Option<Admission<'_>> {
        if self.draining.load(Ordering::Acquire) {
            return None;
        }
        let mut now = self.in_flight.load(Ordering::Acquire);
        loop {
            if now >= self.max_queue {
                return None;
            }
            match self.in_flight.compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Admission { pool: self }),
                Err(actual) => now = actual,
            }
        }
    }

    /// The installed voice names (never a path: requests name voices, not files).
    pub fn model_path(&self, name: &str) -> Result<std::path::PathBuf> {
        if name.contains('/') || name.contains('\\') || name.ends_with(".onnx") || name.starts_with('.') {
            bail!("`{name}` is not a voice name; GET /v1/voices lists them");
        }
        let voices_dir = self.settings.dirs.voices_dir();
        demod_voice_core::assets::resolve_voice(name, &voices_dir).map_err(|_| {
            let installed: Vec<String> =
                demod_voice_core::assets::installed_voices(&voices_dir).into_iter().map(|v| v.name).collect();
            anyhow::anyhow!(
                "no voice named `{name}` here (installed: {}); GET /v1/voices lists them",
                installed.join(", ")
            )
        })
    }

    /// A session of voice `name`: an idle one, a new one while the pool has room, else the next returned one
    /// (waiting at most the timeout).
    pub fn lease(&self, name: &str) -> Result<Lease> {
        let model = self.model_path(name)?;
        let slot = {
            let mut slots = lock(&self.slots);
            let bytes = std::fs::metadata(&model).map(|m| m.len()).unwrap_or(0);
            Arc::clone(slots.entry(name.to_string()).or_insert_with(|| {
                Arc::new(Slot {
                    free: Mutex::new(Vec::new()),
                    created: AtomicUsize::new(0),
                    returned: Condvar::new(),
                    bytes,
                    last_used: Mutex::new(Instant::now()),
                })
            }))
        };
        *lock(&slot.last_used) = Instant::now();
        let deadline = Instant::now() + self.timeout;
        let mut free = lock(&slot.free);
        loop {
            if let Some(voice) = free.pop() {
                return Ok(Lease { slot: Arc::clone(&slot), voice: Some(voice) });
            }
            if slot.created.load(Ordering::Acquire) < self.sessions {
                slot.created.fetch_add(1, Ordering::AcqRel);
                drop(free);
                self.make_room(name, slot.bytes);
                let started = Instant::now();
                let loaded = self.settings.load_voice(Some(&model.display().to_string()));
                match loaded {
                    Ok(voice) => {
                        tracing::info!(voice = name, seconds = started.elapsed().as_secs_f32(), "session loaded");
                        return Ok(Lease { slot, voice: Some(Arc::new(voice)) });
                    }
                    Err(e) => {
                        slot.created.fetch_sub(1, Ordering::AcqRel);
                        return Err(e.into());
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("every session of {name} stayed busy for {:.0} s; try again", self.timeout.as_secs_f32());
            }
            free = slot.returned.wait_timeout(free, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Evict idle voices, least recently used first, until `bytes` more fit the budget.
    fn make_room(&self, keep: &str, bytes: u64) {
        let mut slots = lock(&self.slots);
        loop {
            let loaded: u64 = slots.values().map(|s| s.bytes * s.created.load(Ordering::Acquire) as u64).sum();
            if loaded + bytes <= self.budget_bytes {
                return;
            }
            // Only a voice with every session idle can go.
            let victim = slots
                .iter()
                .filter(|(name, s)| {
                    name.as_str() != keep
                        && s.created.load(Ordering::Acquire) > 0
                        && lock(&s.free).len() == s.created.load(Ordering::Acquire)
                })
                .min_by_key(|(_, s)| *lock(&s.last_used))
                .map(|(name, _)| name.clone());
            let Some(victim) = victim else { return };
            tracing::info!(voice = victim.as_str(), "evicted to stay within the memory budget");
            slots.remove(&victim);
            self.metrics.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Voices with sessions loaded now: (name, sessions).
    pub fn loaded(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> =
            lock(&self.slots).iter().map(|(n, s)| (n.clone(), s.created.load(Ordering::Acquire))).collect();
        out.sort();
        out
    }

    /// Prometheus text.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP demod_voice_requests_total Requests answered, by endpoint and status.\n");
        out.push_str("# TYPE demod_voice_requests_total counter\n");
        for ((endpoint, status), n) in lock(&self.metrics.requests).iter() {
            out.push_str(&format!("demod_voice_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}\n"));
        }
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: String| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        };
        gauge(
            &mut out,
            "demod_voice_queue_depth",
            "Requests waiting or running.",
            "gauge",
            self.queue_depth().to_string(),
        );
        let synth = self.metrics.synthesis_us.load(Ordering::Relaxed) as f64 / 1e6;
        gauge(
            &mut out,
            "demod_voice_synthesis_seconds_total",
            "Time spent synthesising.",
            "counter",
            format!("{synth:.6}"),
        );
        let audio = self.metrics.audio_ms.load(Ordering::Relaxed) as f64 / 1e3;
        gauge(&mut out, "demod_voice_audio_seconds_total", "Audio produced.", "counter", format!("{audio:.3}"));
        gauge(
            &mut out,
            "demod_voice_errors_total",
            "Requests that failed on the server's side.",
            "counter",
            self.metrics.errors.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "demod_voice_evictions_total",
            "Voices unloaded for the memory budget.",
            "counter",
            self.metrics.evictions.load(Ordering::Relaxed).to_string(),
        );
        out.push_str("# HELP demod_voice_sessions Sessions loaded, by voice.\n# TYPE demod_voice_sessions gauge\n");
        for (voice, sessions) in self.loaded() {
            out.push_str(&format!("demod_voice_sessions{{voice=\"{voice}\"}} {sessions}\n"));
        }
        out
    }
}
