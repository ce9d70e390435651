//! Webhooks end to end: a real `synap serve` (private targets allowed for the
//! test) delivers a note's event to a receiver on a local port, signed so that
//! the `standardwebhooks` package from PyPI verifies it; the subscription shows
//! the success.

use crate::support::{Server, Synap};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// A receiver that answers 200 and hands each request's headers and body over.
fn receiver() -> (String, mpsc::Receiver<(Value, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut headers = serde_json::Map::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    let name = name.trim().to_ascii_lowercase();
                    if name == "content-length" {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    headers.insert(name, Value::String(value.trim().into()));
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = write!(
                reader.into_inner(),
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = sender.send((
                Value::Object(headers),
                String::from_utf8_lossy(&body).into(),
            ));
        }
    });
    (url, received)
}

#[test]
fn a_running_server_delivers_signed_events() {
    let synap = Synap::new();
    let server = Server::start(&synap, &[("SYNAP_WEBHOOK_ALLOW_PRIVATE", "1")]);
    let (url, received) = receiver();
    let (status, made) = server.call(
        "POST",
        "/v1/webhooks",
        Some(json!({ "url": url, "event_types": ["entity.created"] })),
    );
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap().to_string();

    let (status, note) = server.call(
        "POST",
        "/v1/entities",
        Some(json!({ "type": "note", "content": "Tell my automation" })),
    );
    assert_eq!(status, 201, "{note}");
    let (headers, body) = received
        .recv_timeout(Duration::from_secs(30))
        .expect("the delivery arrives");
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["type"], "entity.created");
    assert_eq!(message["data"]["aggregate_id"], note["id"]);

    if Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "standardwebhooks"])
            .output()
            .expect("pip");
        assert!(
            installed.status.success(),
            "pip install standardwebhooks failed"
        );
    }
    let verified = Command::new("python3")
        .args([
            "-c",
            "import sys, json\nfrom standardwebhooks.webhooks import Webhook\n\
             Webhook(sys.argv[1]).verify(sys.argv[3], json.loads(sys.argv[2]))",
            &secret,
            &headers.to_string(),
            &body,
        ])
        .output()
        .expect("python3");
    assert!(
        verified.status.success(),
        "standardwebhooks refused the delivery: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // The subscription records the success (right after the receiver answered).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, hook) = server.call("GET", &format!("/v1/webhooks/{id}"), None);
        if hook.get("last_success_at").is_some() {
            assert_eq!(hook["status"], "active");
            assert_eq!(hook["consecutive_failures"], 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{hook}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `synap webhook add|list|show|rm` manage the acting user's subscriptions on
/// the store `/v1/webhooks` serves: a private target is refused unless allowed,
/// the secret is shown once (never by `list` or `show`), a bad event type is a
/// one-line usage error (exit 2, like other invalid input), and a deleted
/// subscription is gone.
#[test]
fn the_cli_adds_lists_shows_and_deletes_subscriptions() {
    let synap = Synap::new();
    let refused = synap.fails(
        &[
            "webhook",
            "add",
            "http://127.0.0.1:9/hook",
            "--event",
            "entity.created",
        ],
        2,
    );
    assert!(
        refused.contains("SYNAP_WEBHOOK_ALLOW_PRIVATE=1"),
        "{refused}"
    );
    let bad_type = synap.fails(
        &[
            "webhook",
            "add",
            "https://hooks.example.com/x",
            "--event",
            "entity.exploded",
        ],
        2,
    );
    assert!(bad_type.contains("entity.exploded"), "{bad_type}");

    let made = synap.json(&[
        "webhook",
        "add",
        "https://hooks.example.com/synap",
        "--event",
        "entity.created",
        "--event",
        "entity.deleted",
        "--description",
        "my automation",
    ]);
    let id = made["id"].as_str().expect("an id").to_string();
    assert!(
        made["secret"].as_str().unwrap().starts_with("whsec_"),
        "{made}"
    );
    assert_eq!(made["status"], "active");
    assert_eq!(
        made["event_types"],
        json!(["entity.created", "entity.deleted"])
    );

    let allowed = synap
        .command()
        .args(["webhook", "add", "http://127.0.0.1:9/hook", "--event", "*"])
        .env("SYNAP_WEBHOOK_ALLOW_PRIVATE", "1")
        .output()
        .expect("synap runs");
    assert!(allowed.status.success(), "{allowed:?}");
    assert!(String::from_utf8_lossy(&allowed.stdout).contains("signing secret"));

    let listed = synap.json(&["webhook", "list"]);
    let items = crate::support::items(&listed);
    assert_eq!(items.len(), 2, "{listed}");
    assert_eq!(items[0]["id"], made["id"]);
    assert!(items.iter().all(|w| w.get("secret").is_none()), "{listed}");
    let table = synap.ok(&["webhook", "list"]);
    assert!(table.contains("https://hooks.example.com/synap"), "{table}");

    let shown = synap.ok(&["webhook", "show", &id]);
    assert!(shown.contains("status:   active"), "{shown}");
    assert!(shown.contains("my automation"), "{shown}");
    assert!(!shown.contains("whsec_"), "{shown}");

    assert!(synap.ok(&["webhook", "rm", &id]).contains(&id));
    let gone = synap.fails(&["webhook", "show", &id], 3);
    assert!(gone.contains("synap webhook list"), "{gone}");
    synap.fails(&["webhook", "rm", &id], 3);
    assert_eq!(
        crate::support::items(&synap.json(&["webhook", "list"])).len(),
        1
    );
}
