//! Integration tests of the SQLite backend: one test binary, a module per feature.

mod attachments;
mod checkpoints;
mod conformance;
mod objects_s3;
mod processes;
mod workflow;
