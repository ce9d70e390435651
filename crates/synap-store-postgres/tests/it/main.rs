//! Integration tests of the PostgreSQL backend, each on a fresh database of a
//! throwaway cluster (`synap_store_postgres::testing`).

mod attachments;
mod conformance;
mod feed;
mod log_format;
mod migrate;
mod partitions;
mod pgvector;
mod rls;
mod workflow;
