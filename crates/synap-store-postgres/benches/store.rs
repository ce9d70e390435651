//! Benchmarks of the PostgreSQL backend (issue 4, "Benchmark"): printed figures,
//! each next to a baseline measured in the same run on the same cluster — not
//! timed tests.
//!
//! ```text
//! cargo bench -p synap-store-postgres --bench store
//! SYNAP_BENCH_SCALE=quick cargo bench -p synap-store-postgres --bench store
//! SYNAP_BENCH_ONLY=append,catchup cargo bench -p synap-store-postgres --bench store
//! ```
//!
//! - `SYNAP_BENCH_SCALE`: `full` (default: the issue's sizes, 10M and 20M events
//!   in the scale section) or `quick` (small sizes, a smoke run).
//! - `SYNAP_BENCH_ONLY`: comma-separated sections: `append`, `catchup`, `scale`.
//! - `SYNAP_BENCH_CLIENTS`: comma-separated client counts for the append section
//!   (default `1,8,16`), for quicker A/B runs of one row.
//!
//! The cluster is a throwaway one started by the harness with durable settings
//! (`fsync=on`, `synchronous_commit=on`); both the store and the plain-SQL
//! baseline commit with that same durability.

use postgres::{Client, NoTls};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use synap_domain::event::{
    ContentChanged, EntityEvent, EventLogged, EventMetadata, EventPayload, UserEvent,
};
use synap_domain::ids::ContentHash;
use synap_domain::ids::UserId;
use synap_store::pipeline::NewEvent;
use synap_store::{Accounts, CommandRequest, EventFilter, EventStore, Scope, Target};
use synap_store_postgres::raw::{Conn, append_batch};
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};
use uuid::Uuid;

const SECTIONS: &[&str] = &["append", "catchup", "scale"];
/// Events per generated chunk in the scale section (one transaction each; below
/// the 2^20 events one transaction may number).
const FILL_CHUNK: u64 = 1_000_000;
/// Appends made before measuring each level of the scale section.
const SCALE_WARMUP_APPENDS: usize = 500;

#[derive(Debug, Clone)]
struct Scale {
    name: &'static str,
    /// How long each append measurement runs.
    append_window: Duration,
    catchup_events: u64,
    scale_levels: Vec<u64>,
    scale_samples: usize,
}

impl Scale {
    fn from_env() -> Scale {
        match std::env::var("SYNAP_BENCH_SCALE").as_deref() {
            Ok("quick") => Scale {
                name: "quick",
                append_window: Duration::from_secs(2),
                catchup_events: 100_000,
                scale_levels: vec![0, 200_000],
                scale_samples: 300,
            },
            _ => Scale {
                name: "full",
                append_window: Duration::from_secs(8),
                catchup_events: 1_000_000,
                scale_levels: vec![0, 10_000_000, 20_000_000],
                scale_samples: 10_000,
            },
        }
    }
}

