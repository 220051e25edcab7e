//! Retry policy: how many attempts a job gets and how long it waits between them.
//!
//! The default is [`DEFAULT_MAX_ATTEMPTS`] attempts with exponential backoff
//! `min(10 s * 2^(n-1), 1 h)`, each delay scattered by ±25 % of jitter so that
//! jobs failing together do not retry together. Ten attempts spread over
//! about 85 minutes: long enough to ride out a restart or a short outage of
//! whatever the job talks to, short enough that a broken job is `failed` (and
//! visible) the same day.

use std::time::Duration;

/// Attempts a job gets unless its attribute or its enqueue says otherwise (Hangfire's default).
pub const DEFAULT_MAX_ATTEMPTS: i32 = 10;

/// How long to wait before attempt `n + 1` after attempt `n` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Backoff {
    /// `min(base * 2^(attempt-1), max)`, each delay multiplied by a random
    /// factor in `1 ± jitter_per_mille / 1000`.
    Exponential {
        /// The first delay.
        base: Duration,
        /// The longest delay.
        max: Duration,
        /// The scatter in thousandths of the delay: 250 is ±25 % (values
        /// above 1000 count as 1000).
        jitter_per_mille: u16,
    },
    /// Always the same delay.
    Fixed(Duration),
}

impl Backoff {
    /// Exponential backoff from `base`, capped at `max`, with ±25 % jitter.
    pub const fn exponential(base: Duration, max: Duration) -> Self {
        Backoff::Exponential {
            base,
            max,
            jitter_per_mille: 250,
        }
    }

    /// The same delay every time, without jitter.
    pub const fn fixed(delay: Duration) -> Self {
        Backoff::Fixed(delay)
    }

    /// The delay after attempt `attempt` (1-based) failed.
    pub fn delay(&self, attempt: i32) -> Duration {
        match *self {
            Backoff::Fixed(delay) => delay,
            Backoff::Exponential {
                base,
                max,
                jitter_per_mille,
            } => {
                let exponent = attempt.saturating_sub(1).clamp(0, 30) as u32;
                let raw = base.saturating_mul(1u32 << exponent).min(max);
                let jitter = f64::from(jitter_per_mille.min(1000)) / 1000.0;
                let factor = 1.0 + jitter * (fastrand::f64() * 2.0 - 1.0);
                raw.mul_f64(factor).min(max)
            }
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::exponential(Duration::from_secs(10), Duration::from_secs(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_within_jitter_and_stops_at_max() {
        let backoff = Backoff::default();
        for attempt in 1..=12 {
            let expected = (10.0 * 2f64.powi(attempt - 1)).min(3600.0);
            let got = backoff.delay(attempt).as_secs_f64();
            assert!(
                got >= expected * 0.75 - 1e-9,
                "attempt {attempt}: {got} < {expected}"
            );
            assert!(
                got <= (expected * 1.25).min(3600.0) + 1e-9,
                "attempt {attempt}: {got}"
            );
        }
    }

    #[test]
    fn fixed_is_constant() {
        let backoff = Backoff::fixed(Duration::from_millis(250));
        assert_eq!(backoff.delay(1), Duration::from_millis(250));
        assert_eq!(backoff.delay(9), Duration::from_millis(250));
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60));
        assert!(backoff.delay(i32::MAX) <= Duration::from_secs(60));
        assert!(backoff.delay(0) <= Duration::from_millis(1250));
    }
}
