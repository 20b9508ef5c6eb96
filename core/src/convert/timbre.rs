//! Live timbre matching for the `dsp` converter: the equaliser that offline matching ([`crate::matching`]) designs
//! from a whole clip, designed here as the speech goes.
//!
//! The converted voice's long-term average spectrum is measured over its voiced stretches (frames wholly inside
//! voicing, forgotten with a time constant of [`MEMORY_S`]); every half second the equaliser toward the target's
//! stored spectrum is designed exactly as offline ([`crate::clone::equaliser`]: shape only, smoothed, bounded, flat
//! above what the target's recordings carry), approached by half, and applied by a bank of peaking filters whose
//! gains are fitted to it. Filters add no latency, and a smooth equaliser needs few of them.
//!
//! Everything is sized in [`LiveEqualiser::new`]; measuring, designing and filtering allocate nothing.

use std::f32::consts::PI;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::clone::{band_bins, band_hz, band_mean, equaliser_into, BANDS};

/// How long the measured spectrum remembers, seconds.
const MEMORY_S: f32 = 10.0;
/// Voiced speech measured before the first equaliser, seconds.
const FIRST_AFTER_S: f32 = 1.5;
/// Time between equaliser designs, seconds.
const DESIGN_EVERY_S: f32 = 0.5;
/// Each design moves the applied equaliser this share of the way to the new one.
const APPROACH: f32 = 0.5;
/// Bands between neighbouring filter centres (about two thirds of an octave).
const FILTER_SPACING: usize = 4;
/// Peaking filters in the bank: centred on every [`FILTER_SPACING`]th band from the third.
pub const FILTERS: usize = (BANDS - 2).div_ceil(FILTER_SPACING);
/// Quality factor of each peaking filter (a bandwidth of about an octave: neighbours overlap, so sums are smooth).
const Q: f32 = 1.4;
/// Rounds of gain correction when fitting the bank to an equaliser.
const FIT_ROUNDS: usize = 4;
/// No filter boosts or cuts by more than this, dB.
const MAX_FILTER_DB: f32 = 18.0;

/// A target's long-term spectrum (dB per [`band_hz`] band) and the highest frequency it tells, Hz.
pub type TargetSpectrum = ([f32; BANDS], f32);

/// One peaking filter (transposed direct form II).
#[derive(Debug, Clone, Copy)]
struct Peak {
    centre_hz: f32,
    b: [f32; 3],
    a: [f32; 2],
    state: [f32; 2],
}

impl Peak {
    fn flat(centre_hz: f32) -> Peak {
        Peak { centre_hz, b: [1.0, 0.0, 0.0], a: [0.0, 0.0], state: [0.0; 2] }
    }

    /// Coefficients for `gain_db` at `rate` (the audio EQ cookbook's peaking filter).
    fn design(&mut self, gain_db: f32, rate: f32) {
        if gain_db.abs() < 1e-3 {
            // Exactly flat (the design below is flat only to rounding).
            (self.b, self.a) = ([1.0, 0.0, 0.0], [0.0, 0.0]);
            return;
        }
        let amp = 10f32.powf(gain_db / 40.0);
        let w0 = 2.0 * PI * self.centre_hz / rate;
        let alpha = w0.sin() / (2.0 * Q);
        let cos = w0.cos();
        let a0 = 1.0 + alpha / amp;
        self.b = [(1.0 + alpha * amp) / a0, -2.0 * cos / a0, (1.0 - alpha * amp) / a0];
        self.a = [-2.0 * cos / a0, (1.0 - alpha / amp) / a0];
    }

    /// Gain at `hz`, dB.
    fn response_db(&self, hz: f32, rate: f32) -> f32 {
        let w = 2.0 * PI * hz / rate;
        let z1 = Complex::new(w.cos(), -w.sin());
        let z2 = z1 * z1;
        let num = Complex::new(self.b[0], 0.0) + z1 * self.b[1] + z2 * self.b[2];
        let den = Complex::new(1.0, 0.0) + z1 * self.a[0] + z2 * self.a[1];
        10.0 * (num.norm_sqr() / den.norm_sqr().max(1e-30)).max(1e-30).log10()
    }

    #[inline]
    fn run(&mut self, x: f32) -> f32 {
        let y = self.b[0] * x + self.state[0];
        self.state[0] = self.b[1] * x - self.a[0] * y + self.state[1];
        self.state[1] = self.b[2] * x - self.a[1] * y;
        y
    }
}

