//! Many processes, one service: two `synap serve` processes on one PostgreSQL
//! database. A write through one is readable through the other at once, an SSE
//! client on one receives events written through the other, and writers going
//! through different processes get correct version conflicts.

use crate::support::{Synap, http, spawn_server};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use synap_store_postgres::testing::TestCluster;

/// A running `synap serve`, terminated when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(synap: &Synap, url: &str) -> Server {
        let mut command = synap.bare_command();
        command
            .args(["--database-url", url, "serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::inherit());
        let (child, address, first) = spawn_server(command);
        assert!(first.contains("(postgres)"), "{first}");
        Server { child, address }
    }

    /// One HTTP/1.1 request; returns the status and the parsed JSON body.
    fn request(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        http(&self.address, method, path, token, body)
    }

    /// Opens the event stream; every `data:` line arrives on the channel.
    fn subscribe(&self, token: &str) -> mpsc::Receiver<Value> {
        let mut stream = TcpStream::connect(&self.address).expect("connect");
        write!(
            stream,
            "GET /v1/events/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n\r\n",
            self.address
        )
        .expect("write");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                // Chunked framing puts sizes on their own lines; data lines are whole.
                if let Some(data) = line.strip_prefix("data: ")
                    && let Ok(event) = serde_json::from_str::<Value>(data)
                    && sender.send(event).is_err()
                {
                    return;
                }
            }
        });
        receiver
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
    }
}

#[test]
fn two_servers_on_one_database_act_as_one_service() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database();
    let synap = Synap::new();
    let created = synap.json(&["--database-url", &url, "token", "create"]);
    let token = created["token"].as_str().expect("a token").to_string();
    let (one, two) = (Server::start(&synap, &url), Server::start(&synap, &url));

    // A subscriber on server two, before anything is written.
    let events = two.subscribe(&token);

    // Written through one, read through two at once.
    let (status, note) = one.request(
        "POST",
        "/v1/entities",
        &token,
        Some(json!({"type": "note", "content": "written through server one"})),
    );
    assert_eq!(status, 201, "{note}");
    let id = note["id"].as_str().expect("an id").to_string();
    let (status, read) = two.request("GET", &format!("/v1/entities/{id}"), &token, None);
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["title"], note["title"]);
    assert_eq!(read["version"], 1);

    // The SSE client on two receives the event written through one.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events
            .recv_timeout(left)
            .expect("the event written through server one, on server two's stream");
        if event["aggregate_id"] == note["id"] {
            assert_eq!(event["type"], "entity.created");
            break;
        }
    }

    // Both servers change version 1: exactly one wins, the other gets a
    // conflict naming the current version.
    let change = |server: &Server, title: &str| {
        server.request(
            "PATCH",
            &format!("/v1/entities/{id}"),
            &token,
            Some(json!({"title": title, "expected_version": 1})),
        )
    };
    let (first, _) = change(&one, "changed through one");
    let (second, problem) = change(&two, "changed through two");
    assert_eq!(first, 200);
    assert_eq!(second, 409, "{problem}");
    assert_eq!(problem["code"], "conflict");
    assert_eq!(problem["current_version"], 2);
    let (_, read) = two.request("GET", &format!("/v1/entities/{id}"), &token, None);
    assert_eq!(read["title"], "changed through one");

    // Each server's /health names the backend.
    let (status, health) = two.request("GET", "/health", &token, None);
    assert_eq!(status, 200);
    assert_eq!(health["database"]["backend"], "postgres", "{health}");
}
