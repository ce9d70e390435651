//! Real processes on one database file: a writer killed with SIGKILL loses nothing
//! it acknowledged, and two processes writing at once both succeed with one
//! consistent log.
//!
//! The child processes are this same test binary, re-run with `SYNAP_CHILD` set:
//! the test function then plays the child's part instead of the parent's.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use synap_domain::command::CreateEntity;
use synap_domain::{EntityCommand, EntityId, EventMetadata, Source};
use synap_store::{
    Accounts, CommandRequest, EventFilter, EventStore, Maintenance, ReadModel, Scope, Target,
};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

const CHILD_ROLE: &str = "SYNAP_CHILD";
const CHILD_DB: &str = "SYNAP_CHILD_DB";
const CHILD_COUNT: &str = "SYNAP_CHILD_COUNT";

/// The child's part: append notes (forever, or `SYNAP_CHILD_COUNT` of them) and
/// print `ack <id>` after each append is acknowledged.
fn run_child(db: &Path) {
    let count: Option<u64> = std::env::var(CHILD_COUNT).ok().and_then(|c| c.parse().ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SqliteStore::open(SqliteConfig::new(db)).expect("open");
        let owner = store.local_owner().await.expect("owner");
        let scope = Scope::user(owner.id);
        let mut written = 0u64;
        while count.is_none_or(|c| written < c) {
            let id = EntityId::new_v7();
            let body = format!(
                "# Note {written}\n\nwritten by process {}",
                std::process::id()
            );
            let request = CommandRequest::new(
                scope,
                Target::Entity {
                    id,
                    command: EntityCommand::Create(CreateEntity::note(body)),
                },
                EventMetadata {
                    source: Source::Cli,
                    ..Default::default()
                },
            );
            store.execute(request).await.expect("append");
            println!("ack {id}");
            written += 1;
        }
    });
}

fn spawn_child(test_name: &str, db: &Path, count: Option<u64>) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ROLE, "1")
        .env(CHILD_DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(count) = count {
        command.env(CHILD_COUNT, count.to_string());
    }
    command.spawn().expect("spawn child")
}

/// Reads `ack <id>` lines until the stream ends.
fn acknowledged(lines: impl Iterator<Item = std::io::Result<String>>) -> Vec<EntityId> {
    lines
        .map_while(Result::ok)
        // The test harness may print the test's name on the line before the
        // child's first output, so the marker is looked for anywhere in the line.
        .filter_map(|line| {
            line.split("ack ")
                .nth(1)
                .and_then(|id| id.trim().parse().ok())
        })
        .collect()
}

async fn assert_all_present_and_clean(db: &Path, ids: &[EntityId]) {
    let store = SqliteStore::open(SqliteConfig::new(db)).expect("reopen");
    let owner = store.local_owner().await.expect("owner");
    let scope = Scope::user(owner.id);
    for id in ids {
        let entity = store.entity(&scope, *id).await.expect("read");
        assert!(
            entity.is_some(),
            "acknowledged entity {id} is missing after the crash"
        );
    }
    let report = store.verify(&|_, _| {}).await.expect("verify");
    assert!(
        report.is_clean(),
        "verify found differences: {:?}",
        report.differences
    );
}

#[test]
fn every_acknowledged_append_survives_sigkill() {
    if std::env::var(CHILD_ROLE).is_ok() {
        run_child(Path::new(&std::env::var(CHILD_DB).expect("db path")));
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("synap.db");
    let mut all_acknowledged = Vec::new();
    // Three kills at different moments, each after the child has acknowledged some appends.
    for round in 0..3u32 {
        let mut child = spawn_child(
            "processes::every_acknowledged_append_survives_sigkill",
            &db,
            None,
        );
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let wanted = 50 + 75 * round as usize;
        let started = Instant::now();
        let mut acks = Vec::new();
        while acks.len() < wanted && started.elapsed() < Duration::from_secs(60) {
            match lines.next() {
                Some(Ok(line)) => acks.extend(acknowledged(std::iter::once(Ok(line)))),
                _ => break,
            }
        }
        assert!(
            acks.len() >= wanted,
            "the child acknowledged only {} appends",
            acks.len()
        );
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
        // Appends acknowledged between our last read and the kill are still in the pipe.
        acks.extend(acknowledged(lines));
        child.wait().expect("reap");
        all_acknowledged.extend(acks);
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(assert_all_present_and_clean(&db, &all_acknowledged));
}

#[test]
fn two_processes_write_one_database_consistently() {
    if std::env::var(CHILD_ROLE).is_ok() {
        run_child(Path::new(&std::env::var(CHILD_DB).expect("db path")));
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("synap.db");
    // Create the database first so both children start from the same owner.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        SqliteStore::open(SqliteConfig::new(&db)).expect("create");
    });
    const PER_CHILD: u64 = 150;
    let children: Vec<Child> = (0..2)
        .map(|_| {
            spawn_child(
                "processes::two_processes_write_one_database_consistently",
                &db,
                Some(PER_CHILD),
            )
        })
        .collect();
    let mut ids = Vec::new();
    for mut child in children {
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        ids.extend(acknowledged(lines));
        assert!(child.wait().expect("wait").success(), "a child failed");
    }
    assert_eq!(
        ids.len() as u64,
        2 * PER_CHILD,
        "every append of both processes is acknowledged"
    );
    runtime.block_on(async {
        assert_all_present_and_clean(&db, &ids).await;
        let store = SqliteStore::open(SqliteConfig::new(&db)).expect("reopen");
        let owner = store.local_owner().await.expect("owner");
        let scope = Scope::user(owner.id);
        let mut positions = Vec::new();
        let mut after = 0;
        loop {
            let page = store
                .read_events(
                    &scope,
                    &EventFilter {
                        after,
                        limit: Some(500),
                        ..Default::default()
                    },
                )
                .await
                .expect("events");
            let Some(last) = page.last() else { break };
            after = last.position;
            positions.extend(page.iter().map(|e| e.position));
        }
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "positions strictly increase"
        );
        // The owner's user.created plus one entity.created per acknowledged append.
        assert_eq!(positions.len(), ids.len() + 1);
    });
}
