//! The workflow conformance suite (`synap_store::conformance_workflow`) on
//! PostgreSQL, and row-level security on the workflow tables.

synap_store::workflow_conformance_suite!(crate::conformance::Postgres);
