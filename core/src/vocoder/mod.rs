//! A source-filter vocoder for offline voice conversion: speech is taken apart into a pitch contour, a smooth
//! spectral envelope per frame and a per-frequency aperiodicity, changed there, and put back together.
//!
//! The design follows the WORLD vocoder (Morise et al., 2016) in outline, implemented from the published method:
//! - pitch every 5 ms from YIN ([`crate::analysis::pitch`]), with octave slips folded toward the local median and
//!   voicing blips removed;
//! - the envelope of each frame from a pitch-adaptive window three periods long, smoothed over one harmonic spacing
//!   and liftered so that it does not depend on where the harmonics fall (the "CheapTrick" idea);
//! - aperiodicity per band from how well one period predicts the next (the normalised cross-spectrum of two windows
//!   one period apart), interpolated across frequency;
//! - synthesis by overlap-adding, at each pitch pulse, a minimum-phase response of the periodic part plus filtered
//!   white noise for the aperiodic part (noise alone in unvoiced stretches).
//!
//! Unlike pitch-synchronous overlap-add, nothing here repeats or drops waveform grains, so large pitch shifts keep
//! the words clear: the new harmonics simply sample the same envelope. Offline only: everything allocates.
//!
//! Load -> [`Analysis::of`] -> change `f0` / [`Analysis::warp`] -> [`Analysis::synthesise`].

mod aperiodicity;
mod envelope;
pub(crate) mod f0;
mod synthesis;

use crate::error::Result;

/// Time between analysis frames, seconds.
pub const FRAME_PERIOD_S: f64 = 0.005;
/// Lowest pitch the analysis windows are sized for, Hz.
pub const F0_FLOOR: f32 = 55.0;
/// Highest pitch tracked, Hz.
pub const F0_CEIL: f32 = 800.0;
/// The pitch assumed for unvoiced frames when sizing their windows, Hz.
const UNVOICED_F0: f32 = 500.0;
/// Aperiodicity (a power ratio) is kept above this: -30 dB of noise even in the cleanest harmonics.
const MIN_APERIODICITY: f32 = 0.001;

/// The bands breathiness is measured and changed in, Hz (low, high).
pub const BREATH_BANDS_HZ: [(f32, f32); 4] = [(0.0, 1000.0), (1000.0, 2000.0), (2000.0, 4000.0), (4000.0, 8000.0)];
/// Voiced frames needed before breathiness is measured (0.3 s).
const MIN_BREATH_FRAMES: usize = 60;

/// Breathiness per [`BREATH_BANDS_HZ`] band: the mean aperiodicity of the voiced frames, dB (`None` where the
/// audio does not reach the band or could not tell).
pub type Breathiness = [Option<f32>; 4];

/// Speech taken apart: everything is per frame, frames every [`FRAME_PERIOD_S`] from time 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Sample rate of the analysed (and the synthesised) audio, Hz.
    pub rate: u32,
    /// Samples in the analysed signal.
    pub len: usize,
    /// FFT length of the envelopes and aperiodicities (`fft_len / 2 + 1` bins each).
    pub fft_len: usize,
    /// Pitch per frame, Hz; 0 for unvoiced frames.
    pub f0: Vec<f32>,
    /// Power spectral envelope per frame.
    pub envelope: Vec<Vec<f32>>,
    /// Aperiodicity per frame: the noise share of the power at each bin, [`MIN_APERIODICITY`]..=1.
    pub aperiodicity: Vec<Vec<f32>>,
}

