//! Value parsers: every number and name a flag takes is checked here, so a bad value is a one-line usage error
//! (exit 2) naming the flag, never a panic further in.

use demod_voice_core::convert::Engine;
use demod_voice_core::limits::Limit;

/// A value parser for a number inside `limit` (NaN, infinities and out-of-range values are usage errors).
pub(super) fn within(limit: Limit) -> impl Fn(&str) -> Result<f32, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let value: f32 = text.trim().parse().map_err(|_| format!("`{text}` is not a number"))?;
        limit.check(value).map_err(|_| format!("{text} is outside {}..{}", limit.min, limit.max))
    }
}

/// A value parser for a duration in seconds: finite, above 0, at most a week (NaN, infinities, zero, negative and
/// absurd values are usage errors, never a panic in `Duration`).
pub(super) fn seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if value.is_finite() && value > 0.0 && value <= 604_800.0 {
        Ok(value)
    } else {
        Err(format!("{text} is outside 0..604800 seconds"))
    }
}

/// A value parser for a worker count: 1-256 (more threads than that only waste memory on any machine).
pub(super) fn workers(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!("{text} is not a worker count of 1-256")),
    }
}

/// A value parser for an engine name (the list comes from [`Engine`]).
pub(super) fn engine(text: &str) -> Result<Engine, String> {
    text.parse()
}
