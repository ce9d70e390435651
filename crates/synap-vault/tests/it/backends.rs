//! The store factories: SQLite and PostgreSQL (the same as their conformance
//! suites use), each with an object store in a temporary directory, since vaults
//! bring attachments.

use std::path::Path;
use std::sync::Arc;
use synap_store::conformance::{Guard, StoreFactory};
use synap_store::objects::{INLINE_BODY_BYTES_MAX_DEFAULT, ObjectStoreConfig, Objects};
use synap_store::{Clock, Store};
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

/// An object store under `dir` (opening one blocks: it checks the store answers).
async fn objects(dir: &Path) -> Arc<Objects> {
    let config = ObjectStoreConfig::Fs {
        root: dir.join("objects"),
    };
    let objects = tokio::task::spawn_blocking(move || {
        Objects::open(&config, INLINE_BODY_BYTES_MAX_DEFAULT).expect("an object store")
    })
    .await
    .expect("open the object store");
    Arc::new(objects)
}

/// A `SqliteStore` in a temporary directory that lives as long as the guard.
pub struct Sqlite;

impl StoreFactory for Sqlite {
    async fn open(clock: Arc<dyn Clock>) -> (Arc<dyn Store>, Guard) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = SqliteConfig {
            clock,
            objects: Some(objects(dir.path()).await),
            ..SqliteConfig::new(dir.path().join("synap.db"))
        };
        let store = SqliteStore::open(config).expect("open a SQLite store");
        (Arc::new(store), Box::new(dir))
    }
}

/// A `PostgresStore` on a new database of the shared test cluster.
pub struct Postgres;

impl StoreFactory for Postgres {
    async fn open(clock: Arc<dyn Clock>) -> (Arc<dyn Store>, Guard) {
        let cluster = TestCluster::shared().expect("a PostgreSQL test cluster");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = PostgresConfig {
            clock,
            objects: Some(objects(dir.path()).await),
            ..PostgresConfig::new(cluster.fresh_database())
        };
        let store = PostgresStore::open(config)
            .await
            .expect("open a PostgreSQL store");
        (Arc::new(store), Box::new(dir))
    }

    fn available() -> bool {
        TestCluster::shared().is_some()
    }
}
