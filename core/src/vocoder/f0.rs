//! The vocoder's pitch contour: YIN on windows centred on each frame, then cleaned for resynthesis (an octave slip
//! or a one-frame voicing blip is audible once the contour drives the pulses).

use crate::analysis::pitch::Yin;

/// Frames a pitch may sit from the local median's octave before it is folded back, in octaves.
const OCTAVE_SLIP: f32 = 0.75;
/// Frames each side of a frame that make its local median.
const MEDIAN_REACH: usize = 20;
/// Voiced runs shorter than this many frames are taken as unvoiced.
const MIN_VOICED_RUN: usize = 4;
/// Unvoiced gaps of at most this many frames inside voicing are bridged.
const MAX_GAP: usize = 2;

/// Pitch per frame (0 = unvoiced) for frames every `hop` samples from 0, the last at or before the end.
pub(crate) fn contour(samples: &[f32], rate: u32, hop: usize) -> Vec<f32> {
    if samples.is_empty() {
        return Vec::new();
    }
    let mut yin = Yin::new(rate, super::F0_FLOOR, super::F0_CEIL);
    let len = yin.frame_len();
    let half = len / 2;
    let mut padded = vec![0.0f32; samples.len() + len];
    padded[half..half + samples.len()].copy_from_slice(samples);
    let frames = (samples.len() - 1) / hop + 1;
    let mut f0: Vec<f32> = (0..frames)
        .map(|i| {
            // Frame i is centred on sample i * hop: padded[i * hop .. i * hop + len].
            let start = i * hop;
            yin.estimate(&padded[start..start + len]).f0.unwrap_or(0.0)
        })
        .collect();
    fold_octaves(&mut f0);
    drop_short_runs(&mut f0);
    bridge_gaps(&mut f0);
    median3(&mut f0);
    f0
}

/// Move voiced frames more than [`OCTAVE_SLIP`] octaves from the median of their neighbourhood by octaves toward it.
fn fold_octaves(f0: &mut [f32]) {
    let original = f0.to_vec();
    for (i, f) in f0.iter_mut().enumerate() {
        if *f <= 0.0 {
            continue;
        }
        let mut near: Vec<f32> = original[i.saturating_sub(MEDIAN_REACH)..(i + MEDIAN_REACH + 1).min(original.len())]
            .iter()
            .copied()
            .filter(|v| *v > 0.0)
            .collect();
        near.sort_by(f32::total_cmp);
        let median = near[near.len() / 2];
        let limit = 2f32.powf(OCTAVE_SLIP);
        // Both positive, so each loop ends.
        while *f > median * limit {
            *f /= 2.0;
        }
        while *f < median / limit {
            *f *= 2.0;
        }
    }
}

/// Voiced runs under [`MIN_VOICED_RUN`] frames become unvoiced.
fn drop_short_runs(f0: &mut [f32]) {
    let mut i = 0;
    while i < f0.len() {
        if f0[i] <= 0.0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < f0.len() && f0[i] > 0.0 {
            i += 1;
        }
        if i - start < MIN_VOICED_RUN {
            f0[start..i].fill(0.0);
        }
    }
}

/// Unvoiced gaps of up to [`MAX_GAP`] frames between voiced frames get the log-linear interpolation of their ends.
fn bridge_gaps(f0: &mut [f32]) {
    let mut i = 1;
    while i < f0.len() {
        if f0[i] > 0.0 || f0[i - 1] <= 0.0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < f0.len() && f0[i] <= 0.0 {
            i += 1;
        }
        if i < f0.len() && i - start <= MAX_GAP {
            let (a, b) = (f0[start - 1].ln(), f0[i].ln());
            let span = (i - start + 1) as f32;
            for (k, f) in f0[start..i].iter_mut().enumerate() {
                *f = (a + (b - a) * (k + 1) as f32 / span).exp();
            }
        }
    }
}

/// A three-frame median inside voiced runs (a single-frame jump is a tracking error, not intonation).
fn median3(f0: &mut [f32]) {
    let original = f0.to_vec();
    for i in 1..original.len().saturating_sub(1) {
        let (a, b, c) = (original[i - 1], original[i], original[i + 1]);
        if a > 0.0 && b > 0.0 && c > 0.0 {
            f0[i] = a.max(b).min(a.min(b).max(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_folds_slips_drops_blips_and_bridges_gaps() {
        let mut f0 = vec![100.0; 30];
        f0[10] = 200.0; // an octave slip
        f0[20] = 0.0; // a one-frame dropout
        f0.extend([0.0; 10]);
        f0.extend([150.0, 150.0]); // a blip
        f0.extend([0.0; 10]);
        fold_octaves(&mut f0);
        drop_short_runs(&mut f0);
        bridge_gaps(&mut f0);
        median3(&mut f0);
        assert!((f0[10] - 100.0).abs() < 1e-3);
        assert!((f0[20] - 100.0).abs() < 1e-3);
        assert!(f0[40..].iter().all(|f| *f == 0.0));
        // Median of three: a, b, c = 1, 5, 3 -> 3.
        let mut three = vec![1.0, 5.0, 3.0];
        median3(&mut three);
        assert_eq!(three[1], 3.0);
    }
}
