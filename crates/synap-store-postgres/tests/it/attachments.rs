//! The object storage and attachment suite (`synap_store::conformance_attachments`)
//! on PostgreSQL with a local object directory.

use std::sync::Arc;
use synap_store::Store;
use synap_store::conformance::Guard;
use synap_store::conformance_attachments::ObjectStoreFactory;
use synap_store::objects::Objects;
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};

/// Opens a `PostgresStore` on a new database of the test cluster, on the object
/// store given.
pub struct PostgresWithObjects;

impl ObjectStoreFactory for PostgresWithObjects {
    async fn open_with_objects(objects: Arc<Objects>) -> (Arc<dyn Store>, Guard) {
        let cluster = TestCluster::shared().expect("a PostgreSQL test cluster");
        let config = PostgresConfig {
            objects: Some(objects),
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

synap_store::conformance_attachments_suite!(PostgresWithObjects);
