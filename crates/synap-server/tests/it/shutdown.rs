//! Graceful shutdown of the real server: an in-flight request completes, an open
//! event stream ends, `serve` returns, and new connections are refused; a
//! request that never completes holds shutdown for at most the grace period.

use crate::server_harness::{Harness, SseClient, read_answer, request_head, test_config};
use std::time::{Duration, Instant};
use synap_server::ServerConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_and_ends_streams() {
    let mut h = Harness::system(test_config()).await;
    let ada = h.plain_user("ada@example.com").await;
    let token = h.token(ada.id, &["read"]).await;
    let mut live = h.serve().await;
    let addr = live.addr;

    // An open stream.
    let auth = format!("Bearer {token}");
    let mut stream = SseClient::connect(
        addr,
        "/v1/events/stream",
        &[("Authorization", auth.as_str())],
    )
    .await;
    assert_eq!(stream.status, 200);
    stream.next_block(WAIT).await.expect("the stream is open");

    // An in-flight request: the head and half of the body are sent.
    let body = r#"{"email":"ada@example.com","password":"correct horse battery"}"#;
    let (first, second) = body.split_at(body.len() / 2);
    let mut in_flight = TcpStream::connect(addr).await.expect("connect");
    let head = request_head(
        addr,
        "POST",
        "/v1/auth/register",
        &[("Content-Type", "application/json")],
        Some(body.len()),
    );
    in_flight
        .write_all(format!("{head}{first}").as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;

    live.stop();

    // The stream ends (after the account events it had queued).
    let mut queued = 0;
    while stream.next_event(WAIT).await.is_some() {
        queued += 1;
        assert!(queued < 10, "the stream ends on shutdown");
    }
    assert!(*h.state.shutdown.borrow());

    // The in-flight request still gets its whole answer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    in_flight
        .write_all(second.as_bytes())
        .await
        .expect("the rest of the body");
    let answer = read_answer(&mut in_flight).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["code"], "registration_closed");

    let returned = tokio::time::timeout(WAIT, live.task)
        .await
        .expect("serve returns")
        .expect("no panic");
    assert!(returned.is_ok());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_completes_holds_shutdown_only_for_the_grace_period() {
    let grace = Duration::from_millis(500);
    let mut h = Harness::system(ServerConfig {
        shutdown_grace: grace,
        ..test_config()
    })
    .await;
    let mut live = h.serve().await;
    let mut stuck = TcpStream::connect(live.addr).await.expect("connect");
    let head = request_head(
        live.addr,
        "POST",
        "/v1/auth/login",
        &[("Content-Type", "application/json")],
        Some(100),
    );
    stuck
        .write_all(format!("{head}{{\"email\":").as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    live.stop();
    let returned = tokio::time::timeout(WAIT, live.task)
        .await
        .expect("serve returns")
        .expect("no panic");
    assert!(returned.is_ok());
    let took = started.elapsed();
    assert!(took >= grace, "waited for the request: {took:?}");
    assert!(took < grace * 6, "but not much longer: {took:?}");
    drop(stuck);
}
