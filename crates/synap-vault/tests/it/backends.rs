//! The store factory (the same one the SQLite conformance suite uses).

use std::sync::Arc;
use synap_store::conformance::{Guard, StoreFactory};
use synap_store::{Clock, Store};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

/// A `SqliteStore` in a temporary directory that lives as long as the guard.
pub struct Sqlite;

impl StoreFactory for Sqlite {
    async fn open(clock: Arc<dyn Clock>) -> (Arc<dyn Store>, Guard) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = SqliteConfig {
            clock,
            ..SqliteConfig::new(dir.path().join("synap.db"))
        };
        let store = SqliteStore::open(config).expect("open a SQLite store");
        (Arc::new(store), Box::new(dir))
    }
}
