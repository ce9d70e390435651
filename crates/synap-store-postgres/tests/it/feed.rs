//! The global feed never skips and never repeats, while many writers commit out
//! of order and some roll back: 16 writer threads append through the store's own
//! append path with random delays inside their transactions and random
//! rollbacks, while 3 followers tail the feed from different starting positions.

use rand::Rng;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use synap_domain::event::{EventLogged, EventMetadata, EventPayload, UserEvent};
use synap_store::pipeline::NewEvent;
use synap_store::{EventFilter, EventStore, Scope};
use synap_store_postgres::raw::{Conn, append_event};
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};
use uuid::Uuid;

const WRITERS: usize = 16;
const TRANSACTIONS_PER_WRITER: usize = 40;
/// Longest a writer sleeps inside an open transaction.
const DELAY_MAX_MS: u64 = 15;
/// Share of transactions rolled back instead of committed.
const ROLLBACK_SHARE: f64 = 0.25;

/// What the writers did: ids committed and ids rolled back.
#[derive(Default)]
struct Ledger {
    committed: Vec<Uuid>,
    rolled_back: Vec<Uuid>,
}

fn write_transactions(url: String, user: Uuid, ledger: Arc<Mutex<Ledger>>) {
    let mut conn = Conn::connect(&url, true).expect("connect a writer");
    let stream = Uuid::now_v7();
    let mut version = 0u64;
    let mut rng = rand::rng();
    let metadata = EventMetadata::default();
    for _ in 0..TRANSACTIONS_PER_WRITER {
        let events = rng.random_range(1..=3u64);
        conn.begin_as(&user).expect("begin as the user");
        let mut ids = Vec::new();
        for index in 0..events {
            let id = Uuid::now_v7();
            let payload = EventPayload::User(UserEvent::EventLogged(EventLogged {
                event_type: "feed.test".into(),
                data: json!({ "n": index }),
            }));
            let event = NewEvent {
                id,
                aggregate_id: stream,
                version: version + index + 1,
                payload: &payload,
                user_id: synap_domain::ids::UserId(user),
                metadata: &metadata,
                recorded_at: jiff::Timestamp::now(),
            };
            append_event(&mut conn, &event, index as i64).expect("append");
            ids.push(id);
            // Sleep between the appends too, so open transactions interleave.
            std::thread::sleep(Duration::from_millis(
                rng.random_range(0..=DELAY_MAX_MS / 3),
            ));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..=DELAY_MAX_MS)));
        let rollback = rng.random_bool(ROLLBACK_SHARE);
        if rollback {
            conn.rollback().expect("rollback");
            ledger.lock().expect("ledger").rolled_back.extend(ids);
        } else {
            conn.commit().expect("commit");
            ledger.lock().expect("ledger").committed.extend(ids);
            version += events;
        }
    }
}

/// Reads the feed from `after` until `stop` says the writers are done and a read
/// after that comes back empty; returns every event id seen, in order, with its
/// position.
async fn follow(
    store: PostgresStore,
    scope: Scope,
    mut after: u64,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(u64, Uuid)> {
    let mut seen = Vec::new();
    loop {
        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
        let page = store
            .read_events(
                &scope,
                &EventFilter {
                    after,
                    limit: Some(100),
                    ..EventFilter::default()
                },
            )
            .await
            .expect("read the feed");
        if let Some(last) = page.last() {
            after = last.position;
        }
        let empty = page.is_empty();
        seen.extend(page.into_iter().map(|e| (e.position, e.id.0)));
        if empty {
            if finished {
                return seen;
            }
            store
                .wait_for_events(after, Duration::from_millis(50))
                .await
                .expect("wait");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_see_every_committed_event_once_in_order_and_no_rolled_back_one() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database();
    let store = PostgresStore::open(PostgresConfig::new(url.clone()))
        .await
        .expect("open");
    let owner = store.local_owner_scope().await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Follower 1 starts before anything is written (the log holds only the
    // owner's own account event).
    let before = store.head_position().await.expect("head");
    let first = tokio::spawn(follow(store.clone(), owner, before, done.clone()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (url, ledger) = (url.clone(), ledger.clone());
            let user = owner.user_id.0;
            std::thread::spawn(move || write_transactions(url, user, ledger))
        })
        .collect();
    // Followers 2 and 3 join midway, from the head as it is then.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let midway = store.head_position().await.expect("head");
    let second = tokio::spawn(follow(store.clone(), owner, midway, done.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = store.head_position().await.expect("head");
    let third = tokio::spawn(follow(store.clone(), owner, later, done.clone()));

    for writer in writers {
        writer.join().expect("a writer thread");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let ledger = std::mem::take(&mut *ledger.lock().expect("ledger"));
    let committed: HashSet<Uuid> = ledger.committed.iter().copied().collect();
    let rolled_back: HashSet<Uuid> = ledger.rolled_back.iter().copied().collect();
    assert!(!rolled_back.is_empty() && committed.len() > 100);

    // The full feed, read once everything has settled, is the reference.
    let all = follow(store.clone(), owner, before, done.clone()).await;
    for (name, start, follower) in [
        ("first", before, first),
        ("second", midway, second),
        ("third", later, third),
    ] {
        let seen = follower.await.expect("a follower");
        let positions: Vec<u64> = seen.iter().map(|(p, _)| *p).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "the {name} follower saw positions out of order or twice"
        );
        let ids: Vec<Uuid> = seen.iter().map(|(_, id)| *id).collect();
        let unique: HashSet<Uuid> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "the {name} follower saw an event twice"
        );
        assert!(
            unique.is_disjoint(&rolled_back),
            "the {name} follower saw a rolled-back event"
        );
        let expected: Vec<Uuid> = all
            .iter()
            .filter(|(p, _)| *p > start)
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(
            ids, expected,
            "the {name} follower (from {start}) missed or reordered events"
        );
    }
    let all_ids: HashSet<Uuid> = all.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        all_ids, committed,
        "the feed holds exactly the committed events"
    );
}

/// The owner's scope, for brevity.
trait OwnerScope {
    async fn local_owner_scope(&self) -> Scope;
}

impl OwnerScope for PostgresStore {
    async fn local_owner_scope(&self) -> Scope {
        use synap_store::Accounts;
        Scope::user(self.local_owner().await.expect("the local owner").id)
    }
}
