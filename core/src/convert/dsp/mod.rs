//! `dsp`: a model-free voice matcher. Shifts pitch by one ratio and formants by another.
//!
//! Method: pitch-synchronous overlap-add (TD-PSOLA) with grain resampling.
//! - YIN (every 5 ms, causal frames) gives the input's period and whether a frame is voiced.
//! - Input pitch marks follow the glottal cycle: each mark is one period after the previous, moved to the
//!   largest peak near the prediction, so grains start at the same phase of every cycle.
//! - Output marks are spaced by the input period divided by the pitch ratio. Each takes the latest input mark at
//!   or before it, cuts a Hann-windowed grain around it and overlap-adds it at the output mark.
//! - Formants: the grain is read `formant_ratio` times faster than it is written, which scales its spectral
//!   envelope (the vocal tract) by that ratio while the grain spacing alone sets the pitch.
//! - A grain keeps its input period unless the next output grain starts first (pitch up), where it ends as the
//!   next fades in; where grains leave gaps (pitch down, formants up) each is raised by the square root of the
//!   stretch. Either way periodic sounds with few harmonics (a sine, a square wave) keep their level.
//! - Unvoiced frames (breath, fricatives) keep a fixed 5 ms grain spacing and are never pitch-shifted, so noise
//!   does not turn into whistles; their formant scaling still applies.
//!
//! PSOLA was chosen over a phase vocoder because it needs a window of about two periods rather than a long FFT
//! frame, which keeps the lookahead (and so the live latency) small, and because it preserves each cycle's shape.
//!
//! Ratios come from the parameters ([`DspParams`], atomics shared with the plugin or UI) and, with a target voice
//! profile, from the target's median F0 over the input's running median F0 and the target's formant scale over
//! the input's running one. Both are bounded and smoothed (about 100 ms). When the profile stores them, the
//! target's pitch spread scales the input's excursions around its running median, and the output is equalised
//! toward the target's long-term spectrum ([`super::timbre`]): what offline matching does with the whole clip,
//! estimated as the speech goes.
//!
//! The converter is stateful and continuous: it outputs each hop exactly once, so the engine joins its blocks
//! without SOLA (see [`Converter::continuous`]).

use std::collections::VecDeque;
use std::sync::Arc;

use super::timbre::LiveEqualiser;
use super::Converter;
use crate::analysis::envelope::{self, EnvelopeAnalyzer};
use crate::analysis::pitch::{PitchEstimate, Yin};

mod params;

pub use params::{DspParams, Target};

/// The rate the dsp converter runs at: ample for speech, half the work of 48 kHz.
pub const MODEL_RATE: u32 = 24_000;
/// Lowest pitch tracked, Hz (sets the grain length and so the lookahead).
const F0_MIN: f32 = 65.0;
const F0_MAX: f32 = 1000.0;
/// Pitch analysis step, seconds.
const FRAME_STEP_S: f32 = 0.005;
/// Grain spacing in unvoiced frames, seconds.
const UNVOICED_PERIOD_S: f32 = 0.005;
/// Fraction of the input period before each pulse where grains meet.
const PRE_PULSE: f32 = 0.15;
/// Bounds of the effective ratios.
pub const PITCH_RATIO_RANGE: (f32, f32) = (0.25, 4.0);
/// The bounds of the effective formant ratio.
pub const FORMANT_RATIO_RANGE: (f32, f32) = (crate::limits::FORMANT_RATIO.min, crate::limits::FORMANT_RATIO.max);
/// The most a grain is raised to make up for the gap after it (a quarter duty cycle).
const MAX_GAP_GAIN: f32 = 2.0;
/// The pitch's spread is scaled by at most this much either way (as offline matching does).
const SPREAD_LIMITS: (f32, f32) = crate::matching::SPREAD_LIMITS;
/// Voiced frames (5 ms each) needed before the input's pitch spread is trusted.
const MIN_SPREAD_FRAMES: usize = 100;
/// Smoothing time constant of ratio changes, seconds.
const SMOOTHING_S: f32 = 0.1;

