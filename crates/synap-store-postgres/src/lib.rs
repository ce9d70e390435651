//! The scale-out backend: Synap's store on PostgreSQL, for many users and many
//! `synap serve` processes sharing one database.
//!
//! - Each command runs in one transaction on a pooled connection (the sync
//!   `postgres` client on a blocking thread, so the shared pipeline in
//!   `synap_store::pipeline` runs unchanged). PostgreSQL groups concurrent commits.
//! - Every aggregate's version lives in `streams`; a command locks its stream row
//!   and bumps it with a compare-and-set, so a stale writer in any process gets a
//!   conflict naming the current version.
//! - `events` is partitioned by month of `recorded_at`; partitions are created
//!   ahead automatically.
//! - A position is the writing transaction's id (`xid8`) times 2^20 plus the
//!   event's index in that transaction. The feed reads only below the horizon of
//!   finished transactions (`pg_snapshot_xmin`), so no reader ever passes an event
//!   that commits late; `LISTEN/NOTIFY` only wakes readers.
//! - Search: `tsvector` over the same folded text as SQLite plus `pg_trgm` for
//!   substrings and CJK.
//!   Semantic search compares stored vectors exactly ([`vectors`]).
//! - Row-level security is enabled and forced on every user-owned table; the
//!   store works as the role `synap_app`, and a user-scoped transaction sets
//!   `synap.user_id`, so even an unscoped query inside it sees only that user.
//!
//! Modules: [`schema`] (migrations, partitions), [`pool`] (connections and
//! prepared statements), [`write`] (the `WriteTransaction` implementation),
//! [`project`] (projection updates), [`feed`] (the global feed), [`read`]
//! (queries), [`admin`] (rebuild, verify, stats), [`accounts`] (users, API
//! tokens, sessions), [`transfer`] (copying a whole embedded instance in, for
//! `synap admin migrate`), [`vectors`] (search vectors), [`webhooks`] (webhook subscriptions),
//! [`log_format`] (migration 8's conversion of the log to its compact form).

mod accounts;
mod admin;
mod attachments;
mod codec;
mod feed;
mod log_format;
mod pool;
mod project;
mod read;
mod schema;
mod store;
mod suggestions;
#[cfg(feature = "testing")]
pub mod testing;
mod transfer;
mod vectors;
mod webhooks;
mod workflow;
mod write;

pub use store::{PostgresConfig, PostgresStore};

/// The write path's building blocks, for tests that must hold a transaction open
/// or roll it back (the feed test): not part of the store's API.
#[cfg(feature = "testing")]
pub mod raw {
    pub use crate::pool::{APP_ROLE, Conn};
    pub use crate::workflow::WORKFLOW_TABLES;
    pub use crate::write::{append_batch, append_event};

    /// Brings the database at `url` up to migration `last` (from 1) only, as an
    /// older build left it: for tests of a later migration's conversion. Uses the
    /// synchronous client, so call it off the async runtime.
    pub fn migrate_up_to(url: &str, last: usize) -> synap_store::StoreResult<()> {
        let mut conn = Conn::connect(url, false)?;
        crate::schema::migrate_up_to(&mut conn, last)
    }
}
