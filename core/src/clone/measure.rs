//! What cloning measures of a voice and how it moves timbre: pitch statistics (median and spread, octave errors
//! folded), breathiness where a recording is clean enough to tell it, the long-term average spectrum of the voiced
//! frames in log-spaced bands, and the smooth equaliser between two such spectra (designed here, applied by a
//! linear-phase FIR). Profiles, offline matching and the live equaliser ([`crate::convert::timbre`]) measure with
//! the same bands.

use realfft::RealFftPlanner;
use serde::{Deserialize, Serialize};

use crate::analysis::pitch::{track, PitchEstimate};
use crate::error::Result;
use crate::vocoder::Analysis;

/// Rate of the spectral analysis, Hz (bands reach 7.5 kHz).
const ANALYSIS_RATE: u32 = 16_000;
/// Long-term spectrum bands: log-spaced from [`BAND_LOW_HZ`] to [`BAND_HIGH_HZ`].
pub const BANDS: usize = 40;
/// Lowest band centre, Hz.
const BAND_LOW_HZ: f32 = 80.0;
/// Highest band centre, Hz.
const BAND_HIGH_HZ: f32 = 7200.0;
/// The equaliser never boosts or cuts a band by more than this, dB.
const MAX_EQ_DB: f32 = 7.5;
/// Breathiness is measured only in recordings whose quiet stretches sit at least this far below their speech, dB
/// (a recording's noise reads as breath otherwise).
const MIN_BREATH_SNR_DB: f32 = 30.0;
/// Breathiness is changed by at most this much per band, dB.
const MAX_BREATH_DB: f32 = 6.0;

/// Centre frequency of long-term-spectrum band `idx`, Hz.
pub fn band_hz(idx: usize) -> f32 {
    BAND_LOW_HZ * (BAND_HIGH_HZ / BAND_LOW_HZ).powf(idx as f32 / (BANDS - 1) as f32)
}

/// Pitch statistics of voiced speech.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PitchStats {
    /// Median F0, Hz.
    pub median_hz: f32,
    /// Standard deviation of ln F0 (how much the pitch moves).
    pub log_std: f32,
}

/// Pitch statistics of `samples` (at `rate`), from YIN every 5 ms, octave errors folded: frames more than half an
/// octave from the median are moved by octaves toward it before the spread is measured (a doubled or halved period
/// is a tracking error, not intonation). `None` with under 0.3 s of voicing.
pub fn pitch_stats(samples: &[f32], rate: u32) -> Option<PitchStats> {
    pitch_stats_of(voiced_f0s(samples, rate))
}

/// Voiced frames (5 ms each) needed for pitch statistics: 0.3 s.
pub(crate) const MIN_VOICED_FRAMES: usize = 60;

/// The pitch of each voiced 5 ms frame of `samples` (at `rate`), by YIN.
pub(crate) fn voiced_f0s(samples: &[f32], rate: u32) -> Vec<f32> {
    let hop = (rate / 200).max(1) as usize;
    track(samples, rate, hop).iter().filter_map(|p: &PitchEstimate| p.f0).collect()
}

/// ln `f0` after moving it by octaves to within half an octave (and a little) of `median`: a doubled or halved
/// period is a tracking error, not intonation. `f0` and `median` must be finite and positive.
pub(crate) fn folded_ln(f0: f32, median: f32) -> f32 {
    let reach = std::f32::consts::SQRT_2 * 1.06;
    let mut f = f0;
    while f > median * reach {
        f /= 2.0;
    }
    while f < median / reach {
        f *= 2.0;
    }
    f.ln()
}