#[derive(Debug, Clone, Copy)]
struct Mark {
    pos: usize,
    period: f32,
    voiced: bool,
}

/// The PSOLA voice matcher.
pub struct DspConverter {
    params: Arc<DspParams>,
    rate: f32,
    yin: Yin,
    frame_step: usize,
    unvoiced_period: usize,
    max_grain: usize,
    max_read: usize,
    /// Input from absolute index `in_base`.
    input: Vec<f32>,
    in_base: usize,
    /// Absolute index just past the last input sample received.
    in_end: usize,
    /// Absolute index of the next block's first sample (negative at the start: blocks begin with left context).
    block_start: i64,
    /// Whether a block has been seen since the last reset (the first one fixes `block_start`).
    started: bool,
    /// Pitch frames: (absolute end position, estimate).
    frames: VecDeque<(usize, PitchEstimate)>,
    next_frame_end: usize,
    marks: VecDeque<Mark>,
    next_mark: usize,
    /// Output accumulation from absolute `acc_base`.
    acc: Vec<f32>,
    /// Sum of grain windows at each output sample (overlaps above 1 are normalised).
    wsum: Vec<f32>,
    acc_base: usize,
    next_out: f64,
    /// Smoothed effective ratios.
    pitch_ratio: f32,
    formant_ratio: f32,
    /// Recent voiced input F0s (for profile matching) and a scratch copy for their statistics.
    recent_f0: VecDeque<f32>,
    median_scratch: Vec<f32>,
    /// The target as last read from the parameters.
    target: Option<Target>,
    /// Scale of the voiced marks' log-F0 excursions around `spread_centre` (Hz; 0 before it is known), smoothed.
    spread: f32,
    spread_centre: f32,
    /// Equalises the output toward the target's long-term spectrum.
    equaliser: LiveEqualiser,
    envelope: EnvelopeAnalyzer,
    input_scale: Option<f32>,
    frames_since_scale: usize,
    hop_s: f32,
}

impl std::fmt::Debug for DspConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DspConverter")
            .field("pitch_ratio", &self.pitch_ratio)
            .field("formant_ratio", &self.formant_ratio)
            .finish()
    }
}

impl DspConverter {
    /// A converter reading its settings from `params`.
    pub fn new(params: Arc<DspParams>) -> DspConverter {
        let rate = MODEL_RATE;
        let mut converter = DspConverter {
            params,
            rate: rate as f32,
            yin: Yin::new(rate, F0_MIN, F0_MAX),
            frame_step: 1,
            unvoiced_period: 1,
            max_grain: 1,
            max_read: 1,
            input: Vec::new(),
            in_base: 0,
            in_end: 0,
            block_start: 0,
            started: false,
            frames: VecDeque::new(),
            next_frame_end: 0,
            marks: VecDeque::new(),
            next_mark: 0,
            acc: Vec::new(),
            wsum: Vec::new(),
            acc_base: 0,
            next_out: 0.0,
            pitch_ratio: 1.0,
            formant_ratio: 1.0,
            recent_f0: VecDeque::new(),
            median_scratch: Vec::new(),
            target: None,
            spread: 1.0,
            spread_centre: 0.0,
            equaliser: LiveEqualiser::new(rate),
            envelope: EnvelopeAnalyzer::new(rate),
            input_scale: None,
            frames_since_scale: 0,
            hop_s: 0.01,
        };
        converter.prepare(rate, 240, 4096);
        converter
    }

    /// The ratios currently applied (after smoothing).
    pub fn current_ratios(&self) -> (f32, f32) {
        (self.pitch_ratio, self.formant_ratio)
    }

    fn period_at(&self, pos: usize) -> (f32, bool) {
        // The frame best centred on `pos` among those analysed: frames are causal (they end where they are
        // stored), so one ending half a frame after `pos` describes it best, when the input already reaches it.
        let centre = pos + self.yin.frame_len() / 2;
        let estimate = self.frames.iter().rev().find(|(end, _)| *end <= centre).or(self.frames.front());
        match estimate.and_then(|(_, e)| e.f0) {
            Some(f0) => (self.rate / f0, true),
            None => (self.unvoiced_period as f32, false),
        }
    }

