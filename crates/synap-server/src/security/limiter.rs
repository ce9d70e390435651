//! A small in-memory fixed-window rate limiter, keyed by client IP or user id.
//!
//! Each key gets a window that starts at its first request and lasts
//! `RateLimit::window`; at most `RateLimit::requests` requests pass inside it. The
//! number of keys tracked is bounded ([`RATE_LIMIT_KEYS_MAX`]): when the table is
//! full, expired windows are dropped first, then the oldest windows (the ones
//! closest to their reset anyway), a batch at a time so that the sweep is paid
//! once per [`EVICTION_BATCH_DIVISOR`]th of the table rather than on every
//! request. Time is passed in (milliseconds of the injected clock), so tests move
//! it by hand.

use crate::config::RateLimit;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Most keys (client IPs or users) one limiter remembers at once.
pub const RATE_LIMIT_KEYS_MAX: usize = 100_000;

/// When the table is full of live windows, this fraction of it (the oldest
/// windows) is evicted in one sweep: 1/8.
pub const EVICTION_BATCH_DIVISOR: usize = 8;

/// What the limiter decided for one request, with the figures for the
/// `RateLimit` / `RateLimit-Policy` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests per window.
    pub limit: u32,
    /// Requests left in the current window after this one.
    pub remaining: u32,
    /// Whole seconds until the window resets (at least 1).
    pub reset_seconds: u64,
    /// The window's length in seconds.
    pub window_seconds: u64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: i64,
    count: u32,
}

/// A fixed-window limiter over keys of type `K`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: RateLimit,
    window_ms: i64,
    keys_max: usize,
    windows: Mutex<HashMap<K, Window>>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// A limiter for `limit` tracking at most [`RATE_LIMIT_KEYS_MAX`] keys.
    pub fn new(limit: RateLimit) -> Self {
        Self::with_keys_max(limit, RATE_LIMIT_KEYS_MAX)
    }

    /// A limiter tracking at most `keys_max` keys (at least 1).
    pub fn with_keys_max(limit: RateLimit, keys_max: usize) -> Self {
        RateLimiter {
            limit,
            window_ms: i64::try_from(limit.window.as_millis())
                .unwrap_or(i64::MAX)
                .max(1),
            keys_max: keys_max.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Counts one request for `key` at `now_ms` and says whether it may pass.
    /// Refused requests do not count further.
    pub fn hit(&self, key: K, now_ms: i64) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !windows.contains_key(&key) && windows.len() >= self.keys_max {
            self.evict(&mut windows, now_ms);
        }
        let window = windows.entry(key).or_insert(Window {
            start_ms: now_ms,
            count: 0,
        });
        if self.expired(window, now_ms) {
            *window = Window {
                start_ms: now_ms,
                count: 0,
            };
        }
        let allowed = window.count < self.limit.requests;
        if allowed {
            window.count += 1;
        }
        // A clock that went backwards counts as "no time has passed".
        let elapsed_ms = now_ms.saturating_sub(window.start_ms).max(0);
        let reset_ms = self.window_ms.saturating_sub(elapsed_ms).max(1);
        Decision {
            allowed,
            limit: self.limit.requests,
            remaining: self.limit.requests - window.count,
            reset_seconds: u64::try_from(reset_ms).unwrap_or(1).div_ceil(1000),
            window_seconds: self.limit.window.as_secs(),
        }
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn expired(&self, window: &Window, now_ms: i64) -> bool {
        now_ms.saturating_sub(window.start_ms) >= self.window_ms
    }

    /// Makes room for one more key: expired windows go first; if none has
    /// expired, the oldest windows go, a batch at a time.
    fn evict(&self, windows: &mut HashMap<K, Window>, now_ms: i64) {
        windows.retain(|_, window| !self.expired(window, now_ms));
        if windows.len() < self.keys_max {
            return;
        }
        let batch = (self.keys_max / EVICTION_BATCH_DIVISOR).max(1);
        let mut by_age: Vec<(i64, K)> = windows.iter().map(|(k, w)| (w.start_ms, *k)).collect();
        by_age.select_nth_unstable_by_key(batch - 1, |(start, _)| *start);
        for (_, key) in &by_age[..batch] {
            windows.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limit(requests: u32, seconds: u64) -> RateLimit {
        RateLimit {
            requests,
            window: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn counts_down_then_refuses_then_resets() {
        let limiter = RateLimiter::new(limit(3, 60));
        let first = limiter.hit(1u32, 0);
        assert_eq!(
            first,
            Decision {
                allowed: true,
                limit: 3,
                remaining: 2,
                reset_seconds: 60,
                window_seconds: 60
            }
        );
        assert_eq!(limiter.hit(1, 1_000).remaining, 1);
        assert_eq!(limiter.hit(1, 2_000).remaining, 0);
        let refused = limiter.hit(1, 30_500);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_seconds, 30, "rounded up to whole seconds");
        // Another key has its own budget.
        assert!(limiter.hit(2, 30_500).allowed);
        // The window passes.
        let again = limiter.hit(1, 60_000);
        assert!(again.allowed);
        assert_eq!(again.remaining, 2);
    }

    #[test]
    fn a_clock_going_backwards_does_not_reset_or_panic() {
        let limiter = RateLimiter::new(limit(1, 60));
        assert!(limiter.hit(1u32, 10_000).allowed);
        let refused = limiter.hit(1, 5_000);
        assert!(!refused.allowed);
        assert_eq!(refused.reset_seconds, 60);
    }

    #[test]
    fn the_table_is_bounded_and_drops_expired_windows_first() {
        let limiter = RateLimiter::with_keys_max(limit(1, 60), 16);
        for key in 0..16u32 {
            limiter.hit(key, 0);
        }
        assert_eq!(limiter.tracked(), 16);
        // Key 100 arrives after every window expired: all are swept.
        limiter.hit(100, 60_000);
        assert_eq!(limiter.tracked(), 1);

        // A table full of live windows: the oldest batch goes, the newest stay.
        for key in 0..15u32 {
            limiter.hit(key, 61_000 + i64::from(key));
        }
        assert_eq!(limiter.tracked(), 16);
        limiter.hit(1_000, 62_000);
        assert!(limiter.tracked() <= 16);
        assert!(
            !limiter.hit(14, 62_000).allowed,
            "a recent window survives eviction"
        );
        for key in 0..100_000u32 {
            limiter.hit(key, 63_000);
        }
        assert!(limiter.tracked() <= 16);
    }
}
