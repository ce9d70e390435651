//! Retry policy: exponential backoff with a cap, jitter, and a maximum number
//! of attempts per step. The jitter is derived from run, step and attempt, so a
//! given failure always waits the same time (tests are deterministic) while
//! different runs failing together spread out.

use std::time::Duration;
use uuid::Uuid;

/// Default executions of a step before the run fails (1 + 4 retries).
pub const MAX_ATTEMPTS_DEFAULT: u32 = 5;
/// Highest `max_attempts` a policy may set.
pub const MAX_ATTEMPTS_CAP: u32 = 20;
/// Default wait after the first failure.
pub const INITIAL_BACKOFF_DEFAULT: Duration = Duration::from_secs(1);
/// Default longest wait between attempts.
pub const MAX_BACKOFF_DEFAULT: Duration = Duration::from_secs(300);
/// Longest wait any policy may set (a `RetryAfter` is capped by it too).
pub const BACKOFF_CAP: Duration = Duration::from_secs(3_600);
/// Default share of the wait added at random (0.2: up to +20 %).
pub const JITTER_DEFAULT: f64 = 0.2;

/// How a step is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Executions of the step at most (1 = no retry).
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// Longest wait.
    pub max_backoff: Duration,
    /// Up to this share of the wait is added (0 ..= 1).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: MAX_ATTEMPTS_DEFAULT,
            initial_backoff: INITIAL_BACKOFF_DEFAULT,
            max_backoff: MAX_BACKOFF_DEFAULT,
            jitter: JITTER_DEFAULT,
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_attempts` (capped at [`MAX_ATTEMPTS_CAP`]).
    pub fn attempts(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.clamp(1, MAX_ATTEMPTS_CAP),
            ..RetryPolicy::default()
        }
    }

    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial.min(BACKOFF_CAP);
        self.max_backoff = max.clamp(self.initial_backoff, BACKOFF_CAP);
        self
    }

    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// The wait before execution `failed + 1`, after `failed` failures (≥ 1):
    /// `initial × 2^(failed−1)`, capped, plus jitter.
    pub fn backoff(&self, failed: u32, run_id: Uuid, step: &str) -> Duration {
        let exponent = failed.saturating_sub(1).min(30);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff)
            .min(BACKOFF_CAP);
        let share = unit_interval(mix(run_id, step, failed)) * self.jitter;
        base + base.mul_f64(share)
    }
}

/// A 64-bit mix of run, step and attempt (splitmix64 finaliser).
fn mix(run_id: Uuid, step: &str, attempt: u32) -> u64 {
    let (high, low) = run_id.as_u64_pair();
    let mut x = high ^ low.rotate_left(17) ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for byte in step.bytes() {
        x = (x ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `[0, 1)` from 64 random bits.
fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jitter_stays_in_range() {
        let policy = RetryPolicy::attempts(10)
            .with_backoff(Duration::from_secs(1), Duration::from_secs(10))
            .with_jitter(0.5);
        let run = Uuid::now_v7();
        for (failed, base) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)] {
            let wait = policy.backoff(failed, run, "step");
            let base = Duration::from_secs(base);
            assert!(
                wait >= base && wait <= base.mul_f64(1.5),
                "{failed}: {wait:?}"
            );
            assert_eq!(wait, policy.backoff(failed, run, "step"), "deterministic");
        }
        let no_jitter = policy.with_jitter(0.0);
        assert_eq!(no_jitter.backoff(3, run, "s"), Duration::from_secs(4));
        // Different runs spread out.
        let waits: std::collections::HashSet<Duration> = (0..20)
            .map(|_| policy.backoff(2, Uuid::now_v7(), "step"))
            .collect();
        assert!(waits.len() > 10);
    }
}