    fn sample(&self, pos: f32) -> f32 {
        if pos < self.in_base as f32 {
            return 0.0;
        }
        let idx = pos - self.in_base as f32;
        let i = idx.floor() as usize;
        let frac = idx - i as f32;
        let a = self.input.get(i).copied().unwrap_or(0.0);
        let b = self.input.get(i + 1).copied().unwrap_or(0.0);
        a + (b - a) * frac
    }

    fn analyse_frames(&mut self) {
        let len = self.yin.frame_len();
        while self.next_frame_end <= self.in_end {
            let end = self.next_frame_end;
            let estimate = if end >= len && end - len >= self.in_base {
                let (a, b) = (end - len - self.in_base, end - self.in_base);
                // Hysteresis: staying voiced is easier than becoming voiced, so vowels are not cut into pieces.
                let was_voiced = self.frames.back().is_some_and(|(_, e)| e.f0.is_some());
                self.yin.set_voicing_limit(if was_voiced { 0.5 } else { 0.35 });
                let estimate = self.yin.estimate(&self.input[a..b]);
                if let Some(f0) = estimate.f0 {
                    if self.recent_f0.len() >= 400 {
                        self.recent_f0.pop_front();
                    }
                    self.recent_f0.push_back(f0);
                    let env_len = self.envelope.frame_len();
                    if end >= env_len + self.in_base && self.frames_since_scale.is_multiple_of(2) {
                        let (a, b) = (end - env_len - self.in_base, end - self.in_base);
                        self.envelope.add_frame(&self.input[a..b]);
                    }
                }
                estimate
            } else {
                PitchEstimate { f0: None, aperiodicity: 1.0, rms: 0.0 }
            };
            self.frames_since_scale += 1;
            // Re-estimate the input's formant scale every half second from the recent envelope.
            if self.frames_since_scale >= 100 && self.envelope.frames() >= 20 {
                if let Some(env) = self.envelope.envelope() {
                    self.input_scale = envelope::absolute_scale(&env).or(self.input_scale);
                }
                self.envelope.decay(0.5);
                self.frames_since_scale = 0;
            }
            self.frames.push_back((end, estimate));
            if self.frames.len() > 64 {
                self.frames.pop_front();
            }
            self.next_frame_end += self.frame_step;
        }
    }

    fn place_marks(&mut self) {
        // Marks are only placed where the refinement window is inside the received input.
        loop {
            let (period, voiced) = self.period_at(self.next_mark);
            let refine = if voiced { (period / 4.0) as usize } else { 0 };
            let half = (period / 2.0) as usize;
            if self.next_mark + refine + half + 1 > self.in_end {
                break;
            }
            let mut pos = self.next_mark;
            if voiced && refine > 0 {
                let lo = self.next_mark.saturating_sub(refine).max(self.in_base + half);
                let hi = self.next_mark + refine;
                pos = match self.marks.back().filter(|prev| prev.voiced && prev.pos >= self.in_base + half) {
                    // Inside voicing: the candidate whose surroundings look most like the previous mark's, so
                    // every grain starts at the same point of the cycle even when the peaks wander.
                    Some(prev) => {
                        let reference = prev.pos - self.in_base;
                        let mut best = (f32::MIN, self.next_mark);
                        for p in lo..hi {
                            let candidate = p - self.in_base;
                            let (mut dot, mut energy) = (0.0f32, 0.0f32);
                            for k in 0..2 * half {
                                let a = self.input[reference - half + k];
                                let b = self.input[candidate - half + k];
                                dot += a * b;
                                energy += b * b;
                            }
                            let score = if energy > 0.0 { dot / energy.sqrt() } else { 0.0 };
                            if score > best.0 {
                                best = (score, p);
                            }
                        }
                        best.1
                    }
                    // At a voicing onset: the largest peak near the prediction.
                    None => (lo..hi)
                        .max_by(|&a, &b| self.input[a - self.in_base].total_cmp(&self.input[b - self.in_base]))
                        .unwrap_or(self.next_mark),
                };
                // Keep at least half a period after the previous mark.
                if let Some(prev) = self.marks.back() {
                    pos = pos.max(prev.pos + (period / 2.0) as usize);
                }
            }
            self.marks.push_back(Mark { pos, period, voiced });
            if self.marks.len() > 256 {
                self.marks.pop_front();
            }
            self.next_mark = pos + (period.round() as usize).max(1);
        }
    }