/// [`pitch_stats`] of voiced frames' pitches (one every 5 ms), as measured elsewhere. `None` under 0.3 s of them.
pub fn pitch_stats_of(voiced: Vec<f32>) -> Option<PitchStats> {
    let voiced: Vec<f32> = voiced.into_iter().filter(|f| f.is_finite() && (20.0..4000.0).contains(f)).collect();
    if voiced.len() < MIN_VOICED_FRAMES {
        return None;
    }
    let mut sorted = voiced.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    // Finite and positive (filtered above), so the folding ends.
    let folded: Vec<f32> = voiced.iter().map(|&f| folded_ln(f, median)).collect();
    let mut sorted = folded.clone();
    sorted.sort_by(f32::total_cmp);
    let centre = sorted[sorted.len() / 2];
    let mean = folded.iter().sum::<f32>() / folded.len() as f32;
    let var = folded.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / folded.len() as f32;
    Some(PitchStats { median_hz: centre.exp(), log_std: var.sqrt().max(1e-3) })
}

/// How far the loud stretches of `samples` (at `rate`) sit above the quiet ones, dB: the 95th over the 10th
/// percentile of the energies of 20 ms frames. Clean speech reaches 45-60 dB; hiss, hum or room noise lower it.
pub fn signal_to_noise_db(samples: &[f32], rate: u32) -> f32 {
    let frame = (rate as usize / 50).max(1);
    let mut energies: Vec<f32> = samples
        .chunks_exact(frame)
        .map(|c| 10.0 * (c.iter().map(|v| v * v).sum::<f32>() / frame as f32 + 1e-12).log10())
        .collect();
    if energies.len() < 10 {
        return 0.0;
    }
    energies.sort_by(f32::total_cmp);
    let at = |p: f32| energies[((energies.len() - 1) as f32 * p).round() as usize];
    at(0.95) - at(0.10)
}

/// The breathiness of a recording ([`Analysis::breathiness`]) where it can be told: not at all when the recording
/// is too noisy ([`MIN_BREATH_SNR_DB`]), and not in bands above `top_hz` (what it carries).
pub fn measurable_breathiness(
    samples: &[f32],
    rate: u32,
    analysis: &Analysis,
    top_hz: f32,
) -> Option<crate::vocoder::Breathiness> {
    if signal_to_noise_db(samples, rate) < MIN_BREATH_SNR_DB {
        return None;
    }
    let mut measured = analysis.breathiness();
    for (band, (_, high)) in measured.iter_mut().zip(crate::vocoder::BREATH_BANDS_HZ) {
        if high > top_hz * 1.09 {
            *band = None;
        }
    }
    measured.iter().any(Option::is_some).then_some(measured)
}

/// The change (dB per band) that makes a voice of breathiness `from` as breathy as `to`, bounded; 0 where either
/// is unknown.
pub fn breath_change(from: &crate::vocoder::Breathiness, to: &crate::vocoder::Breathiness) -> [f32; 4] {
    std::array::from_fn(|b| match (from[b], to[b]) {
        (Some(from), Some(to)) => (to - from).clamp(-MAX_BREATH_DB, MAX_BREATH_DB),
        _ => 0.0,
    })
}

/// The long-term average spectrum of the voiced frames of `samples`, dB per band ([`band_hz`]), and the highest
/// frequency the recording carries (its Nyquist, a little under). `None` without voiced frames.
pub fn long_term_spectrum(samples: &[f32], rate: u32) -> Result<Option<(Vec<f32>, f32)>> {
    let audio = crate::wav::resample(samples, rate, ANALYSIS_RATE)?;
    const N: usize = 1024;
    const HOP: usize = 256;
    if audio.len() < N {
        return Ok(None);
    }
    let window = crate::analysis::periodic_hann(N);
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N);
    let (mut frame, mut spectrum) = (fft.make_input_vec(), fft.make_output_vec());
    let mut power = vec![0.0f64; N / 2 + 1];
    let mut yin = crate::analysis::pitch::Yin::new(ANALYSIS_RATE, 60.0, 1000.0);
    let yin_len = yin.frame_len();
    let mut frames = 0usize;
    let mut end = N;
    while end <= audio.len() {
        let chunk = &audio[end - N..end];
        if yin.estimate(&chunk[N - yin_len.min(N)..]).f0.is_some() {
            for (f, (x, w)) in frame.iter_mut().zip(chunk.iter().zip(&window)) {
                *f = x * w;
            }
            if fft.process(&mut frame, &mut spectrum).is_ok() {
                for (p, c) in power.iter_mut().zip(&spectrum) {
                    *p += f64::from(c.re * c.re + c.im * c.im);
                }
                frames += 1;
            }
        }
        end += HOP;
    }
    if frames == 0 {
        return Ok(None);
    }
    let bin_hz = ANALYSIS_RATE as f32 / N as f32;
    let top_hz = carried_top_hz(rate, ANALYSIS_RATE);
    let bands = band_bins(bin_hz, N / 2)
        .iter()
        .map(|&(first, last)| (10.0 * (band_mean(&power[first..=last]) / frames as f64 + 1e-12).log10()) as f32)
        .collect();
    Ok(Some((bands, top_hz)))
}

