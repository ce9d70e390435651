//! A short-lived in-process cache of verified API tokens, keyed by their lookup
//! prefix, so that an authenticated request does not read the token from the
//! database every time (a blocking-pool round trip that cost about as much as the
//! entity read of `GET /v1/entities/{id}`).
//!
//! - Only credentials whose secret matched are cached; every request still hashes
//!   the presented secret and compares it with the cached hash in constant time,
//!   and checks revocation, expiry and the account against the cached record.
//! - An entry is trusted for [`TOKEN_CACHE_TTL`] of the injected clock; changes made
//!   by another process (`synap token revoke`, a disabled account) are therefore
//!   seen within that time. A clock that goes backwards makes entries stale.
//! - A revocation through this process ([`TokenCache::forget`]) takes effect at
//!   once: it drops the token's entry and bumps a generation counter, and a lookup
//!   that began before the bump cannot put its (possibly pre-revocation) record
//!   back ([`TokenCache::insert`] compares generations).
//! - At most [`TOKEN_CACHE_ENTRIES_MAX`] tokens are kept; when full, stale entries
//!   go first, then everything (the cache refills from the database).
//! - `last_used_at` is remembered here too, so the "touch at most once per
//!   `token_touch_interval`" rule holds although the record is not re-read.

use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use synap_store::TokenCredential;
use uuid::Uuid;

/// How long a verified token is used without reading it again from the database.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Most tokens cached at once.
pub const TOKEN_CACHE_ENTRIES_MAX: usize = 10_000;

#[derive(Debug)]
struct Entry {
    credential: TokenCredential,
    fetched_at: Timestamp,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, Entry>>,
    generation: AtomicU64,
}

fn fresh(fetched_at: Timestamp, now: Timestamp) -> bool {
    let age = now.duration_since(fetched_at);
    !age.is_negative() && age.unsigned_abs() < TOKEN_CACHE_TTL
}

impl TokenCache {
    /// The cached credential of `prefix`, if it was fetched recently.
    pub fn get(&self, prefix: &str, now: Timestamp) -> Option<TokenCredential> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(prefix)
            .filter(|entry| fresh(entry.fetched_at, now))
            .map(|entry| entry.credential.clone())
    }

    /// The generation to pass to [`insert`](Self::insert): read it before
    /// fetching the credential from the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a verified credential fetched at `now`, unless a token was revoked
    /// through this process since `generation` was read.
    pub fn insert(
        &self,
        prefix: &str,
        credential: TokenCredential,
        now: Timestamp,
        generation: u64,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock: `forget` bumps it under the same lock.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if !entries.contains_key(prefix) && entries.len() >= TOKEN_CACHE_ENTRIES_MAX {
            entries.retain(|_, entry| fresh(entry.fetched_at, now));
            if entries.len() >= TOKEN_CACHE_ENTRIES_MAX {
                entries.clear();
            }
        }
        entries.insert(
            prefix.to_string(),
            Entry {
                credential,
                fetched_at: now,
            },
        );
    }

    /// Records that the token's `last_used_at` was written (or is being written).
    pub fn touched(&self, prefix: &str, at: Timestamp) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(prefix) {
            entry.credential.token.last_used_at = Some(at);
        }
    }

    /// Drops token `id` (revoked through this process): the next request with it
    /// reads the database again.
    pub fn forget(&self, id: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, entry| entry.credential.token.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synap_store::{TokenInfo, UserSummary};

    fn credential(id: Uuid) -> TokenCredential {
        let at = Timestamp::UNIX_EPOCH;
        TokenCredential {
            token: TokenInfo {
                id,
                name: "t".into(),
                prefix: "p".into(),
                scopes: vec!["read".into()],
                created_at: at,
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
            },
            secret_hash: "h".into(),
            user: UserSummary {
                id: synap_domain::UserId(Uuid::nil()),
                email: "a@example.com".into(),
                role: "owner".into(),
                display_name: None,
                created_at: at,
                disabled_at: None,
            },
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("a valid time")
    }

    #[test]
    fn entries_expire_and_a_clock_going_back_makes_them_stale() {
        let cache = TokenCache::default();
        let id = Uuid::now_v7();
        cache.insert("p", credential(id), at(100), cache.generation());
        assert!(cache.get("p", at(100)).is_some());
        assert!(cache.get("p", at(104)).is_some());
        assert!(cache.get("p", at(105)).is_none(), "TTL of 5 s");
        assert!(cache.get("p", at(99)).is_none(), "clock went back");
        assert!(cache.get("q", at(100)).is_none());
    }

    #[test]
    fn forget_drops_the_token_and_refuses_lookups_that_began_before() {
        let cache = TokenCache::default();
        let id = Uuid::now_v7();
        let before = cache.generation();
        cache.insert("p", credential(id), at(100), before);
        cache.forget(id);
        assert!(cache.get("p", at(100)).is_none());
        // A lookup that read the database before the revocation.
        cache.insert("p", credential(id), at(100), before);
        assert!(cache.get("p", at(100)).is_none());
        cache.insert("p", credential(id), at(100), cache.generation());
        assert!(cache.get("p", at(100)).is_some());
    }

    #[test]
    fn touches_are_remembered_and_the_size_is_bounded() {
        let cache = TokenCache::default();
        let id = Uuid::now_v7();
        cache.insert("p", credential(id), at(100), cache.generation());
        cache.touched("p", at(101));
        assert_eq!(
            cache.get("p", at(102)).map(|c| c.token.last_used_at),
            Some(Some(at(101)))
        );
        for i in 0..TOKEN_CACHE_ENTRIES_MAX + 10 {
            cache.insert(
                &format!("k{i}"),
                credential(id),
                at(100),
                cache.generation(),
            );
        }
        assert!(cache.entries.lock().expect("lock").len() <= TOKEN_CACHE_ENTRIES_MAX);
    }
}