    fn update_ratios(&mut self) {
        let params = &self.params;
        let amount = params.profile_amount();
        let mut pitch = 2f32.powf(params.pitch_semitones() / 12.0);
        let mut formant = params.formant_ratio();
        let mut spread = 1.0;
        self.target = params.target();
        let stats = self.running_pitch();
        if let Some(target) = self.target.filter(|_| amount > 0.0) {
            if let Some((median, log_std)) = stats {
                pitch *= (target.median_f0 / median).clamp(0.5, 2.0).powf(amount);
                if let (Some(goal), Some(log_std)) = (target.f0_log_std, log_std) {
                    spread = (goal / log_std).clamp(SPREAD_LIMITS.0, SPREAD_LIMITS.1).powf(amount);
                }
            }
            if let Some(scale) = self.input_scale {
                formant *= (target.formant_scale / scale).clamp(0.5, 2.0).powf(amount);
            }
        }
        let pitch = pitch.clamp(PITCH_RATIO_RANGE.0, PITCH_RATIO_RANGE.1);
        let formant = formant.clamp(FORMANT_RATIO_RANGE.0, FORMANT_RATIO_RANGE.1);
        let k = 1.0 - (-self.hop_s / SMOOTHING_S).exp();
        self.pitch_ratio += (pitch - self.pitch_ratio) * k;
        self.formant_ratio += (formant - self.formant_ratio) * k;
        self.spread += (spread - self.spread) * k;
        self.spread_centre = stats.map_or(0.0, |(median, _)| median);
    }

    /// The input's running median F0 and, with enough voicing, the standard deviation of its ln F0 (octave slips
    /// folded toward the median, as offline matching measures it).
    fn running_pitch(&mut self) -> Option<(f32, Option<f32>)> {
        if self.recent_f0.len() < 20 {
            return None;
        }
        self.median_scratch.clear();
        self.median_scratch.extend(self.recent_f0.iter().copied());
        let mid = self.median_scratch.len() / 2;
        let (_, median, _) = self.median_scratch.select_nth_unstable_by(mid, f32::total_cmp);
        let median = *median;
        if self.recent_f0.len() < MIN_SPREAD_FRAMES {
            return Some((median, None));
        }
        let fold = |f: f32| crate::clone::folded_ln(f, median);
        let count = self.median_scratch.len() as f32;
        let mean = self.median_scratch.iter().map(|&f| fold(f)).sum::<f32>() / count;
        let var = self.median_scratch.iter().map(|&f| (fold(f) - mean).powi(2)).sum::<f32>() / count;
        Some((median, Some(var.sqrt().max(1e-3))))
    }

