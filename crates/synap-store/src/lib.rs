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
//! - [`workflow`]: the durable workflow tables' contract (runs, memoised steps,
//!   leases fenced by attempt, cron schedules) that the engine in `synap-workflow`
//!   drives; runs a command triggers are enqueued by the pipeline.
//! - [`objects`]: the object store (a local directory or S3) for bodies over the
//!   inline threshold and attachments; [`attachments`]: attaching, listing and
//!   reading files of an entity, on any backend.
//! - [`vectors`]: vectors for semantic search (stored per entity, model and
//!   chunk; derived, re-made in the background) and the exact nearest-neighbour
//!   and hybrid (reciprocal rank fusion) searches over them.
//! - [`webhooks`]: webhook subscriptions, and the delivery runs a command's events
//!   start (inserted by the pipeline in the command's transaction).
//! - [`suggestions`]: what scheduled workflows propose (a project for a busy tag),
//!   and the user's decisions.
//! - [`fold`]: time travel — state at a version or time from a snapshot and events.
//! - `conformance` (feature `conformance`): the test suite every backend expands.

pub mod accounts;
pub mod api;
pub mod attachments;
pub mod fold;
pub mod objects;
pub mod pipeline;
pub mod progress;
pub mod suggestions;
pub mod transfer;
pub mod vectors;
pub mod webhooks;
pub mod workflow;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
pub mod conformance_attachments;
#[cfg(feature = "conformance")]
pub mod conformance_vectors;
#[cfg(feature = "conformance")]
pub mod conformance_webhooks;
#[cfg(feature = "conformance")]
pub mod conformance_workflow;
#[cfg(feature = "s3-testing")]
pub mod s3_testing;

pub use api::*;