/// A bank of peaking filters fitted to a band equaliser.
#[derive(Debug, Clone)]
pub struct FilterBank {
    rate: f32,
    filters: [Peak; FILTERS],
}

impl FilterBank {
    /// A flat bank for audio at `rate`.
    pub fn new(rate: u32) -> FilterBank {
        let rate = rate as f32;
        FilterBank { rate, filters: std::array::from_fn(|k| Peak::flat(band_hz(2 + k * FILTER_SPACING))) }
    }

    /// Fit the filters' gains so that the bank's response at the band centres follows `eq_db` (dB per band), in
    /// the least-squares sense: a few Gauss-Newton rounds, each solving for the gain changes that best remove the
    /// remaining error given each filter's response per dB (filters overlap, so no gain is simply the
    /// equaliser's value at its centre). Bands above the rate's reach are left out.
    pub fn fit(&mut self, eq_db: &[f32; BANDS]) {
        if eq_db.iter().all(|g| g.abs() < 1e-3) {
            self.filters.iter_mut().for_each(|f| f.design(0.0, self.rate));
            return;
        }
        let reach = self.rate * 0.45;
        let usable = |b: usize| band_hz(b) < reach;
        // Each filter's response per dB of gain at each band (nearly proportional for the gains used).
        let mut basis = [[0.0f32; FILTERS]; BANDS];
        for k in 0..FILTERS {
            let mut unit = self.filters[k];
            unit.design(1.0, self.rate);
            for (b, row) in basis.iter_mut().enumerate() {
                row[k] = unit.response_db(band_hz(b), self.rate);
            }
        }
        let mut gains = [0.0f32; FILTERS];
        for _ in 0..FIT_ROUNDS {
            for (filter, gain) in self.filters.iter_mut().zip(&gains) {
                filter.design(*gain, self.rate);
            }
            // Normal equations (with a little ridge, so a filter no band constrains stays near 0).
            let mut normal = [[0.0f32; FILTERS]; FILTERS];
            let mut rhs = [0.0f32; FILTERS];
            for b in (0..BANDS).filter(|&b| usable(b)) {
                let error = eq_db[b] - self.response_db(band_hz(b));
                for i in 0..FILTERS {
                    rhs[i] += basis[b][i] * error;
                    for j in 0..FILTERS {
                        normal[i][j] += basis[b][i] * basis[b][j];
                    }
                }
            }
            (0..FILTERS).for_each(|i| normal[i][i] += 0.01);
            let step = solve(normal, rhs);
            gains.iter_mut().zip(&step).for_each(|(g, d)| *g = (*g + d).clamp(-MAX_FILTER_DB, MAX_FILTER_DB));
        }
        for (filter, gain) in self.filters.iter_mut().zip(&gains) {
            filter.design(*gain, self.rate);
        }
    }

    /// The bank's gain at `hz`, dB.
    pub fn response_db(&self, hz: f32) -> f32 {
        self.filters.iter().map(|f| f.response_db(hz, self.rate)).sum()
    }

    /// Filter `samples` in place.
    pub fn run(&mut self, samples: &mut [f32]) {
        for filter in &mut self.filters {
            for x in samples.iter_mut() {
                *x = filter.run(*x);
            }
        }
    }

    /// Forget the filters' state (not their gains).
    pub fn clear(&mut self) {
        self.filters.iter_mut().for_each(|f| f.state = [0.0; 2]);
    }
}

/// Solve `a x = b` by Gaussian elimination with partial pivoting (a singular system gives zeros where undetermined).
fn solve<const N: usize>(mut a: [[f32; N]; N], mut b: [f32; N]) -> [f32; N] {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs())).unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        if a[col][col].abs() < 1e-9 {
            continue;
        }
        let (above, below) = a.split_at_mut(col + 1);
        let pivot_row = &above[col];
        for (offset, row) in below.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            row.iter_mut().zip(pivot_row).skip(col).for_each(|(x, p)| *x -= f * p);
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = [0.0f32; N];
    for row in (0..N).rev() {
        if a[row][row].abs() < 1e-9 {
            continue;
        }
        let rest: f32 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    x
}