    /// Overlap-add grains for output marks up to `until` (absolute), reading input that has arrived.
    ///
    /// Each grain is one input period, from a little before its pulse (`PRE_PULSE` of the period, where the
    /// previous cycle has decayed) to just before the next pulse, read `formant` times faster than written.
    /// Consecutive grains meet with complementary raised-cosine fades centred on those pre-pulse points, so the
    /// grain sum is exactly 1 where they overlap; when pitch goes down, a grain ends before the next begins and
    /// the gap is silence, as in classic PSOLA.
    fn synthesize(&mut self, until: usize) {
        while (self.next_out as usize) < until {
            let t = self.next_out;
            let t_idx = t as usize;
            // The latest input mark at or before the output mark.
            let Some(mark) =
                self.marks.iter().rev().find(|m| m.pos <= t_idx).copied().or_else(|| self.marks.front().copied())
            else {
                // No input analysed yet: silence until the first mark.
                self.next_out += self.unvoiced_period as f64;
                continue;
            };
            let (pitch, formant) =
                if mark.voiced { (self.pitch_ratio, self.formant_ratio) } else { (1.0, self.formant_ratio) };
            let (spread, centre) = (self.spread, self.spread_centre);
            let pitch = if mark.voiced && centre > 0.0 && (spread - 1.0).abs() > 1e-4 && mark.period > 0.0 {
                let f0 = self.rate / mark.period;
                (pitch * (f0 / centre).powf(spread - 1.0)).clamp(PITCH_RATIO_RANGE.0, PITCH_RATIO_RANGE.1)
            } else {
                pitch
            };
            let t_in = mark.period;
            let t_out = (t_in / pitch).max(2.0);
            // Output-time geometry (relative to the mark): fade-in centred at -pre, fade-out centred at `end`.
            let pre = PRE_PULSE * t_in / formant;
            let fade = (pre / 2.0).max(1.0);
            let own_end = (t_in * (1.0 - PRE_PULSE)) / formant; // where the next input pulse's pre-point lands
                                                                // A grain keeps its whole own period (the resonances' decay) unless the next grain starts first (pitch
                                                                // up): then it ends where the next one fades in, so the two never overlap. Averaging overlapping grains
                                                                // cancelled sounds with few harmonics (a sine plus itself half a period later is silence).
            let end = own_end.min(t_out - pre);
            // When grains leave gaps (pitch down, or formants up), the same energy per cycle is spread over a longer
            // output period: the grain is raised by the square root of that stretch so the level holds.
            let covered = end + pre;
            let gain = if t_out > covered { (t_out / covered).sqrt().min(MAX_GAP_GAIN) } else { 1.0 };
            let first = (t - f64::from(pre + fade)).ceil().max(self.acc_base as f64) as usize;
            let last = (t + f64::from(end + fade)).floor().max(0.0) as usize;
            if last >= self.acc_base + self.acc.len() {
                self.acc.resize(last + 1 - self.acc_base, 0.0);
                self.wsum.resize(last + 1 - self.acc_base, 0.0);
            }
            for out_pos in first..=last {
                let tau = (out_pos as f64 - t) as f32;
                let w_in = raised_cosine((tau + pre) / fade);
                let w_out = 1.0 - raised_cosine((tau - end) / fade);
                let w = w_in.min(w_out);
                if w <= 0.0 {
                    continue;
                }
                let x = self.sample(mark.pos as f32 + tau * formant);
                self.acc[out_pos - self.acc_base] += w * x * gain;
                self.wsum[out_pos - self.acc_base] += w;
            }
            self.next_out += f64::from(t_out);
        }
    }
}

/// 0 below -1, 1 above 1, a raised-cosine ramp between.
fn raised_cosine(x: f32) -> f32 {
    if x <= -1.0 {
        0.0
    } else if x >= 1.0 {
        1.0
    } else {
        0.5 - 0.5 * (std::f32::consts::FRAC_PI_2 * (x + 1.0)).cos()
    }
}