/// The highest frequency a recording at `rate` tells once resampled to `analysed_at`: the lower Nyquist frequency,
/// a little under (resampling rolls off there).
pub(crate) fn carried_top_hz(rate: u32, analysed_at: u32) -> f32 {
    (rate.min(analysed_at) as f32 / 2.0) * 0.92
}

/// The FFT bins (first, last, inclusive) each long-term-spectrum band averages, for bins `bin_hz` apart up to
/// `max_bin`: the band's centre a half band either way ([`band_hz`]), at least one bin.
pub(crate) fn band_bins(bin_hz: f32, max_bin: usize) -> [(usize, usize); BANDS] {
    let ratio = (BAND_HIGH_HZ / BAND_LOW_HZ).powf(0.5 / (BANDS - 1) as f32);
    std::array::from_fn(|b| {
        let (lo, hi) = (band_hz(b) / ratio, band_hz(b) * ratio);
        let first = ((lo / bin_hz).floor() as usize).min(max_bin);
        (first, ((hi / bin_hz).ceil() as usize).clamp(first, max_bin))
    })
}

/// The level of a band from its bins' powers: their sum over one less than their count (at least one), as profiles
/// have always stored it (a stored spectrum and a new measurement must agree band by band).
pub(crate) fn band_mean(bins: &[f64]) -> f64 {
    bins.iter().sum::<f64>() / bins.len().saturating_sub(1).max(1) as f64
}

/// The equaliser that moves `from` (a long-term spectrum) onto `to`: their difference with the overall level
/// removed, smoothed over neighbouring bands, limited to ±[`MAX_EQ_DB`], and flat above `top_hz` (what the
/// reference recording cannot tell).
pub fn equaliser(from: &[f32], to: &[f32], top_hz: f32) -> Vec<f32> {
    let mut eq = [0.0; BANDS];
    equaliser_into(from, to, top_hz, &mut eq);
    eq.to_vec()
}

/// [`equaliser`] into `eq`, allocating nothing (the live converter designs one on its worker).
pub(crate) fn equaliser_into(from: &[f32], to: &[f32], top_hz: f32, eq: &mut [f32; BANDS]) {
    let usable = |b: usize| band_hz(b) <= top_hz && b < from.len() && b < to.len();
    let diff = |b: usize| if usable(b) { to[b] - from[b] } else { 0.0 };
    let count = (0..BANDS).filter(|&b| usable(b)).count().max(1);
    let mean = (0..BANDS).filter(|&b| usable(b)).map(diff).sum::<f32>() / count as f32;
    for (b, slot) in eq.iter_mut().enumerate() {
        *slot = if usable(b) {
            let near = (b.saturating_sub(2)..=(b + 2).min(BANDS - 1)).filter(|&n| usable(n));
            let (sum, n) = near.fold((0.0f32, 0usize), |(sum, n), k| (sum + diff(k) - mean, n + 1));
            (sum / n.max(1) as f32).clamp(-MAX_EQ_DB, MAX_EQ_DB)
        } else {
            0.0
        };
    }
}

