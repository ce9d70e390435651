//! The object storage and attachment suite (`synap_store::conformance_attachments`)
//! on SQLite with a local object directory.

use std::sync::Arc;
use synap_store::Store;
use synap_store::conformance::Guard;
use synap_store::conformance_attachments::ObjectStoreFactory;
use synap_store::objects::Objects;
use synap_store_sqlite::{SqliteConfig, SqliteStore};

/// Opens a `SqliteStore` in a temporary directory on the object store given.
pub struct SqliteWithObjects;

impl ObjectStoreFactory for SqliteWithObjects {
    async fn open_with_objects(objects: Arc<Objects>) -> (Arc<dyn Store>, Guard) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = SqliteConfig {
            objects: Some(objects),
            ..SqliteConfig::new(dir.path().join("synap.db"))
        };
        let store = SqliteStore::open(config).expect("open a SQLite store");
        (Arc::new(store), Box::new(dir))
    }
}

synap_store::conformance_attachments_suite!(SqliteWithObjects);