impl Converter for DspConverter {
    fn name(&self) -> &'static str {
        "dsp"
    }

    fn sample_rate(&self) -> Option<u32> {
        Some(MODEL_RATE)
    }

    fn prepare(&mut self, sample_rate_hz: u32, max_hop: usize, _max_block: usize) {
        let rate = sample_rate_hz as f32;
        self.rate = rate;
        self.yin = Yin::new(sample_rate_hz, F0_MIN, F0_MAX);
        self.frame_step = ((rate * FRAME_STEP_S) as usize).max(1);
        self.unvoiced_period = ((rate * UNVOICED_PERIOD_S) as usize).max(1);
        let max_period = rate / F0_MIN;
        let min_formant = FORMANT_RATIO_RANGE.0;
        // How far before its mark a grain writes (pre-point plus fade), and how far past its mark it reads.
        self.max_grain = (1.5 * PRE_PULSE * max_period / min_formant).ceil() as usize + 1;
        self.max_read = (max_period + 0.5 * PRE_PULSE * max_period).ceil() as usize + 1;
        self.envelope = EnvelopeAnalyzer::new(sample_rate_hz);
        self.hop_s = max_hop as f32 / rate;
        self.input = Vec::with_capacity(sample_rate_hz as usize * 2);
        self.acc = Vec::with_capacity(sample_rate_hz as usize);
        self.wsum = Vec::with_capacity(sample_rate_hz as usize);
        self.median_scratch = Vec::with_capacity(512);
        self.equaliser = LiveEqualiser::new(sample_rate_hz);
        self.reset();
    }

    fn latency(&self) -> usize {
        // An output sample is final once every grain overlapping it is placed (marks up to `max_grain` later),
        // and a grain reads up to `max_read` past its mark.
        self.max_grain + self.max_read + 1
    }

    fn continuous(&self) -> bool {
        true
    }

    fn process(&mut self, input: &[f32], hop_start: usize, hop_len: usize, output: &mut [f32]) {
        output.iter_mut().for_each(|s| *s = 0.0);
        if !self.started {
            self.block_start = -(hop_start as i64);
            self.started = true;
        }
        // Append the part of this block not seen yet (blocks overlap by context and lookahead).
        let block_end = self.block_start + input.len() as i64;
        if block_end > self.in_end as i64 {
            let new_from = (self.in_end as i64 - self.block_start).max(0) as usize;
            let skip_negative = (-self.block_start).max(0) as usize;
            let from = new_from.max(skip_negative);
            self.input.extend_from_slice(&input[from..]);
            self.in_end = block_end.max(0) as usize;
        }
        let hop_abs = self.block_start + hop_start as i64;
        self.block_start += hop_len as i64;
        if hop_abs < 0 {
            return;
        }
        let hop_abs = hop_abs as usize;
        let hop_end = hop_abs + hop_len;
        self.analyse_frames();
        self.place_marks();
        self.update_ratios();
        // Grains whose mark is before hop_end + max_grain can touch this hop.
        self.synthesize(hop_end + self.max_grain);
        // Emit the hop.
        for i in 0..hop_len {
            let pos = hop_abs + i;
            let (v, w) = if pos >= self.acc_base {
                let idx = pos - self.acc_base;
                (self.acc.get(idx).copied().unwrap_or(0.0), self.wsum.get(idx).copied().unwrap_or(0.0))
            } else {
                (0.0, 0.0)
            };
            let v = v / w.max(1.0);
            output[hop_start + i] = if v.is_finite() { v } else { 0.0 };
        }
        let voiced = self.period_at(hop_abs + hop_len / 2).1;
        let spectrum = self.target.as_ref().and_then(|t| t.spectrum.as_ref());
        let amount = self.params.profile_amount();
        self.equaliser.process(&mut output[hop_start..hop_start + hop_len], voiced, spectrum, amount);
        // Forget what is done: emitted output, and input older than any future grain or pitch frame reads.
        if hop_end > self.acc_base {
            let drop = (hop_end - self.acc_base).min(self.acc.len());
            self.acc.drain(..drop);
            self.wsum.drain(..drop);
            self.acc_base = hop_end;
        }
        let keep_from = hop_end.saturating_sub(self.yin.frame_len() + self.max_read * 2 + self.rate as usize / 10);
        if keep_from > self.in_base + self.input.len() / 2 {
            let drop = keep_from - self.in_base;
            self.input.drain(..drop);
            self.in_base = keep_from;
        }
    }

    fn reset(&mut self) {
        self.input.clear();
        self.in_base = 0;
        self.in_end = 0;
        self.block_start = 0;
        self.started = false;
        self.frames.clear();
        self.next_frame_end = 0;
        self.marks.clear();
        self.next_mark = 0;
        self.acc.clear();
        self.wsum.clear();
        self.acc_base = 0;
        self.next_out = 0.0;
        self.pitch_ratio = 2f32.powf(self.params.pitch_semitones() / 12.0);
        self.formant_ratio = self.params.formant_ratio();
        self.recent_f0.clear();
        self.spread = 1.0;
        self.spread_centre = 0.0;
        self.equaliser.clear();
        self.envelope.clear();
        self.input_scale = None;
        self.frames_since_scale = 0;
    }
}
