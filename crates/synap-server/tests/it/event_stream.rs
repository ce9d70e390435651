//! `GET /v1/events/stream` end to end, against the real server on a loopback
//! port: writers append while a subscriber connects, disconnects and resumes;
//! a client that does not read is cut off while the server stays up.

use crate::server_harness::{
    Harness, SseClient, SseEvent, append_note, eventually, http, test_config,
};
use std::sync::Arc;
use std::time::Duration;
use synap_domain::UserId;
use synap_server::ServerConfig;
use synap_store::{Accounts, Store};
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(15);

/// Checks one received event against the stream's framing rules.
fn check_frame(event: &SseEvent, user: UserId) -> u64 {
    let data = event.json();
    let position = data["position"].as_u64().expect("a position");
    assert_eq!(event.id.as_deref(), Some(position.to_string().as_str()));
    assert_eq!(event.event.as_deref(), data["type"].as_str());
    assert_eq!(
        data["user_id"].as_str(),
        Some(user.to_string().as_str()),
        "another user's event reached the stream"
    );
    position
}

/// Spawns a writer appending `count` notes for `user`, pausing a little between.
fn writer(
    store: Arc<dyn Store>,
    user: UserId,
    name: &'static str,
    count: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for i in 0..count {
            append_note(store.as_ref(), user, &format!("{name} note {i}")).await;
            tokio::time::sleep(Duration::from_millis(((i * 7) % 5) as u64)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resuming_subscriber_gets_every_event_of_its_user_exactly_once_in_order() {
    let mut h = Harness::system(ServerConfig {
        sse_keep_alive: Duration::from_millis(500),
        ..test_config()
    })
    .await;
    let ada = h.plain_user("ada@example.com").await;
    let bob = h.plain_user("bob@example.com").await;
    let token = h.token(ada.id, &["read"]).await;
    let live = h.serve().await;
    let auth = format!("Bearer {token}");
    let store: Arc<dyn Store> = h.store.clone();

    const PER_WRITER: usize = 80;
    let writers = vec![
        writer(store.clone(), ada.id, "one", PER_WRITER),
        writer(store.clone(), ada.id, "two", PER_WRITER),
        writer(store.clone(), ada.id, "three", PER_WRITER),
        writer(store.clone(), bob.id, "bob", PER_WRITER),
    ];

    // Connect midway: once some of the writers' events exist.
    eventually(WAIT, "the first events", || async {
        h.events_of(ada.id).await.len() >= 20
    })
    .await;

    let mut received: Vec<u64> = Vec::new();
    let mut last_id: Option<String> = None;
    // Two interrupted connections, then one that stays until the end.
    for (round, take) in [(1, 25usize), (2, 40)] {
        let mut headers = vec![("Authorization", auth.as_str())];
        let resume;
        if let Some(id) = &last_id {
            resume = id.clone();
            headers.push(("Last-Event-ID", resume.as_str()));
        }
        let mut client = SseClient::connect(live.addr, "/v1/events/stream", &headers).await;
        assert_eq!(client.status, 200, "round {round}");
        assert_eq!(client.header("content-type"), Some("text/event-stream"));
        assert_eq!(client.header("cache-control"), Some("no-cache"));
        for _ in 0..take {
            let event = client.next_event(WAIT).await.expect("an event");
            received.push(check_frame(&event, ada.id));
            last_id = event.id.clone();
        }
        // Disconnect in the middle of the flow.
        drop(client);
    }

    let resume = last_id.clone().expect("a last id");
    let mut client = SseClient::connect(
        live.addr,
        "/v1/events/stream?after=0",
        &[("Authorization", auth.as_str()), ("Last-Event-ID", &resume)],
    )
    .await;
    assert_eq!(client.status, 200);
    for handle in writers {
        handle.await.expect("writer");
    }
    let expected: Vec<u64> = h
        .events_of(ada.id)
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    while received.len() < expected.len() {
        let event = client.next_event(WAIT).await.expect("an event");
        received.push(check_frame(&event, ada.id));
    }
    assert_eq!(received, expected, "every event exactly once, in order");
    let bobs: Vec<u64> = h
        .events_of(bob.id)
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert!(bobs.len() > PER_WRITER);
    assert!(received.iter().all(|p| !bobs.contains(p)));

    // Live after catch-up: a new event arrives on the open stream, and nothing else.
    append_note(store.as_ref(), bob.id, "not for ada").await;
    append_note(store.as_ref(), ada.id, "the last one").await;
    let event = client.next_event(WAIT).await.expect("the live event");
    let position = check_frame(&event, ada.id);
    assert_eq!(event.json()["type"], "entity.created");
    assert!(position > *received.last().expect("events"));

    drop(client);
    live.stop_and_wait(WAIT).await.expect("serve returns Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_resumes_after_a_position_and_keeps_alive_when_quiet() {
    let mut h = Harness::system(ServerConfig {
        sse_keep_alive: Duration::from_millis(200),
        ..test_config()
    })
    .await;
    let ada = h.plain_user("ada@example.com").await;
    let token = h.token(ada.id, &["read"]).await;
    for i in 0..5 {
        h.note(ada.id, &format!("note {i}")).await;
    }
    let all = h.events_of(ada.id).await;
    let from = all[all.len() - 3].position;
    let live = h.serve().await;
    let auth = format!("Bearer {token}");

    let mut client = SseClient::connect(
        live.addr,
        &format!("/v1/events/stream?after={from}"),
        &[("Authorization", auth.as_str())],
    )
    .await;
    assert_eq!(client.status, 200);
    let first = client.next_block(WAIT).await.expect("a block");
    assert!(
        first.retry.is_some(),
        "the first block suggests a retry delay"
    );
    for expected in &all[all.len() - 2..] {
        let event = client.next_event(WAIT).await.expect("an event");
        assert_eq!(check_frame(&event, ada.id), expected.position);
    }
    // Quiet: a keep-alive comment comes within the keep-alive period.
    let block = client.next_block(WAIT).await.expect("a block");
    assert!(block.event.is_none());
    assert_eq!(block.comments, ["keep-alive"]);

    // An empty Last-Event-ID is no Last-Event-ID: `after` applies.
    let mut empty = SseClient::connect(
        live.addr,
        &format!("/v1/events/stream?after={from}"),
        &[("Authorization", auth.as_str()), ("Last-Event-ID", "")],
    )
    .await;
    assert_eq!(empty.status, 200);
    let event = empty.next_event(WAIT).await.expect("an event");
    assert_eq!(check_frame(&event, ada.id), all[all.len() - 2].position);
    drop(empty);

    // Bad resume positions and missing credentials.
    let bad = SseClient::connect(
        live.addr,
        "/v1/events/stream",
        &[("Authorization", auth.as_str()), ("Last-Event-ID", "abc")],
    )
    .await;
    assert_eq!(bad.status, 400);
    let problem: serde_json::Value = serde_json::from_slice(&bad.error_body).expect("JSON");
    assert_eq!(problem["code"], "invalid_last_event_id");
    let anonymous = SseClient::connect(live.addr, "/v1/events/stream", &[]).await;
    assert_eq!(anonymous.status, 401);

    drop(client);
    live.stop_and_wait(WAIT).await.expect("serve returns Ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_does_not_read_is_cut_off_and_the_server_stays_up() {
    const BUFFER: usize = 8;
    let mut h = Harness::system(ServerConfig {
        sse_buffer_events: BUFFER,
        sse_keep_alive: Duration::from_millis(300),
        ..test_config()
    })
    .await;
    let ada = h.plain_user("ada@example.com").await;
    let token = h.token(ada.id, &["read"]).await;
    let live = h.serve().await;

    // A client with a tiny receive window that sends its request and never reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("buffer size");
    let mut slow = socket.connect(live.addr).await.expect("connect");
    let head = crate::server_harness::request_head(
        live.addr,
        "GET",
        "/v1/events/stream",
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    let metrics = h.state.metrics.clone();
    eventually(WAIT, "the stream to open", || async {
        metrics.streams_open() == 1
    })
    .await;

    // Writers append until the server gives up on the client.
    let store: Arc<dyn Store> = h.store.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (store, stop) = (store.clone(), stop.clone());
        let user = ada.id;
        writers.push(tokio::spawn(async move {
            let mut written = 0usize;
            let padding = "x".repeat(200);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && written < 5000 {
                append_note(store.as_ref(), user, &format!("w{w} {written} {padding}")).await;
                written += 1;
            }
            written
        }));
    }
    eventually(
        Duration::from_secs(60),
        "the slow client to be cut off",
        || async {
            metrics
                .render()
                .contains("synap_sse_streams_cut_slow_total 1\n")
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = 0;
    for writer in writers {
        written += writer.await.expect("writer");
    }
    assert_eq!(
        metrics.streams_open(),
        0,
        "the stream is closed on the server"
    );

    // The server still answers.
    let health = http(live.addr, "GET", "/health", &[], None).await;
    assert_eq!(health.status, 200);
    assert!(
        health
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );

    // What the client can still read is bounded, and then the stream ends.
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, slow.read_to_end(&mut raw))
        .await
        .expect("the connection ends")
        .expect("read");
    let answer = crate::server_harness::parse_answer(&raw);
    assert_eq!(answer.status, 200);
    assert!(
        raw.ends_with(b"0\r\n\r\n"),
        "the body was terminated by the server"
    );
    let frames = String::from_utf8_lossy(&answer.body)
        .matches("\nevent: ")
        .count();
    let total = h.events_of(ada.id).await.len();
    assert!(written > 0);
    assert!(
        frames < total,
        "the cut-off client got {frames} of {total} events"
    );
    let _ = h
        .store
        .local_owner()
        .await
        .expect("the store still answers");

    live.stop_and_wait(WAIT).await.expect("serve returns Ok");
}
