//! End-to-end tests of the `synap` binary: each test runs the real binary against
//! its own temporary data directory and checks what a user would notice — the
//! output, the JSON shapes, and the exit codes with their one-line messages.

mod admin;
mod backup;
mod enrich;
mod events;
mod exit_codes;
mod lifecycle;
mod links;
mod listing;
mod migrate;
mod notes;
mod postgres;
mod search;
mod semantic;
mod serve;
mod settings;
mod suggestions;
mod support;
mod tasks;
mod tokens;
mod users;
mod webhooks;
mod worker;
