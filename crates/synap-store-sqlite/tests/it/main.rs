//! Integration tests of the SQLite backend: one test binary, a module per feature.

mod conformance;
mod processes;