/// Measures a voice's long-term spectrum as it goes and equalises it toward a target's.
pub struct LiveEqualiser {
    rate: u32,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// The last `window.len()` samples, oldest first from `ring_at`.
    ring: Vec<f32>,
    ring_at: usize,
    fft_in: Vec<f32>,
    fft_out: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power_scratch: Vec<f64>,
    bins: [(usize, usize); BANDS],
    /// Samples between measured frames, and since the last one.
    step: usize,
    since_frame: usize,
    /// Consecutive voiced samples seen.
    voiced_run: usize,
    /// Decayed band powers and their weight (frames).
    power: [f64; BANDS],
    weight: f64,
    decay: f64,
    since_design: usize,
    /// The equaliser applied now, dB per band.
    applied: [f32; BANDS],
    bank: FilterBank,
}

impl std::fmt::Debug for LiveEqualiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEqualiser").field("rate", &self.rate).field("applied", &self.applied).finish()
    }
}

impl LiveEqualiser {
    /// An equaliser for audio at `rate`, flat until it has heard enough voiced speech.
    pub fn new(rate: u32) -> LiveEqualiser {
        // The analysis resolution offline matching uses: 1024 points at 16 kHz.
        let n = ((1024.0 * rate as f32 / 16_000.0).round() as usize).max(64) & !1;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        let step = n / 4;
        let window = crate::analysis::periodic_hann(n);
        LiveEqualiser {
            rate,
            fft_in: fft.make_input_vec(),
            fft_out: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power_scratch: vec![0.0; n / 2 + 1],
            bins: band_bins(rate as f32 / n as f32, n / 2),
            fft,
            window,
            ring: vec![0.0; n],
            ring_at: 0,
            step,
            since_frame: 0,
            voiced_run: 0,
            power: [0.0; BANDS],
            weight: 0.0,
            decay: (-(step as f64) / (f64::from(MEMORY_S) * f64::from(rate))).exp(),
            since_design: 0,
            applied: [0.0; BANDS],
            bank: FilterBank::new(rate),
        }
    }

    /// The equaliser applied now, dB per band.
    pub fn applied(&self) -> &[f32; BANDS] {
        &self.applied
    }

    /// Measure `samples` (voiced or not, as the pitch tracker says), move the equaliser toward `target` by
    /// `amount` (0..1; none: flat), and filter them in place.
    pub fn process(&mut self, samples: &mut [f32], voiced: bool, target: Option<&TargetSpectrum>, amount: f32) {
        let n = self.ring.len();
        // Nothing to match: nothing measured (the applied equaliser still fades out below).
        let voiced = voiced && target.is_some();
        for &x in samples.iter() {
            self.ring[self.ring_at] = x;
            self.ring_at = (self.ring_at + 1) % n;
            self.voiced_run = if voiced { self.voiced_run + 1 } else { 0 };
            self.since_frame += 1;
            if self.since_frame >= self.step {
                self.since_frame = 0;
                if self.voiced_run >= n {
                    self.measure_frame();
                }
            }
        }
        self.since_design += samples.len();
        if self.since_design as f32 >= DESIGN_EVERY_S * self.rate as f32 {
            self.since_design = 0;
            self.design(target, amount);
        }
        self.bank.run(samples);
    }

    fn measure_frame(&mut self) {
        let n = self.ring.len();
        for (i, slot) in self.fft_in.iter_mut().enumerate() {
            *slot = self.ring[(self.ring_at + i) % n] * self.window[i];
        }
        if self.fft.process_with_scratch(&mut self.fft_in, &mut self.fft_out, &mut self.scratch).is_err() {
            return;
        }
        for (p, c) in self.power_scratch.iter_mut().zip(&self.fft_out) {
            *p = f64::from(c.norm_sqr());
        }
        for (acc, &(first, last)) in self.power.iter_mut().zip(&self.bins) {
            *acc = *acc * self.decay + band_mean(&self.power_scratch[first..=last]);
        }
        self.weight = self.weight * self.decay + 1.0;
    }

    fn design(&mut self, target: Option<&TargetSpectrum>, amount: f32) {
        let frames_needed = FIRST_AFTER_S * self.rate as f32 / self.step as f32;
        let mut aim = [0.0f32; BANDS];
        match target {
            Some((goal, top_hz)) if amount > 0.0 => {
                if (self.weight as f32) < frames_needed {
                    return;
                }
                let measured: [f32; BANDS] =
                    std::array::from_fn(|b| (10.0 * (self.power[b] / self.weight + 1e-12).log10()) as f32);
                equaliser_into(&measured, goal, *top_hz, &mut aim);
                aim.iter_mut().for_each(|g| *g *= amount.min(1.0));
            }
            _ => {}
        }
        for (applied, aim) in self.applied.iter_mut().zip(&aim) {
            *applied += APPROACH * (aim - *applied);
        }
        self.bank.fit(&self.applied);
    }

