//! `webhook.deliver` on SQLite and PostgreSQL, driven by a real worker: a note's
//! events reach a receiver on a local port, signed so that the independent
//! implementation of the Standard Webhooks authors (the `standardwebhooks` package
//! from PyPI) verifies them; a receiver that keeps failing gets retries with
//! backoff until the subscription is disabled, with the reason; a loopback target
//! is refused when private targets are not allowed (SSRF).

use super::Fixture;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use synap_domain::command::Change;
use synap_flows::webhooks::{WebhookConfig, new_secret};
use synap_store::PageRequest;
use synap_store::webhooks::{NewWebhook, WEBHOOK_DELIVER};
use synap_store::workflow::{RunFilter, RunStatus};
use uuid::Uuid;

/// One request a receiver got: lower-cased headers and the body.
#[derive(Debug, Clone)]
struct Received {
    headers: BTreeMap<String, String>,
    body: String,
}

/// An HTTP receiver on a loopback port that answers every request with `status`.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/synap", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut headers = BTreeMap::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
                    }
                }
                let length = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                sink.lock().unwrap().push(Received {
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn subscribe(f: &Fixture, url: &str, types: &[&str]) -> (Uuid, String) {
    // Any bytes make a valid secret; tests need no randomness.
    let secret = new_secret([7; 32]);
    let made = f
        .store
        .create_webhook(
            &f.owner,
            NewWebhook {
                id: Uuid::now_v7(),
                url: url.into(),
                event_types: types.iter().map(|t| t.to_string()).collect(),
                description: None,
                secret: secret.clone(),
            },
        )
        .await
        .unwrap();
    (made.id, secret)
}

fn allowing_private() -> WebhookConfig {
    WebhookConfig {
        allow_private: true,
        disable_after: 3,
        ..WebhookConfig::default()
    }
}

async fn deliveries(f: &Fixture) -> Vec<synap_store::workflow::RunView> {
    f.store
        .list_runs(
            &f.owner,
            &RunFilter {
                status: None,
                workflow: Some(WEBHOOK_DELIVER.into()),
            },
            &PageRequest {
                limit: Some(100),
                cursor: None,
            },
        )
        .await
        .unwrap()
        .items
}

/// Runs `python3 -c SCRIPT ARGS…`, installing the PyPI package first if missing.
fn verify_with_standardwebhooks(secret: &str, received: &Received) -> Result<(), String> {
    let import = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !import.status.success() {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "standardwebhooks"])
            .output()
            .map_err(|e| format!("pip: {e}"))?;
        assert!(
            installed.status.success(),
            "pip install standardwebhooks failed: {}",
            String::from_utf8_lossy(&installed.stderr)
        );
    }
    let headers = serde_json::to_string(&received.headers).unwrap();
    let script = "import sys, json\n\
        from standardwebhooks.webhooks import Webhook\n\
        payload = Webhook(sys.argv[1]).verify(sys.argv[3], json.loads(sys.argv[2]))\n\
        print(payload['type'])";
    let output = Command::new("python3")
        .args(["-c", script, secret, &headers, &received.body])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

pub async fn events_reach_the_receiver_signed_per_standard_webhooks(f: Fixture) {
    // The receiver checks timestamps against its own clock: deliver at real time.
    f.clock.set(Timestamp::now());
    let receiver = Receiver::start(204);
    let (hook, secret) = subscribe(
        &f,
        &receiver.url,
        &["entity.created", "entity.title_changed"],
    )
    .await;
    let id = super::note(&f, "Webhooks are signed").await;
    f.store
        .execute(super::change(&f, id, vec![Change::Title("Signed".into())]))
        .await
        .unwrap();
    let report = f.worker_with(allowing_private()).tick().await.unwrap();
    assert_eq!(report.runs_succeeded, 2, "{report:?}");

    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let types: Vec<String> = received
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        types.contains(&"entity.created".to_string())
            && types.contains(&"entity.title_changed".to_string()),
        "{types:?}"
    );
    for request in &received {
        assert!(request.headers["webhook-id"].starts_with("msg_"));
        assert!(request.headers["webhook-signature"].starts_with("v1,"));
        assert_eq!(request.headers["content-type"], "application/json");
        verify_with_standardwebhooks(&secret, request)
            .unwrap_or_else(|e| panic!("standardwebhooks refused the delivery: {e}"));
    }
    // A tampered body is refused by the same verifier, so the check above means something.
    let mut tampered = received[0].clone();
    tampered.body = tampered.body.replace("Webhooks", "Hooks");
    assert!(verify_with_standardwebhooks(&secret, &tampered).is_err());

    let webhook = f.store.webhook(&f.owner, hook).await.unwrap().unwrap();
    assert_eq!(webhook.consecutive_failures, 0);
    assert!(webhook.last_success_at.is_some());
    assert!(
        deliveries(&f)
            .await
            .iter()
            .all(|r| r.status == RunStatus::Succeeded)
    );
}

