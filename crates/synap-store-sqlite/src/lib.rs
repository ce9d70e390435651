//! The embedded backend: Synap's store on one SQLite database file.
//!
//! - WAL mode; durable commits (`synchronous=FULL`) by default.
//! - One writer thread per process owns the write connection and groups the
//!   commands that arrive together into one transaction (group commit), each
//!   command inside its own savepoint so one refusal does not undo the others.
//! - Reads use a small pool of read-only connections on blocking threads.
//! - A checkpointer thread copies the write-ahead log into the database file, so
//!   the writer does not (only when the log passes 16 MiB).
//! - Two processes on one file are safe: SQLite's locks serialise their writers
//!   (`BEGIN IMMEDIATE` with a busy timeout) and positions follow commit order.
//!
//! Modules: [`schema`] (migrations), [`writer`] (group commit and the
//! `WriteTransaction` implementation), [`checkpointer`] (the log's checkpoints),
//! [`project`] (projection updates), [`read`] (queries), [`admin`] (rebuild, verify, stats), [`accounts`] (users,
//! API tokens, sessions), [`backup`] (online snapshots for `synap admin backup`),
//! [`webhooks`] (webhook subscriptions), [`vectors`] (search vectors and the
//! exact nearest-neighbour query, through [`vec_extension`]),
//! [`transfer`] (reading a whole instance out for
//! `synap admin migrate`).

mod accounts;
mod admin;
mod attachments;
pub mod backup;
mod checkpointer;
mod codec;
mod project;
mod read;
mod schema;
mod store;
mod suggestions;
mod transfer;
mod vec_extension;
mod vectors;
mod webhooks;
mod workflow;
mod writer;

pub use store::{SqliteConfig, SqliteStore};
