//! The workflow conformance suite (`synap_store::conformance_workflow`) on SQLite.

synap_store::workflow_conformance_suite!(crate::conformance::Sqlite);