/// Apply a band equaliser (dB per [`band_hz`] band) to `samples` at `rate`: a linear-phase FIR designed by frequency
/// sampling, applied by FFT convolution; the output is aligned with the input and as long. Allocates.
pub fn apply_equaliser(samples: &[f32], rate: u32, eq_db: &[f32]) -> Vec<f32> {
    if eq_db.iter().all(|g| g.abs() < 0.01) || samples.is_empty() {
        return samples.to_vec();
    }
    const TAPS: usize = 1023;
    const N: usize = 4096;
    let gain_at = |hz: f32| -> f32 {
        let pos = ((hz.max(BAND_LOW_HZ) / BAND_LOW_HZ).ln() / (BAND_HIGH_HZ / BAND_LOW_HZ).ln()) * (BANDS - 1) as f32;
        let i = (pos.floor() as usize).min(BANDS - 1);
        let frac = (pos - i as f32).clamp(0.0, 1.0);
        let db = if i + 1 < BANDS { eq_db[i] * (1.0 - frac) + eq_db[i + 1] * frac } else { eq_db[BANDS - 1] };
        10f32.powf(db / 20.0)
    };
    let mut planner = RealFftPlanner::<f32>::new();
    let (forward, inverse) = (planner.plan_fft_forward(N), planner.plan_fft_inverse(N));
    // The zero-phase response, into a windowed linear-phase kernel of TAPS taps.
    let mut response = inverse.make_input_vec();
    for (k, c) in response.iter_mut().enumerate() {
        *c = realfft::num_complex::Complex::new(gain_at(k as f32 * rate as f32 / N as f32), 0.0);
    }
    let mut impulse = inverse.make_output_vec();
    if inverse.process(&mut response, &mut impulse).is_err() {
        return samples.to_vec();
    }
    let half = TAPS / 2;
    let mut kernel = vec![0.0f32; N];
    for (t, slot) in kernel.iter_mut().enumerate().take(TAPS) {
        let lag = (t as isize - half as isize).rem_euclid(N as isize) as usize;
        let w = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * t as f32 / (TAPS - 1) as f32).cos();
        *slot = impulse[lag] / N as f32 * w;
    }
    let mut kernel_spectrum = forward.make_output_vec();
    if forward.process(&mut kernel, &mut kernel_spectrum).is_err() {
        return samples.to_vec();
    }
    // Overlap-add in blocks of N - TAPS + 1.
    let block = N - TAPS + 1;
    let mut out = vec![0.0f32; samples.len() + TAPS];
    let (mut buf, mut spec) = (forward.make_input_vec(), forward.make_output_vec());
    let mut back = inverse.make_output_vec();
    for start in (0..samples.len()).step_by(block) {
        let chunk = &samples[start..(start + block).min(samples.len())];
        buf.fill(0.0);
        buf[..chunk.len()].copy_from_slice(chunk);
        if forward.process(&mut buf, &mut spec).is_err() {
            return samples.to_vec();
        }
        for (s, k) in spec.iter_mut().zip(&kernel_spectrum) {
            *s *= *k;
        }
        if inverse.process(&mut spec, &mut back).is_err() {
            return samples.to_vec();
        }
        for (i, v) in back.iter().enumerate() {
            if let Some(o) = out.get_mut(start + i) {
                *o += v / N as f32;
            }
        }
    }
    out.drain(..half);
    out.truncate(samples.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_equaliser_changes_nothing_and_a_cut_cuts() {
        let input = crate::analysis::synthetic::sine(1000.0, 22_050, 1.0, 0.3);
        assert_eq!(apply_equaliser(&input, 22_050, &[0.0; BANDS]), input);
        let cut = apply_equaliser(&input, 22_050, &[-12.0; BANDS]);
        let rms = |x: &[f32]| (x[2000..20_000].iter().map(|v| v * v).sum::<f32>() / 18_000.0).sqrt();
        let ratio_db = 20.0 * (rms(&cut) / rms(&input)).log10();
        assert!((ratio_db + 12.0).abs() < 0.5, "a -12 dB equaliser gave {ratio_db:.2} dB");
        assert_eq!(cut.len(), input.len());
        // Linear phase, delay compensated: the waveform lines up.
        let lag0: f32 = cut[5000..6000].iter().zip(&input[5000..6000]).map(|(a, b)| a * b).sum();
        let lag1: f32 = cut[5000..6000].iter().zip(&input[5001..6001]).map(|(a, b)| a * b).sum();
        assert!(lag0 > lag1);
    }

    #[test]
    fn the_equaliser_follows_the_shape_not_the_level_and_stays_flat_above_the_reference() {
        let from = vec![0.0; BANDS];
        let mut to: Vec<f32> = (0..BANDS).map(|b| if band_hz(b) < 1000.0 { 6.0 } else { 0.0 }).collect();
        to.iter_mut().for_each(|v| *v += 20.0); // a louder reference: the level is not copied
        let eq = equaliser(&from, &to, 4000.0);
        assert!(eq[0] > 2.0 && eq[BANDS / 2] < eq[0]);
        assert!(eq.iter().all(|g| g.abs() <= MAX_EQ_DB));
        assert!((0..BANDS).filter(|&b| band_hz(b) > 4000.0).all(|b| eq[b] == 0.0));
    }

    #[test]
    fn breathiness_is_told_only_by_clean_recordings_and_only_in_the_bands_they_carry() {
        let rate = 16_000;
        // Speech with pauses: half a second voiced, a quarter second of near silence, four times.
        let voiced = crate::analysis::synthetic::voice(140.0, &[700.0, 1200.0, 2600.0], rate, 0.5);
        let mut clean = Vec::new();
        for _ in 0..4 {
            clean.extend_from_slice(&voiced);
            clean.extend(std::iter::repeat_n(0.0, rate as usize / 4));
        }
        let hiss = crate::analysis::synthetic::noise(11, clean.len());
        let quiet_hiss: Vec<f32> = clean.iter().zip(&hiss).map(|(v, n)| v + n * 1e-4).collect();
        let loud_hiss: Vec<f32> = clean.iter().zip(&hiss).map(|(v, n)| v + n * 0.05).collect();
        assert!(signal_to_noise_db(&quiet_hiss, rate) > 50.0);
        assert!(signal_to_noise_db(&loud_hiss, rate) < 30.0, "{}", signal_to_noise_db(&loud_hiss, rate));
        let told = |x: &[f32], top_hz: f32| measurable_breathiness(x, rate, &Analysis::of(x, rate).unwrap(), top_hz);
        let measured = told(&quiet_hiss, 7360.0).expect("a clean recording tells its breathiness");
        assert!(measured.iter().all(Option::is_some), "{measured:?}");
        assert!(told(&loud_hiss, 7360.0).is_none(), "the hiss would read as breath");
        // A telephone band (under 4 kHz) tells nothing of 4-8 kHz.
        let narrow = told(&quiet_hiss, 3680.0).unwrap();
        assert!(narrow[3].is_none() && narrow[2].is_some(), "{narrow:?}");
        // The change between two voices is bounded and 0 where either is unknown.
        let change =
            breath_change(&[Some(-20.0), Some(-10.0), None, Some(-5.0)], &[Some(-5.0), Some(-12.0), Some(0.0), None]);
        assert_eq!(change, [MAX_BREATH_DB, -2.0, 0.0, 0.0]);
    }

    #[test]
    fn pitch_statistics_find_the_median_and_a_steady_tone_has_no_spread() {
        let stats = pitch_stats(&crate::analysis::synthetic::sine(200.0, 16_000, 1.0, 0.3), 16_000).unwrap();
        assert!((stats.median_hz - 200.0).abs() < 2.0, "{stats:?}");
        assert!(stats.log_std < 0.02, "{stats:?}");
        assert!(pitch_stats(&vec![0.0; 16_000], 16_000).is_none());
    }
}