impl Analysis {
    /// Analyse `samples` at `rate`. Silence and noise come out unvoiced; an empty signal gives no frames.
    pub fn of(samples: &[f32], rate: u32) -> Result<Analysis> {
        let fft_len = fft_len_for(rate);
        let hop = frame_hop(rate);
        let f0 = f0::contour(samples, rate, hop);
        let mut envelopes = envelope::Envelopes::new(rate, fft_len);
        let mut aperiodicities = aperiodicity::Aperiodicities::new(rate, fft_len);
        let mut envelope = Vec::with_capacity(f0.len());
        let mut aperiodicity = Vec::with_capacity(f0.len());
        for (i, &pitch) in f0.iter().enumerate() {
            let centre = (i * hop) as f64;
            envelope.push(envelopes.at(samples, centre, if pitch > 0.0 { pitch } else { UNVOICED_F0 })?);
            aperiodicity.push(if pitch > 0.0 {
                aperiodicities.at(samples, centre, pitch)?
            } else {
                vec![1.0; fft_len / 2 + 1]
            });
        }
        Ok(Analysis { rate, len: samples.len(), fft_len, f0, envelope, aperiodicity })
    }

    /// Frames in the analysis.
    pub fn frames(&self) -> usize {
        self.f0.len()
    }

    /// Move every voiced frame's pitch: ln f0' = ln `to_median` + (ln f0 - ln `from_median`) * `spread`.
    pub fn map_pitch(&mut self, from_median: f32, to_median: f32, spread: f32) {
        let (from, to) = (from_median.max(1.0).ln(), to_median.max(1.0).ln());
        for f in self.f0.iter_mut().filter(|f| **f > 0.0) {
            *f = (to + (f.ln() - from) * spread).exp().clamp(F0_FLOOR * 0.5, self.rate as f32 / 4.0);
        }
    }

    /// Scale the envelopes' frequency axis by `ratio` (above 1 moves formants up, as a shorter vocal tract does).
    /// Beyond what the original carried the last bin's level is held.
    pub fn warp(&mut self, ratio: f32) {
        if (ratio - 1.0).abs() < 1e-4 {
            return;
        }
        for frame in &mut self.envelope {
            *frame = warp_bins(frame, ratio);
        }
    }

    /// How breathy the voiced frames are, per [`BREATH_BANDS_HZ`] band: the mean of their aperiodicity (the noise
    /// share of the power), in dB. Bands beyond the Nyquist frequency, or too little voicing, give `None`.
    pub fn breathiness(&self) -> Breathiness {
        let voiced: Vec<&Vec<f32>> =
            self.f0.iter().zip(&self.aperiodicity).filter(|(f, _)| **f > 0.0).map(|(_, a)| a).collect();
        let bin_hz = self.rate as f32 / self.fft_len as f32;
        BREATH_BANDS_HZ.map(|(low, high)| {
            if voiced.len() < MIN_BREATH_FRAMES || high > self.rate as f32 / 2.0 {
                return None;
            }
            let (first, last) = ((low / bin_hz).ceil() as usize, (high / bin_hz).floor() as usize);
            let (sum, count) = voiced
                .iter()
                .flat_map(|frame| frame.get(first..=last.min(frame.len() - 1)).unwrap_or(&[]))
                .fold((0.0f64, 0usize), |(sum, n), a| (sum + f64::from(*a), n + 1));
            (count > 0).then(|| (10.0 * (sum / count as f64).max(1e-9).log10()) as f32)
        })
    }

    /// Make the voiced frames breathier (positive dB) or clearer (negative) per [`BREATH_BANDS_HZ`] band: each
    /// bin's aperiodicity is scaled by the change, interpolated between the bands' centres, and kept within its
    /// bounds. Unvoiced frames are noise already and stay so.
    pub fn breathe(&mut self, change_db: &[f32; 4]) {
        if change_db.iter().all(|c| c.abs() < 1e-3) {
            return;
        }
        let centres = BREATH_BANDS_HZ.map(|(low, high)| (low + high) / 2.0);
        let bin_hz = self.rate as f32 / self.fft_len as f32;
        let gains: Vec<f32> = (0..self.fft_len / 2 + 1)
            .map(|k| {
                let hz = k as f32 * bin_hz;
                let upper = centres.iter().position(|c| *c >= hz).unwrap_or(centres.len());
                let db = match upper {
                    0 => change_db[0],
                    n if n == centres.len() => change_db[n - 1],
                    n => {
                        let frac = (hz - centres[n - 1]) / (centres[n] - centres[n - 1]);
                        change_db[n - 1] + (change_db[n] - change_db[n - 1]) * frac
                    }
                };
                10f32.powf(db / 10.0)
            })
            .collect();
        for (frame, _) in self.aperiodicity.iter_mut().zip(&self.f0).filter(|(_, f)| **f > 0.0) {
            for (a, g) in frame.iter_mut().zip(&gains) {
                *a = (*a * g).clamp(MIN_APERIODICITY, 1.0);
            }
        }
    }

