//! The shared conformance suite (`synap_store::conformance`) on PostgreSQL: every
//! test opens a fresh database on the test cluster.

use std::sync::Arc;
use synap_store::conformance::{Guard, StoreFactory};
use synap_store::{Clock, Store};
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};

/// Opens a `PostgresStore` on a new database of the shared test cluster.
pub struct Postgres;

impl StoreFactory for Postgres {
    async fn open(clock: Arc<dyn Clock>) -> (Arc<dyn Store>, Guard) {
        let cluster = TestCluster::shared().expect("a PostgreSQL test cluster");
        let config = PostgresConfig {
            clock,
            ..PostgresConfig::new(cluster.fresh_database())
        };
        let store = PostgresStore::open(config)
            .await
            .expect("open a PostgreSQL store");
        (Arc::new(store), Box::new(()))
    }

    fn available() -> bool {
        TestCluster::shared().is_some()
    }
}

synap_store::conformance_suite!(Postgres);