/// The append section's client counts: `SYNAP_BENCH_CLIENTS`, or 1, 8 and 16.
fn client_counts() -> Vec<usize> {
    let counts: Vec<usize> = std::env::var("SYNAP_BENCH_CLIENTS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect();
    if counts.is_empty() {
        vec![1, 8, 16]
    } else {
        counts
    }
}

fn wanted(section: &str) -> bool {
    match std::env::var("SYNAP_BENCH_ONLY") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|s| s.trim() == section),
        _ => true,
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Lat {
    p50: Duration,
    p99: Duration,
}

fn lat(samples: &mut [Duration]) -> Lat {
    if samples.is_empty() {
        return Lat::default();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Lat {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------------
// Append throughput: the store against plain prepared SQL writing the same rows.
// ---------------------------------------------------------------------------------

/// What one append run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    events_per_second: f64,
    latency: Lat,
}

fn logged(n: u64) -> EventPayload {
    EventPayload::User(UserEvent::EventLogged(EventLogged {
        event_type: "bench.tick".into(),
        data: json!({ "n": n, "note": "a small client event, as events.log records them" }),
    }))
}

/// Through the store: `clients` tasks each running one command per transaction
/// (`events.log`: lock the user's stream, append, record the outcome, notify)
/// for `window`.
async fn store_one_per_tx(
    store: &PostgresStore,
    scope: Scope,
    clients: usize,
    window: Duration,
) -> Run {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Each client writes to its own user's stream, as separate users do.
            let user = store
                .create_user(synap_store::NewUser {
                    email: format!("bench{client}-{}@example.com", Uuid::now_v7().simple()),
                    role: "member".into(),
                    password_hash: None,
                    display_name: None,
                })
                .await
                .expect("a bench user");
            let scope = Scope::user(user.id);
            let mut samples = Vec::new();
            let mut n = 0u64;
            while started.elapsed() < window {
                let one = Instant::now();
                store
                    .execute(CommandRequest::new(
                        scope,
                        Target::LogEvent {
                            event_type: "bench.tick".into(),
                            data: json!({ "n": n, "note": "a small client event, as events.log records them" }),
                        },
                        EventMetadata::default(),
                    ))
                    .await
                    .expect("events.log");
                samples.push(one.elapsed());
                n += 1;
            }
            samples
        }));
    }
    let _ = scope;
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("a client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    Run {
        events_per_second: samples.len() as f64 / elapsed,
        latency: lat(&mut samples),
    }
}

/// Through the store's batch append (`raw::append_batch`, the statement commands
/// flush with): `per_tx` events per transaction, numbered by the transaction,
/// the stream moved by compare-and-set, then commit and wake readers.
fn store_batch_client(
    url: String,
    user: Uuid,
    per_tx: u64,
    window: Duration,
    started: Instant,
) -> Vec<Duration> {
    let mut conn = Conn::connect(&url, true).expect("connect");
    let stream = Uuid::now_v7();
    let metadata = EventMetadata::default();
    let mut version = 0u64;
    let mut samples = Vec::new();
    while started.elapsed() < window {
        let one = Instant::now();
        conn.begin_as(&user).expect("begin");
        let payloads: Vec<EventPayload> = (0..per_tx).map(|i| logged(version + i)).collect();
        let events: Vec<NewEvent<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(index, payload)| NewEvent {
                id: Uuid::now_v7(),
                aggregate_id: stream,
                version: version + index as u64 + 1,
                payload,
                user_id: UserId(user),
                metadata: &metadata,
                recorded_at: jiff::Timestamp::now(),
            })
            .collect();
        append_batch(&mut conn, &events).expect("append");
        conn.commit().expect("commit");
        version += per_tx;
        samples.push(one.elapsed());
    }
    samples
}

/// Plain prepared SQL writing the same rows: the stream's version and the events
/// (and, for one event per transaction, the idempotency record the store writes).
fn plain_client(
    url: String,
    user: Uuid,
    per_tx: u64,
    window: Duration,
    started: Instant,
) -> Vec<Duration> {
    let mut client = Client::connect(&url, NoTls).expect("connect");
    let stream_sql = client
        .prepare(
            "INSERT INTO streams (aggregate_id, version) VALUES ($1, $2) \
             ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version",
        )
        .expect("prepare");
    let event_sql = client
        .prepare(
            "INSERT INTO events (position, recorded_at, id, aggregate_id, user_id, version, type_code, \
             schema_version, data, metadata) \
             VALUES ((pg_current_xact_id()::text::bigint << 20) + $1, $2, $3, $4, $5, $6, $7, 1, $8, $9)",
        )
        .expect("prepare");
    let outcome_sql = client
        .prepare(
            "INSERT INTO command_outcomes (command_id, user_id, aggregate_id, version, first_position, event_count) \
             VALUES ($1, $2, $3, $4, 0, 1)",
        )
        .expect("prepare");
    let stream = Uuid::now_v7();
    // The same row the store writes: a type code, the payload in the binary
    // encoding, and no bytes for the usual metadata.
    let type_code = logged(0).type_code();
    let metadata: Vec<u8> = Vec::new();
    let mut version = 0i64;
    let mut samples = Vec::new();
    while started.elapsed() < window {
        let one = Instant::now();
        let mut tx = client.transaction().expect("begin");
        tx.execute(&stream_sql, &[&stream, &(version + per_tx as i64)])
            .expect("stream");
        for index in 0..per_tx as i64 {
            let id = Uuid::now_v7();
            let data = logged((version + index) as u64)
                .binary_data()
                .expect("data");
            tx.execute(
                &event_sql,
                &[
                    &index,
                    &jiff::Timestamp::now().as_microsecond(),
                    &id,
                    &stream,
                    &user,
                    &((version + index + 1) as i32),
                    &type_code,
                    &data,
                    &metadata,
                ],
            )
            .expect("event");
            if per_tx == 1 {
                tx.execute(&outcome_sql, &[&id, &user, &stream, &(version + 1)])
                    .expect("outcome");
            }
        }
        tx.commit().expect("commit");
        version += per_tx as i64;
        samples.push(one.elapsed());
    }
    samples
}