    /// Put the speech back together at the analysed rate and length. Deterministic: the noise is seeded.
    pub fn synthesise(&self) -> Result<Vec<f32>> {
        synthesis::synthesise(self, frame_hop(self.rate))
    }
}

/// Samples between analysis frames at `rate`.
pub fn frame_hop(rate: u32) -> usize {
    ((f64::from(rate) * FRAME_PERIOD_S).round() as usize).max(1)
}

/// The FFT length that holds a three-period window of the lowest pitch at `rate`.
fn fft_len_for(rate: u32) -> usize {
    let longest = (3.0 * rate as f32 / F0_FLOOR).ceil() as usize + 1;
    longest.next_power_of_two().max(64)
}

/// `frame` (log-interpolated) read at bin / `ratio`.
fn warp_bins(frame: &[f32], ratio: f32) -> Vec<f32> {
    let last = frame.len() - 1;
    (0..frame.len())
        .map(|k| {
            let pos = (k as f32 / ratio).min(last as f32);
            let i = (pos.floor() as usize).min(last);
            let frac = pos - i as f32;
            let (a, b) = (frame[i].max(1e-30).ln(), frame[(i + 1).min(last)].max(1e-30).ln());
            (a + (b - a) * frac).exp()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::pitch::{cents, median_f0, track};
    use crate::analysis::synthetic;

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    /// Level of `x` around `hz` (a 1/3-octave band), dB, from one long Hann-windowed spectrum.
    fn band_db(x: &[f32], rate: u32, hz: f32) -> f32 {
        use realfft::RealFftPlanner;
        let n = x.len().next_power_of_two();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        let mut input = fft.make_input_vec();
        for (i, v) in x.iter().enumerate() {
            input[i] = v * (0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / x.len() as f32).cos());
        }
        let mut spectrum = fft.make_output_vec();
        fft.process(&mut input, &mut spectrum).unwrap();
        let bin = |f: f32| (f * n as f32 / rate as f32) as usize;
        let power: f32 = spectrum[bin(hz / 1.12)..bin(hz * 1.12)].iter().map(|c| c.norm_sqr()).sum();
        10.0 * (power + 1e-20).log10()
    }

    #[test]
    fn resynthesis_keeps_pitch_level_and_formants() {
        let rate = 22_050;
        let input = synthetic::voice(120.0, &[700.0, 1200.0, 2600.0], rate, 1.0);
        let analysis = Analysis::of(&input, rate).unwrap();
        assert_eq!(analysis.fft_len, 2048);
        let voiced = analysis.f0.iter().filter(|f| **f > 0.0).count();
        assert!(voiced as f32 > analysis.frames() as f32 * 0.8, "{voiced} of {} frames voiced", analysis.frames());
        let output = analysis.synthesise().unwrap();
        assert_eq!(output.len(), input.len());
        let level_db = 20.0 * (rms(&output) / rms(&input)).log10();
        assert!(level_db.abs() < 2.0, "level changed by {level_db:.2} dB");
        let measured = median_f0(&track(&output, rate, 110)).unwrap();
        assert!(cents(measured, 120.0).abs() < 20.0, "pitch {measured} Hz");
        // The formant peak stands above the valley between formants as it did.
        let contrast = |x: &[f32]| band_db(x, rate, 700.0) - band_db(x, rate, 1800.0);
        assert!((contrast(&output) - contrast(&input)).abs() < 4.0, "{} vs {}", contrast(&output), contrast(&input));
    }

    #[test]
    fn a_pitch_shift_of_an_octave_keeps_the_envelope_in_place() {
        let rate = 22_050;
        let input = synthetic::voice(110.0, &[700.0, 1200.0, 2600.0], rate, 1.0);
        let mut analysis = Analysis::of(&input, rate).unwrap();
        analysis.map_pitch(110.0, 220.0, 1.0);
        let output = analysis.synthesise().unwrap();
        let measured = median_f0(&track(&output, rate, 110)).unwrap();
        assert!(cents(measured, 220.0).abs() < 25.0, "pitch {measured} Hz");
        // PSOLA's failure mode, a level loss at high ratios, is absent: the level holds within a few dB.
        let level_db = 20.0 * (rms(&output) / rms(&input)).log10();
        assert!(level_db.abs() < 3.0, "level changed by {level_db:.2} dB");
        let contrast = |x: &[f32]| band_db(x, rate, 700.0) - band_db(x, rate, 1800.0);
        assert!(contrast(&output) > contrast(&input) - 6.0, "{} vs {}", contrast(&output), contrast(&input));
    }

    #[test]
    fn warping_moves_formants_by_the_ratio() {
        let rate = 22_050;
        let input = synthetic::voice(120.0, &[800.0], rate, 1.0);
        let mut analysis = Analysis::of(&input, rate).unwrap();
        analysis.warp(1.25);
        let output = analysis.synthesise().unwrap();
        // The peak moved from 800 Hz to 1000 Hz: more energy at 1000 than at 800 now.
        assert!(band_db(&output, rate, 1000.0) > band_db(&output, rate, 700.0), "formant did not move up");
        assert!(band_db(&input, rate, 1000.0) < band_db(&input, rate, 800.0));
    }

    #[test]
    fn breathiness_is_measured_per_band_and_moved_by_the_change_asked() {
        let rate = 22_050;
        let input = synthetic::voice(120.0, &[700.0, 1200.0, 2600.0], rate, 1.0);
        let mut analysis = Analysis::of(&input, rate).unwrap();
        let before = analysis.breathiness();
        assert!(before.iter().all(Option::is_some), "{before:?}");
        analysis.breathe(&[6.0, 6.0, 0.0, -3.0]);
        let after = analysis.breathiness();
        let moved: Vec<f32> = before.iter().zip(&after).map(|(b, a)| a.unwrap() - b.unwrap()).collect();
        // The bounds hold some bins back, so a change arrives in full or short of it, never past it.
        assert!(moved[0] > 2.0 && moved[0] <= 6.01, "{moved:?}");
        assert!(moved[3] < -1.0 && moved[3] >= -3.01, "{moved:?}");
        // A breathier resynthesis carries more noise between the harmonics.
        let clear = Analysis::of(&input, rate).unwrap().synthesise().unwrap();
        let breathy = analysis.synthesise().unwrap();
        let between = |x: &[f32]| band_db(x, rate, 180.0) - band_db(x, rate, 240.0);
        assert!(between(&breathy) > between(&clear), "{} vs {}", between(&breathy), between(&clear));
        // Beyond the Nyquist frequency nothing is told: at 8 kHz the top band is out of reach.
        let narrow = Analysis::of(&synthetic::voice(120.0, &[700.0], 8_000, 1.0), 8_000).unwrap();
        assert!(narrow.breathiness()[3].is_none() && narrow.breathiness()[0].is_some());
    }

    #[test]
    fn noise_is_unvoiced_and_comes_back_as_noise_of_the_same_level() {
        let rate = 16_000;
        let noise: Vec<f32> = crate::analysis::synthetic::noise(7, 16_000).iter().map(|v| v * 0.2).collect();
        let analysis = Analysis::of(&noise, rate).unwrap();
        let voiced = analysis.f0.iter().filter(|f| **f > 0.0).count();
        assert!(voiced < analysis.frames() / 10, "{voiced} voiced frames in noise");
        let output = analysis.synthesise().unwrap();
        let level_db = 20.0 * (rms(&output) / rms(&noise)).log10();
        assert!(level_db.abs() < 2.0, "level changed by {level_db:.2} dB");
        assert!(Analysis::of(&[], rate).unwrap().synthesise().unwrap().is_empty());
    }
}
