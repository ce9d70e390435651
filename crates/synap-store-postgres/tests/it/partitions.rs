//! The log is partitioned by month, and partitions are created ahead: opening a
//! store makes the current month's and the next months' partitions, and a write
//! dated in a month never seen before gets its partition on the way.

use std::sync::Arc;
use synap_domain::event::EventMetadata;
use synap_store::{Accounts, CommandRequest, EventStore, ManualClock, Scope, Target};
use synap_store_postgres::raw::Conn;
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};

fn partitions(url: &str) -> Vec<String> {
    let mut conn = Conn::connect(url, false).expect("connect");
    conn.query(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'events'::regclass ORDER BY 1",
        &[],
    )
    .expect("list partitions")
    .iter()
    .map(|row| row.get::<_, String>(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_exist_ahead_and_appear_for_new_months() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database();
    let start: jiff::Timestamp = "2031-01-15T12:00:00Z".parse().expect("a time");
    let clock = Arc::new(ManualClock::new(start));
    let store = PostgresStore::open(PostgresConfig {
        clock: clock.clone(),
        ..PostgresConfig::new(url.clone())
    })
    .await
    .expect("open");
    let listed = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || partitions(&url))
            .await
            .expect("partitions")
    };
    for month in ["events_2031_01", "events_2031_02", "events_2031_03"] {
        assert!(
            listed.iter().any(|p| p == month),
            "{month} is ready: {listed:?}"
        );
    }

    // A write dated half a year later, in a month never prepared.
    clock.set("2031-07-04T09:00:00Z".parse().expect("a time"));
    let owner = Scope::user(store.local_owner().await.expect("owner").id);
    let outcome = store
        .execute(CommandRequest::new(
            owner,
            Target::LogEvent {
                event_type: "partition.probe".into(),
                data: serde_json::json!({}),
            },
            EventMetadata::default(),
        ))
        .await
        .expect("a write in a new month");
    assert_eq!(outcome.events.len(), 1);
    let listed = tokio::task::spawn_blocking(move || partitions(&url))
        .await
        .expect("partitions");
    for month in ["events_2031_07", "events_2031_08", "events_2031_09"] {
        assert!(
            listed.iter().any(|p| p == month),
            "{month} exists: {listed:?}"
        );
    }
}
