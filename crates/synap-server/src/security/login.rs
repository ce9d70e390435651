//! Login brute-force protection, per account email.
//!
//! After `login_failures_max` failed logins for one email within
//! `login_lockout`, that email is locked for `login_lockout`: every attempt is a
//! 429 `rate_limited` with `Retry-After`, before any password is checked. A
//! successful login clears the count. Counting is by the email as typed
//! (trimmed, lower-cased), whether or not an account has it, so the answer never
//! tells which emails exist. The per-IP limit on `/v1/auth/*` caps how many
//! emails one client can try; this caps how many passwords one account can be
//! tried with, from any number of clients.
//!
//! The login handler uses it like this (`LoginGuard` is an extractor):
//!
//! ```text
//! async fn login(guard: LoginGuard, State(state): State<AppState>, ApiJson(body): ApiJson<Login>) -> ApiResult<…> {
//!     let attempt = guard.check(&body.email)?;        // 429 while locked out
//!     match verify(&state, &body).await? {
//!         Some(user) => { attempt.succeeded(); … }     // clears the count
//!         None => { attempt.failed(); return Err(ApiError::unauthorized(…)); }
//!     }
//! }
//! ```
//!
//! `guard.record_failure(email)` / `guard.record_success(email)` do the same
//! without the attempt value. The attempt value is better: between `check` and
//! its outcome it holds a slot, so parallel guesses cannot all pass `check`
//! before the first failure is counted. An attempt dropped without an outcome
//! (the handler failed for another reason) counts as nothing.
//!
//! The table is bounded ([`LOGIN_ACCOUNTS_TRACKED_MAX`]): stale entries go first,
//! then entries that are not locked, oldest first.

use crate::config::ServerConfig;
use crate::error::ApiError;
use axum::http::{HeaderValue, StatusCode, header};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synap_store::Clock;

/// Most account emails the guard remembers at once.
pub const LOGIN_ACCOUNTS_TRACKED_MAX: usize = 100_000;

/// When the table is full of live entries, this fraction of it is evicted in
/// one sweep: 1/8.
const EVICTION_BATCH_DIVISOR: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
struct Account {
    /// When the first failure of the current window happened.
    window_start_ms: i64,
    failures: u32,
    /// Attempts that passed `check` and have no outcome yet.
    in_flight: u32,
    /// Set when `failures` reached the maximum.
    locked_until_ms: Option<i64>,
}

#[derive(Debug)]
struct Inner {
    /// 0 turns the guard off.
    failures_max: u32,
    lockout_ms: i64,
    keys_max: usize,
    clock: Arc<dyn Clock>,
    accounts: Mutex<HashMap<String, Account>>,
}

/// Counts failed logins per email and locks an email out after too many.
/// Cheap to clone; clones share the counts.
#[derive(Debug, Clone)]
pub struct LoginGuard {
    inner: Arc<Inner>,
}

/// One login attempt that passed [`LoginGuard::check`]. Say how it ended with
/// [`LoginAttempt::failed`] or [`LoginAttempt::succeeded`].
#[derive(Debug)]
pub struct LoginAttempt {
    guard: LoginGuard,
    key: String,
    settled: bool,
}

impl LoginGuard {
    /// `failures_max` failures within `lockout` lock an email for `lockout`;
    /// `failures_max == 0` turns the guard off.
    pub fn new(failures_max: u32, lockout: Duration, clock: Arc<dyn Clock>) -> Self {
        Self::with_keys_max(failures_max, lockout, clock, LOGIN_ACCOUNTS_TRACKED_MAX)
    }

    /// The guard the configuration asks for.
    pub fn from_config(config: &ServerConfig, clock: Arc<dyn Clock>) -> Self {
        Self::new(config.login_failures_max, config.login_lockout, clock)
    }