fn threaded(
    clients: usize,
    per_tx: u64,
    window: Duration,
    work: impl Fn(Duration, Instant) -> Vec<Duration> + Send + Sync + Clone + 'static,
) -> Run {
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let work = work.clone();
            std::thread::spawn(move || work(window, started))
        })
        .collect();
    let mut samples = Vec::new();
    for handle in handles {
        samples.extend(handle.join().expect("a client thread"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    Run {
        events_per_second: samples.len() as f64 * per_tx as f64 / elapsed,
        latency: lat(&mut samples),
    }
}

async fn append_section(cluster: &TestCluster, scale: &Scale) {
    println!("\n## Append throughput (durable: fsync on, synchronous_commit on)\n");
    println!(
        "| events/tx | clients | store events/s | store p50 / p99 (tx) | plain SQL events/s | plain p50 / p99 | store / plain |"
    );
    println!("|---|---|---|---|---|---|---|");
    for per_tx in [1u64, 100] {
        for clients in client_counts() {
            let url = cluster.fresh_database();
            let store = PostgresStore::open(PostgresConfig::new(url.clone()))
                .await
                .expect("open");
            let owner = store.local_owner().await.expect("owner").id.0;
            // Interleave: baseline, store, baseline, store; keep each side's best.
            let mut best_store: Option<Run> = None;
            let mut best_plain: Option<Run> = None;
            for _ in 0..2 {
                let plain = {
                    let url = url.clone();
                    threaded(clients, per_tx, scale.append_window, move |w, s| {
                        plain_client(url.clone(), owner, per_tx, w, s)
                    })
                };
                let store_run = if per_tx == 1 {
                    store_one_per_tx(
                        &store,
                        Scope::user(UserId(owner)),
                        clients,
                        scale.append_window,
                    )
                    .await
                } else {
                    let url = url.clone();
                    threaded(clients, per_tx, scale.append_window, move |w, s| {
                        store_batch_client(url.clone(), owner, per_tx, w, s)
                    })
                };
                if best_plain.is_none_or(|b| plain.events_per_second > b.events_per_second) {
                    best_plain = Some(plain);
                }
                if best_store.is_none_or(|b| store_run.events_per_second > b.events_per_second) {
                    best_store = Some(store_run);
                }
            }
            let (s, p) = (best_store.expect("a run"), best_plain.expect("a run"));
            println!(
                "| {per_tx} | {clients} | {:.0} | {} / {} | {:.0} | {} / {} | {:.2} |",
                s.events_per_second,
                ms(s.latency.p50),
                ms(s.latency.p99),
                p.events_per_second,
                ms(p.latency.p50),
                ms(p.latency.p99),
                s.events_per_second / p.events_per_second
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Generated logs: note-edit events written by SQL, for the catch-up and scale
// sections (fast to make; the same row shape the store writes).
// ---------------------------------------------------------------------------------

/// A note edit's `data` exactly as the store writes it (a 1 KiB note's old and
/// new content hashes), cut around the two hashes so SQL can put distinct ones in.
fn note_edit_data() -> (i16, [Vec<u8>; 3]) {
    let (old, new) = ([0x11; 32], [0x22; 32]);
    let payload = EventPayload::Entity(EntityEvent::ContentChanged(ContentChanged {
        old_hash: Some(ContentHash(old)),
        new_hash: Some(ContentHash(new)),
        size: 1024,
        media_type: None,
    }));
    let data = payload.binary_data().expect("encode");
    let at = |hash: &[u8; 32]| {
        data.windows(32)
            .position(|w| w == hash)
            .expect("the hash is in the data")
    };
    let (a, b) = (at(&old), at(&new));
    let parts = [
        data[..a].to_vec(),
        data[a + 32..b].to_vec(),
        data[b + 32..].to_vec(),
    ];
    (payload.type_code(), parts)
}

/// Appends `count` `entity.content_changed` events for `user` (streams of 10
/// edits each) with the usual metadata (stored as no bytes), in chunks of one
/// transaction each.
fn fill(client: &mut Client, user: Uuid, count: u64) {
    let (type_code, [before, between, after]) = note_edit_data();
    let mut done = 0;
    while done < count {
        let chunk = FILL_CHUNK.min(count - done);
        client
            .execute(
                "INSERT INTO events (position, recorded_at, id, aggregate_id, user_id, version, type_code, \
                 schema_version, data, metadata) \
                 SELECT (pg_current_xact_id()::text::bigint << 20) + g, \
                        (extract(epoch FROM now()) * 1000000)::bigint, \
                        gen_random_uuid(), \
                        md5(($2::bigint + g / 10)::text)::uuid, \
                        $1, \
                        (g % 10) + 1, $4, 1, \
                        $5::bytea || sha256(int8send($2::bigint + g)) || $6::bytea \
                            || sha256(int8send(-1 - $2::bigint - g)) || $7::bytea, \
                        ''::bytea \
                 FROM generate_series(0, $3::bigint - 1) AS g",
                &[
                    &user,
                    &(done as i64),
                    &(chunk as i64),
                    &type_code,
                    &before,
                    &between,
                    &after,
                ],
            )
            .expect("fill the log");
        done += chunk;
    }
}

async fn catchup_section(cluster: &TestCluster, scale: &Scale) {
    println!("\n## Feed catch-up\n");
    let url = cluster.fresh_database();
    let store = PostgresStore::open(PostgresConfig::new(url.clone()))
        .await
        .expect("open");
    let owner = store.local_owner().await.expect("owner").id;
    // The sync client runs its own runtime: keep it off the async workers.
    let plain = tokio::task::block_in_place(|| catchup_baseline(&url, owner, scale));
    catchup_through_store(&store, owner, scale, plain).await;
}

/// Fills the log, then reads it back by plain SQL; returns events/s.
fn catchup_baseline(url: &str, owner: UserId, scale: &Scale) -> f64 {
    let mut client = Client::connect(url, NoTls).expect("connect");
    fill(&mut client, owner.0, scale.catchup_events);
    client
        .batch_execute("VACUUM ANALYZE events")
        .expect("vacuum");

    // Baseline: the same pages read by plain SQL, rows decoded by the driver.
    let started = Instant::now();
    let mut after = 0i64;
    let mut read = 0u64;
    let statement = client
        .prepare(
            "SELECT position, id, aggregate_id, version, type_code, schema_version, user_id, data, metadata, recorded_at \
             FROM events WHERE user_id = $1 AND position > $2 ORDER BY position LIMIT 500",
        )
        .expect("prepare");
    loop {
        let rows = client.query(&statement, &[&owner.0, &after]).expect("page");
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        read += rows.len() as u64;
    }
    read as f64 / started.elapsed().as_secs_f64()
}

async fn catchup_through_store(store: &PostgresStore, owner: UserId, scale: &Scale, plain: f64) {
    // Through the store: settled-horizon pages, payloads decoded and upcast.
    let scope = Scope::user(owner);
    for readers in [1usize, 2] {
        let total = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..readers {
            let (store, total) = (store.clone(), total.clone());
            tasks.push(tokio::spawn(async move {
                let mut after = 0u64;
                loop {
                    let page = store
                        .read_events(
                            &scope,
                            &EventFilter {
                                after,
                                limit: Some(500),
                                ..EventFilter::default()
                            },
                        )
                        .await
                        .expect("a page");
                    let Some(last) = page.last() else { break };
                    after = last.position;
                    total.fetch_add(page.len() as u64, Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.expect("a reader");
        }
        let rate = total.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        println!(
            "- {} events, pages of 500, {readers} reader(s) through the store: **{rate:.0} events/s** \
             (plain SQL, 1 reader, rows only: {plain:.0} events/s)",
            scale.catchup_events
        );
    }
}

async fn scale_section(cluster: &TestCluster, scale: &Scale) {
    println!("\n## Append latency as the log grows, and bytes per event\n");
    let url = cluster.fresh_database();
    let store = PostgresStore::open(PostgresConfig::new(url.clone()))
        .await
        .expect("open");
    let owner = store.local_owner().await.expect("owner").id;
    // The sync client runs its own runtime: every use stays off the async workers.
    let mut client = tokio::task::block_in_place(|| Client::connect(&url, NoTls).expect("connect"));
    println!(
        "| events in the log | append p50 | append p99 | bytes/event (events + its indexes) | fill time |"
    );
    println!("|---|---|---|---|---|");
    let mut in_log = 0u64;
    let mut baseline_p99 = None;
    for level in &scale.scale_levels {
        let started = Instant::now();
        if *level > in_log {
            tokio::task::block_in_place(|| fill(&mut client, owner.0, level - in_log));
            in_log = *level;
            tokio::task::block_in_place(|| {
                client
                    .batch_execute("VACUUM ANALYZE events")
                    .expect("vacuum")
            });
        }
        let fill_time = started.elapsed();
        // Measure the log's size, not the bulk load's aftermath: without this the
        // checkpoint that writing gigabytes of log triggers runs during the
        // measurement and its fsyncs land in the appends' tail latency.
        tokio::task::block_in_place(|| client.batch_execute("CHECKPOINT").expect("checkpoint"));
        // Unmeasured appends first, so every level is measured with warm
        // connections and caches (the empty log used to be measured cold).
        let mut samples = Vec::new();
        for n in 0..SCALE_WARMUP_APPENDS + scale.scale_samples {
            let one = Instant::now();
            store
                .execute(CommandRequest::new(
                    Scope::user(owner),
                    Target::LogEvent {
                        event_type: "bench.tick".into(),
                        data: json!({ "n": n }),
                    },
                    EventMetadata::default(),
                ))
                .await
                .expect("append");
            if n >= SCALE_WARMUP_APPENDS {
                samples.push(one.elapsed());
            }
        }
        let latency = lat(&mut samples);
        let row = tokio::task::block_in_place(|| {
            client
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint, (SELECT count(*) FROM events) \
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'events'::regclass",
                &[],
            )
            .expect("sizes")
        });
        let (bytes, count): (i64, i64) = (row.get(0), row.get(1));
        let per_event = if count > 0 {
            bytes as f64 / count as f64
        } else {
            0.0
        };
        let p99 = latency.p99;
        let baseline = *baseline_p99.get_or_insert(p99);
        println!(
            "| {count} | {} | {} ({:+.0}% vs empty) | {per_event:.0} | {:.0} s |",
            ms(latency.p50),
            ms(p99),
            (p99.as_secs_f64() / baseline.as_secs_f64() - 1.0) * 100.0,
            fill_time.as_secs_f64()
        );
    }
    tokio::task::block_in_place(move || drop(client));
}

fn main() {
    let scale = Scale::from_env();
    let cluster = TestCluster::start(true);
    println!(
        "# synap-store-postgres benchmarks (scale: {}, sections: {})",
        scale.name,
        SECTIONS
            .iter()
            .filter(|s| wanted(s))
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        if wanted("append") {
            append_section(&cluster, &scale).await;
        }
        if wanted("catchup") {
            catchup_section(&cluster, &scale).await;
        }
        if wanted("scale") {
            scale_section(&cluster, &scale).await;
        }
    });
}
