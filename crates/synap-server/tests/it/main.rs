//! synap-server's integration tests: one binary, a module per feature.

mod accounts;
mod attachments;
mod data;
mod event_stream;
mod openapi;
mod operations;
mod security;
mod server_harness;
mod shutdown;
mod trpc;
