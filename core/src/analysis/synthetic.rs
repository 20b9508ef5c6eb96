//! Synthetic voices with known pitch and formants: a pulse train through two-pole resonators (the classic
//! source-filter vowel). Used by tests and benchmarks, where the right answer must be known exactly.

/// A vowel at a constant `f0` with resonances at `formants` (bandwidth 8% of each), peak-normalised to 0.5.
pub fn voice(f0: f32, formants: &[f32], sample_rate_hz: u32, seconds: f32) -> Vec<f32> {
    voice_with(|_| f0, formants, sample_rate_hz, seconds)
}

/// The same with the pitch following `f0_at(time_in_seconds)`.
pub fn voice_with(f0_at: impl Fn(f32) -> f32, formants: &[f32], sample_rate_hz: u32, seconds: f32) -> Vec<f32> {
    let rate = sample_rate_hz as f32;
    let n = (rate * seconds) as usize;
    let mut signal = vec![0.0f32; n];
    let mut t = 0.0f32;
    while (t as usize) < n {
        signal[t as usize] = 1.0;
        t += rate / f0_at(t / rate);
    }
    for &fc in formants {
        let bandwidth = fc * 0.08;
        let r = (-std::f32::consts::PI * bandwidth / rate).exp();
        let theta = 2.0 * std::f32::consts::PI * fc / rate;
        let (a1, a2) = (2.0 * r * theta.cos(), -r * r);
        let (mut y1, mut y2) = (0.0f32, 0.0f32);
        for s in signal.iter_mut() {
            let y = *s + a1 * y1 + a2 * y2;
            y2 = y1;
            y1 = y;
            *s = y;
        }
    }
    let peak = signal.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(1e-9);
    signal.iter().map(|s| s / peak * 0.5).collect()
}

/// `len` samples of a harmonic tone at `f0`: harmonics 1 to `count`, harmonic `h` weighted `weight(h)`, times
/// `gain`.
pub fn harmonic_tone(
    f0: f32,
    count: usize,
    weight: impl Fn(f32) -> f32,
    sample_rate_hz: u32,
    len: usize,
    gain: f32,
) -> Vec<f32> {
    (0..len)
        .map(|i| {
            let t = i as f32 / sample_rate_hz as f32;
            (1..=count).map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() * weight(h as f32)).sum::<f32>()
                * gain
        })
        .collect()
}

/// `len` samples of white noise, uniform in -0.5..0.5, from a linear congruential generator seeded with `seed`
/// (the same seed gives the same noise).
pub fn noise(seed: u32, len: usize) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

/// A sine at `hz` with amplitude `amplitude`.
pub fn sine(hz: f32, sample_rate_hz: u32, seconds: f32, amplitude: f32) -> Vec<f32> {
    (0..(sample_rate_hz as f32 * seconds) as usize)
        .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / sample_rate_hz as f32).sin() * amplitude)
        .collect()
}