pub async fn a_failing_receiver_is_retried_then_disabled_with_the_reason(f: Fixture) {
    let receiver = Receiver::start(500);
    let (hook, _) = subscribe(&f, &receiver.url, &["*"]).await;
    super::note(&f, "Nobody is listening").await;
    let worker = f.worker_with(allowing_private());
    let report = worker.tick().await.unwrap();
    assert_eq!(report.runs_succeeded + report.runs_failed, 0, "{report:?}");
    assert_eq!(receiver.received().len(), 1);
    // Retried only after its backoff.
    worker.tick().await.unwrap();
    assert_eq!(receiver.received().len(), 1, "no retry before the backoff");
    for _ in 0..2 {
        f.advance(7200);
        worker.tick().await.unwrap();
    }
    assert_eq!(receiver.received().len(), 3);
    let webhook = f.store.webhook(&f.owner, hook).await.unwrap().unwrap();
    assert!(webhook.disabled_at.is_some(), "{webhook:?}");
    let reason = webhook.disabled_reason.unwrap();
    assert!(
        reason.contains("3 delivery attempts failed in a row")
            && reason.contains("the receiver answered HTTP 500"),
        "{reason}"
    );
    let runs = deliveries(&f).await;
    assert_eq!(
        runs[0].status,
        RunStatus::Failed,
        "the run stops once disabled"
    );

    // Nothing more is delivered or even enqueued for a disabled subscription.
    super::note(&f, "Still nobody").await;
    f.advance(7200);
    worker.tick().await.unwrap();
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(deliveries(&f).await.len(), 1);
}

pub async fn a_loopback_target_is_refused_unless_allowed(f: Fixture) {
    let receiver = Receiver::start(204);
    let (hook, _) = subscribe(&f, &receiver.url, &["*"]).await;
    super::note(&f, "Do not call my neighbours").await;
    let report = f
        .worker_with(WebhookConfig::default())
        .tick()
        .await
        .unwrap();
    assert_eq!(report.runs_failed, 1, "{report:?}");
    assert!(receiver.received().is_empty(), "nothing was sent");
    let run = f.run(deliveries(&f).await[0].id).await;
    let error = run.steps[0].last_error.clone().unwrap();
    assert!(
        error.contains("refused") && error.contains("a loopback address"),
        "{error}"
    );
    let webhook = f.store.webhook(&f.owner, hook).await.unwrap().unwrap();
    assert_eq!(webhook.consecutive_failures, 1);
    assert!(webhook.last_error.unwrap().contains("loopback"));
}

pub async fn a_capture_is_announced_to_capture_enriched_subscribers(f: Fixture) {
    let receiver = Receiver::start(204);
    subscribe(&f, &receiver.url, &["capture.enriched"]).await;
    let (id, _, run_id) = f.capture("Buy milk tomorrow at 3pm").await;
    let worker = f.worker_with(allowing_private());
    // The enrichment run, then the delivery it enqueued.
    worker.tick().await.unwrap();
    worker.tick().await.unwrap();
    let run = f.run(run_id).await;
    assert_eq!(run.run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.steps[3].name, "notify");
    assert_eq!(
        run.steps[3].output,
        Some(serde_json::json!({ "notified": 1 }))
    );
    let received = receiver.received();
    assert_eq!(received.len(), 1, "only the announcement, no raw events");
    let message: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(message["type"], "capture.enriched");
    assert_eq!(message["data"]["entity_id"], id.0.to_string());
    assert_eq!(message["data"]["type"], "task");
    assert_eq!(message["data"]["run_id"], run_id.to_string());
    assert!(message["data"]["due_at"].is_string(), "{message}");
}
