//! Semantic search on a server that has pgvector: vectors are stored as `vector`
//! and ranked inside PostgreSQL. The shared vector conformance tests run again on
//! such a server (`TestCluster::shared_pgvector`), and a database whose vectors
//! were stored before pgvector was installed has them re-made by the indexer.

use std::sync::Arc;
use synap_domain::command::{CreateEntity, EntityCommand};
use synap_domain::event::EventMetadata;
use synap_domain::ids::EntityId;
use synap_store::conformance::{Guard, StoreFactory};
use synap_store::vectors::{ChunkVector, EntityVectors, NearestRequest, VectorIndex};
use synap_store::{Accounts, Clock, CommandRequest, EventStore, Scope, Store, Target};
use synap_store_postgres::raw::Conn;
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};

/// Opens a `PostgresStore` on a new database of the pgvector test cluster, and
/// checks that it took the pgvector path.
pub struct Pgvector;

impl StoreFactory for Pgvector {
    async fn open(clock: Arc<dyn Clock>) -> (Arc<dyn Store>, Guard) {
        let cluster = TestCluster::shared_pgvector().expect("a PostgreSQL cluster with pgvector");
        let config = PostgresConfig {
            clock,
            ..PostgresConfig::new(cluster.fresh_database())
        };
        let store = PostgresStore::open(config).await.expect("open a store");
        assert!(store.pgvector(), "the store uses the server's pgvector");
        (Arc::new(store), Box::new(()))
    }

    fn available() -> bool {
        TestCluster::shared_pgvector().is_some()
    }
}

synap_store::conformance_suite!(@current_thread Pgvector;
    vector_backlog_follows_edits_deletes_and_models,
    nearest_sees_only_the_callers_live_entities_by_best_chunk,
);

const MODEL: &str = "test:axes";

/// Runs `sql` as the cluster's administrator, off the async runtime.
async fn admin_sql(url: &str, sql: &'static str) {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = Conn::connect(&url, false).expect("connect");
        conn.client.batch_execute(sql).expect(sql);
    })
    .await
    .expect("the SQL thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_stored_before_pgvector_are_made_again_after_it_is_installed() {
    let Some(cluster) = TestCluster::shared_pgvector() else {
        return;
    };
    let url = cluster.fresh_database();
    let store = PostgresStore::open(PostgresConfig::new(url.clone()))
        .await
        .expect("open");
    let owner = Scope::user(store.local_owner().await.expect("owner").id);
    let id = EntityId::new_v7();
    store
        .execute(CommandRequest::new(
            owner,
            Target::Entity {
                id,
                command: EntityCommand::Create(CreateEntity::note("A small cat.")),
            },
            EventMetadata::default(),
        ))
        .await
        .expect("create a note");
    drop(store);
    // The database as a server without pgvector leaves it: no extension, and the
    // note's chunk stored as `bytea` with its source row.
    admin_sql(
        &url,
        "ALTER TABLE vectors DROP COLUMN embedding; DROP EXTENSION vector; \
         ALTER TABLE vectors ALTER COLUMN vector SET NOT NULL",
    )
    .await;
    let insert_url = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = Conn::connect(&insert_url, false).expect("connect");
        conn.execute(
            "INSERT INTO vector_sources (entity_id, model, user_id, title, content_hash) \
             SELECT id, $2, user_id, title, content_hash FROM entities WHERE id = $1",
            &[&id.0, &MODEL],
        )
        .expect("a source row");
        conn.execute(
            "INSERT INTO vectors (entity_id, model, chunk, user_id, start_at, end_at, vector) \
             SELECT id, $2, 0, user_id, 0, 12, $3 FROM entities WHERE id = $1",
            &[
                &id.0,
                &MODEL,
                &synap_store::vectors::encode_vector(&[1.0, 0.0]),
            ],
        )
        .expect("a bytea chunk");
    })
    .await
    .expect("the SQL thread");

    let upgraded = PostgresStore::open(PostgresConfig::new(url.clone()))
        .await
        .expect("open with pgvector installed");
    assert!(upgraded.pgvector());
    let backlog = upgraded.index_backlog(MODEL, 10).await.expect("backlog");
    assert_eq!(
        backlog.iter().map(|t| t.entity_id).collect::<Vec<_>>(),
        vec![id],
        "the entity whose chunks were bytea is embedded again"
    );
    upgraded
        .put_vectors(&EntityVectors {
            task: backlog[0].clone(),
            model: MODEL.into(),
            chunks: vec![ChunkVector {
                chunk: 0,
                start: 0,
                end: 12,
                vector: vec![1.0, 0.0],
            }],
        })
        .await
        .expect("put vectors");
    let found = upgraded
        .nearest(
            &owner,
            &NearestRequest {
                model: MODEL.into(),
                vector: vec![0.6, 0.8],
                entity_type: None,
                tag: None,
                limit: 5,
            },
        )
        .await
        .expect("nearest");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entity_id, id);
    assert!((found[0].score - 0.6).abs() < 1e-5, "{found:?}");
}
