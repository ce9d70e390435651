//! Synap's durable workflow engine (layer 3 of `ARCHITECTURE.md`): multi-step,
//! external work only — never a plain insert.
//!
//! - [`definition`]: a workflow is named steps, each an async function with its
//!   own retry policy and timeout, and an optional per-key concurrency limit;
//!   [`Registry`] holds the workflows a worker runs. Steps get an idempotency key
//!   derived from run and step for effects that leave the system.
//! - [`retry`]: exponential backoff with a cap, deterministic jitter, maximum
//!   attempts; non-retryable errors stop a run at once.
//! - [`engine`]: the worker — claim with a lease, heartbeat, execute the next
//!   steps outside any transaction, commit each result fenced by (run, attempt,
//!   owner), back off, fail, release on shutdown; cron schedules fire here.
//! - [`cron`]: five-field cron expressions (UTC).
//! - [`testing`]: test workflows with named failure points, also loadable by
//!   `synap worker` through an environment variable for process-level tests.
//!
//! The state lives in the store (`synap_store::workflow`), on SQLite and
//! PostgreSQL alike; time comes from the injected clock.

pub mod cron;
pub mod definition;
pub mod engine;
pub mod retry;
pub mod testing;

pub use definition::{Registry, StepContext, StepError, Workflow, idempotency_key};
pub use engine::{Observer, TickReport, Worker, WorkerConfig, spawn_workers};
pub use retry::RetryPolicy;
