//! The storage contract of Synap (layer 1 of `ARCHITECTURE.md`).
//!
//! - [`api`]: the traits every backend implements ([`Store`] and its parts) and the
//!   request and answer types they speak; each trait states its contract.
//! - [`pipeline`]: the one command pipeline (load → decide → append → project →
//!   wikilinks → idempotency record) that every backend runs *inside its own write
//!   transaction*, through the [`pipeline::WriteTransaction`] trait. Backends differ
//!   in SQL, never in what a command does.
//! - [`transfer`]: copying a whole instance to another backend (`admin migrate`):
//!   the rows that move, and the `Export` and `Import` halves of the copy.
//! - [`fold`]: time travel — state at a version or time from a snapshot and events.
//! - `conformance` (feature `conformance`): the test suite every backend expands.

pub mod accounts;
pub mod api;
pub mod fold;
pub mod pipeline;
pub mod progress;
pub mod transfer;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use api::*;