    /// Forget everything measured and applied.
    pub fn clear(&mut self) {
        self.ring.fill(0.0);
        self.ring_at = 0;
        self.since_frame = 0;
        self.voiced_run = 0;
        self.power = [0.0; BANDS];
        self.weight = 0.0;
        self.since_design = 0;
        self.applied = [0.0; BANDS];
        self.bank.fit(&self.applied);
        self.bank.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smooth_tilt() -> [f32; BANDS] {
        std::array::from_fn(|b| 6.0 - 12.0 * b as f32 / (BANDS - 1) as f32)
    }

    #[test]
    fn the_filter_bank_follows_a_smooth_equaliser_within_a_db_and_a_half() {
        // Near the Nyquist frequency the filters are cramped: at 16 kHz only up to 4 kHz is held to this.
        for (rate, top) in [(16_000, 33), (24_000, 38), (48_000, 38)] {
            let mut bank = FilterBank::new(rate);
            let bump: [f32; BANDS] = std::array::from_fn(|b| 6.0 * (-((b as f32 - 18.0) / 6.0).powi(2)).exp());
            for eq in [smooth_tilt(), bump] {
                bank.fit(&eq);
                for (b, want) in eq.iter().enumerate().filter(|(b, _)| (2..=top).contains(b)) {
                    let got = bank.response_db(band_hz(b));
                    assert!(
                        (got - want).abs() < 1.5,
                        "{rate} Hz, band {b} ({:.0} Hz): {got:.2} vs {want:.2}",
                        band_hz(b)
                    );
                }
            }
            bank.fit(&[0.0; BANDS]);
            assert!((0..BANDS).all(|b| bank.response_db(band_hz(b)).abs() < 0.01));
        }
    }

    #[test]
    fn nothing_changes_without_a_target_or_before_enough_voicing() {
        let rate = 24_000;
        let mut eq = LiveEqualiser::new(rate);
        let input = crate::analysis::synthetic::noise(3, rate as usize * 3);
        let mut output = input.clone();
        for chunk in output.chunks_mut(240) {
            eq.process(chunk, true, None, 1.0);
        }
        assert!(output.iter().zip(&input).all(|(a, b)| (a - b).abs() < 1e-6));
        // A target, but the input was never voiced: still flat.
        let target: TargetSpectrum = (smooth_tilt(), 8000.0);
        let mut eq = LiveEqualiser::new(rate);
        let mut output = input.clone();
        for chunk in output.chunks_mut(240) {
            eq.process(chunk, false, Some(&target), 1.0);
        }
        assert!(eq.applied().iter().all(|g| *g == 0.0));
    }

    #[test]
    fn white_noise_is_tilted_toward_a_tilted_target() {
        let rate = 24_000;
        let mut eq = LiveEqualiser::new(rate);
        let target: TargetSpectrum = (smooth_tilt(), 8000.0);
        let mut audio = crate::analysis::synthetic::noise(5, rate as usize * 6);
        for chunk in audio.chunks_mut(240) {
            eq.process(chunk, true, Some(&target), 1.0);
        }
        // White noise is flat: the equaliser is the tilt (its smoothing and edges aside), within a few dB.
        let applied = eq.applied();
        assert!(applied[4] > 3.0 && applied[35] < -3.0, "{applied:?}");
        // And the output's spectrum is tilted: the last two seconds, low bands over high ones.
        let tail = &audio[audio.len() - 2 * rate as usize..];
        let low = band_power(tail, rate, 200.0);
        let high = band_power(tail, rate, 5000.0);
        assert!(low - high > 6.0, "low {low:.1} dB, high {high:.1} dB");
    }

    fn band_power(x: &[f32], rate: u32, hz: f32) -> f32 {
        let n = x.len().next_power_of_two();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        let mut input = fft.make_input_vec();
        input[..x.len()].copy_from_slice(x);
        let mut spectrum = fft.make_output_vec();
        fft.process(&mut input, &mut spectrum).unwrap();
        let bin = |f: f32| (f * n as f32 / rate as f32) as usize;
        let bins = &spectrum[bin(hz / 1.2)..bin(hz * 1.2)];
        10.0 * (bins.iter().map(|c| c.norm_sqr()).sum::<f32>() / bins.len() as f32).log10()
    }
}
