//! The write-ahead log is copied back into the database file by the
//! checkpointer thread, not left to grow and not done by the writer itself.

use std::time::{Duration, Instant};
use synap_domain::command::CreateEntity;
use synap_domain::{EntityCommand, EntityId, EventMetadata};
use synap_store::{Accounts, CommandRequest, EventStore, Scope, Target};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

/// How long the checkpointer may take to copy a burst of commits.
const CHECKPOINT_WAIT_MAX: Duration = Duration::from_secs(10);
/// How much of the notes' text must have reached the database file.
const GROWTH_MIN: u64 = 100 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_notes_reach_the_database_file_while_the_store_stays_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("synap.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).expect("open");
    let scope = Scope::user(store.local_owner().await.expect("owner").id);
    let size_at_open = std::fs::metadata(&path).expect("database file").len();

    // About 130 KiB of notes, one commit each: far fewer log pages than the
    // writer's own checkpoint threshold, so only the checkpointer can move them.
    for n in 0..60 {
        let body = format!("# Note {n}\n\n{}", "lorem ipsum dolor sit amet ".repeat(80));
        store
            .execute(CommandRequest::new(
                scope,
                Target::Entity {
                    id: EntityId::new_v7(),
                    command: EntityCommand::Create(CreateEntity::note(body)),
                },
                EventMetadata::default(),
            ))
            .await
            .expect("create a note");
    }

    let waited = Instant::now();
    let grown = loop {
        let size = std::fs::metadata(&path).expect("database file").len();
        if size >= size_at_open + GROWTH_MIN || waited.elapsed() > CHECKPOINT_WAIT_MAX {
            break size - size_at_open;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        grown >= GROWTH_MIN,
        "the database file grew by only {grown} bytes: the log was not checkpointed"
    );
}