    /// A guard remembering at most `keys_max` emails (at least 1).
    pub fn with_keys_max(
        failures_max: u32,
        lockout: Duration,
        clock: Arc<dyn Clock>,
        keys_max: usize,
    ) -> Self {
        LoginGuard {
            inner: Arc::new(Inner {
                failures_max,
                lockout_ms: i64::try_from(lockout.as_millis())
                    .unwrap_or(i64::MAX)
                    .max(1),
                keys_max: keys_max.max(1),
                clock,
                accounts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// 429 `rate_limited` (with `Retry-After`) while `email` is locked out;
    /// otherwise an attempt to settle once the password was checked.
    // `ApiError` is the crate's one error type; its size is `error.rs`'s concern.
    pub fn check(&self, email: &str) -> Result<LoginAttempt, ApiError> {
        let key = normalize(email);
        if self.inner.failures_max == 0 {
            return Ok(self.attempt(key));
        }
        let now = self.now_ms();
        let mut accounts = self.lock();
        if !accounts.contains_key(&key) && accounts.len() >= self.inner.keys_max {
            self.evict(&mut accounts, now);
        }
        let account = accounts.entry(key.clone()).or_default();
        self.refresh(account, now);
        if let Some(until) = account.locked_until_ms {
            return Err(locked_out(until - now));
        }
        if account.failures + account.in_flight >= self.inner.failures_max {
            // Earlier attempts are still being checked and could lock the
            // account: wait for them.
            return Err(locked_out(1_000));
        }
        account.in_flight += 1;
        drop(accounts);
        Ok(self.attempt(key))
    }

    /// Counts a failed login for `email` (for handlers not using [`LoginAttempt`]).
    pub fn record_failure(&self, email: &str) {
        self.fail(&normalize(email), false);
    }

    /// Clears the count for `email` after a successful login.
    pub fn record_success(&self, email: &str) {
        self.succeed(&normalize(email), false);
    }

    /// Whether `email` is locked out now.
    pub fn is_locked(&self, email: &str) -> bool {
        let now = self.now_ms();
        let mut accounts = self.lock();
        match accounts.get_mut(&normalize(email)) {
            Some(account) => {
                self.refresh(account, now);
                account.locked_until_ms.is_some()
            }
            None => false,
        }
    }

    /// Emails currently tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn attempt(&self, key: String) -> LoginAttempt {
        LoginAttempt {
            guard: self.clone(),
            key,
            settled: self.inner.failures_max == 0,
        }
    }

    fn fail(&self, key: &str, from_attempt: bool) {
        if self.inner.failures_max == 0 {
            return;
        }
        let now = self.now_ms();
        let mut accounts = self.lock();
        if !accounts.contains_key(key) && accounts.len() >= self.inner.keys_max {
            self.evict(&mut accounts, now);
        }
        let account = accounts.entry(key.to_string()).or_default();
        if from_attempt {
            account.in_flight = account.in_flight.saturating_sub(1);
        }
        self.refresh(account, now);
        if account.locked_until_ms.is_some() {
            return;
        }
        if account.failures == 0 {
            account.window_start_ms = now;
        }
        account.failures += 1;
        if account.failures >= self.inner.failures_max {
            account.locked_until_ms = Some(now.saturating_add(self.inner.lockout_ms));
        }
    }

    fn succeed(&self, key: &str, from_attempt: bool) {
        let mut accounts = self.lock();
        if let Some(account) = accounts.get_mut(key) {
            if from_attempt {
                account.in_flight = account.in_flight.saturating_sub(1);
            }
            account.failures = 0;
            account.locked_until_ms = None;
            if account.in_flight == 0 {
                accounts.remove(key);
            }
        }
    }

    fn release(&self, key: &str) {
        let mut accounts = self.lock();
        if let Some(account) = accounts.get_mut(key) {
            account.in_flight = account.in_flight.saturating_sub(1);
            if account.in_flight == 0 && account.failures == 0 && account.locked_until_ms.is_none()
            {
                accounts.remove(key);
            }
        }
    }

    /// Ends a lockout or a failure window that has passed.
    fn refresh(&self, account: &mut Account, now: i64) {
        match account.locked_until_ms {
            Some(until) if now >= until => {
                account.locked_until_ms = None;
                account.failures = 0;
            }
            Some(_) => {}
            None => {
                if now.saturating_sub(account.window_start_ms) >= self.inner.lockout_ms {
                    account.failures = 0;
                }
            }
        }
    }

    fn stale(&self, account: &Account, now: i64) -> bool {
        let mut copy = *account;
        self.refresh(&mut copy, now);
        copy.failures == 0 && copy.in_flight == 0 && copy.locked_until_ms.is_none()
    }

    fn evict(&self, accounts: &mut HashMap<String, Account>, now: i64) {
        accounts.retain(|_, account| !self.stale(account, now));
        if accounts.len() < self.inner.keys_max {
            return;
        }
        // Unlocked entries before locked ones, oldest first.
        let batch = (self.inner.keys_max / EVICTION_BATCH_DIVISOR).max(1);
        let mut order: Vec<((bool, i64), String)> = accounts
            .iter()
            .map(|(key, a)| {
                (
                    (a.locked_until_ms.is_some(), a.window_start_ms),
                    key.clone(),
                )
            })
            .collect();
        order.select_nth_unstable_by(batch - 1, |a, b| a.0.cmp(&b.0));
        for (_, key) in &order[..batch] {
            accounts.remove(key);
        }
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now().as_millisecond()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        self.inner
            .accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl LoginAttempt {
    /// The password was wrong (or the account unknown or disabled).
    pub fn failed(mut self) {
        self.settled = true;
        self.guard.fail(&self.key, true);
    }
    /// The login succeeded: the email's count is cleared.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.guard.succeed(&self.key, true);
    }
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        if !self.settled {
            self.guard.release(&self.key);
        }
    }
}

fn normalize(email: &str) -> String {
    email.trim().to_lowercase()
}

fn locked_out(wait_ms: i64) -> ApiError {
    let seconds = u64::try_from(wait_ms.max(1)).unwrap_or(1).div_ceil(1000);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many failed logins for this account; try again in {seconds} s"),
    )
    .with("retry_after", seconds)
    .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::{SignedDuration, Timestamp};
    use synap_store::ManualClock;

    fn guard(max: u32, lockout_secs: u64) -> (LoginGuard, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let guard = LoginGuard::new(max, Duration::from_secs(lockout_secs), clock.clone());
        (guard, clock)
    }

    #[test]
    fn locks_after_n_failures_until_the_window_passes() {
        let (guard, clock) = guard(3, 900);
        for _ in 0..3 {
            guard.check("A@example.com").unwrap().failed();
            clock.advance(SignedDuration::from_secs(10));
        }
        let error = guard.check(" a@EXAMPLE.com ").unwrap_err();
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.code, "rate_limited");
        let retry = error
            .headers
            .iter()
            .find(|(name, _)| name == header::RETRY_AFTER)
            .map(|(_, value)| value.to_str().unwrap().to_string());
        assert_eq!(
            retry.as_deref(),
            Some("890"),
            "900 s from the third failure"
        );
        // Other accounts are not affected.
        assert!(guard.check("b@example.com").is_ok());
        clock.advance(SignedDuration::from_secs(889));
        assert!(guard.is_locked("a@example.com"));
        clock.advance(SignedDuration::from_secs(1));
        assert!(!guard.is_locked("a@example.com"));
        guard.check("a@example.com").unwrap().failed();
        assert!(
            guard.check("a@example.com").is_ok(),
            "a fresh count after the lockout"
        );
    }

    #[test]
    fn success_clears_and_old_failures_expire() {
        let (guard, clock) = guard(3, 60);
        guard.record_failure("a@example.com");
        guard.record_failure("a@example.com");
        guard.record_success("a@example.com");
        guard.record_failure("a@example.com");
        guard.record_failure("a@example.com");
        assert!(!guard.is_locked("a@example.com"));
        // The window of those two failures passes before the third.
        clock.advance(SignedDuration::from_secs(60));
        guard.record_failure("a@example.com");
        assert!(!guard.is_locked("a@example.com"));
        guard.record_failure("a@example.com");
        guard.record_failure("a@example.com");
        assert!(guard.is_locked("a@example.com"));
        assert!(guard.check("a@example.com").is_err());
    }

    #[test]
    fn parallel_attempts_cannot_overrun_the_limit() {
        let (guard, _clock) = guard(2, 60);
        let first = guard.check("a@example.com").unwrap();
        let second = guard.check("a@example.com").unwrap();
        assert!(
            guard.check("a@example.com").is_err(),
            "two guesses are already being checked"
        );
        first.failed();
        drop(second); // no outcome: counts as nothing
        let third = guard.check("a@example.com").unwrap();
        third.failed();
        assert!(guard.is_locked("a@example.com"));
        assert!(guard.check("a@example.com").is_err());
    }

    #[test]
    fn settled_and_dropped_attempts_leave_nothing_behind() {
        let (guard, _clock) = guard(5, 60);
        drop(guard.check("a@example.com").unwrap());
        guard.check("b@example.com").unwrap().succeeded();
        assert_eq!(guard.tracked(), 0);
    }

    #[test]
    fn zero_turns_the_guard_off() {
        let (guard, _clock) = guard(0, 60);
        for _ in 0..100 {
            guard.check("a@example.com").unwrap().failed();
        }
        assert!(guard.check("a@example.com").is_ok());
        assert_eq!(guard.tracked(), 0);
    }

    #[test]
    fn the_table_is_bounded_and_keeps_locked_accounts() {
        let clock = Arc::new(ManualClock::new(Timestamp::UNIX_EPOCH));
        let guard = LoginGuard::with_keys_max(2, Duration::from_secs(60), clock, 8);
        guard.record_failure("victim@example.com");
        guard.record_failure("victim@example.com");
        assert!(guard.is_locked("victim@example.com"));
        for i in 0..1_000 {
            guard.check(&format!("{i}@example.com")).unwrap().failed();
        }
        assert!(guard.tracked() <= 8);
        assert!(
            guard.is_locked("victim@example.com"),
            "unlocked entries are evicted before locked ones"
        );
    }
}
