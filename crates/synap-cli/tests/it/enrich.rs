//! `capture.enrich` end to end: a real `synap serve` (its workers run the
//! workflow), `POST /v1/capture` over HTTP, the run followed at
//! `/v1/workflows/runs/{id}`, the enriched note read back. The analyzer is the
//! local one, or a model provider mocked as a local HTTP server (Anthropic's
//! Messages API, an OpenAI-compatible endpoint that keeps failing).

use crate::support::{Server, Synap};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A model provider on a local port: answers every request with `status` and
/// `body`, counting requests.
struct MockProvider {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl MockProvider {
    fn start(status: u16, body: Value) -> MockProvider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                answer(stream, status, &body.to_string());
            }
        });
        MockProvider { url, requests }
    }
}

/// Reads one request (head and `Content-Length` body) and writes the answer.
fn answer(stream: TcpStream, status: u16, body: &str) {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut request_body = vec![0; length];
    let _ = reader.read_exact(&mut request_body);
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn a_capture_over_http_is_enriched_by_the_local_provider() {
    let synap = Synap::new();
    let server = Server::start(&synap, &[]);
    let (entity_id, run_id) = server.capture("Buy milk tomorrow at 3pm");
    let run = server.finished_run(&run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let steps: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["analyze", "apply", "embed", "notify"]);
    assert_eq!(
        run["steps"][2]["output"]["skipped"], "no embedding model is configured",
        "{run}"
    );

    let note = server.entity(&entity_id);
    assert_eq!(note["type"], "task", "{note}");
    let due: jiff::Timestamp = note["task"]["due_at"].as_str().unwrap().parse().unwrap();
    let tomorrow = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .unwrap();
    assert_eq!(
        due.to_zoned_datetime(jiff::tz::TimeZone::UTC).date(),
        tomorrow
    );
    assert_eq!(due.to_zoned_datetime(jiff::tz::TimeZone::UTC).hour(), 15);
    let tags: Vec<&str> = note["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"milk"), "{tags:?}");

    // The enrichment's events say where they came from.
    let (_, history) = server.call("GET", &format!("/v1/entities/{entity_id}/history"), None);
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["metadata"]["source"], "automation", "{last}");
    assert_eq!(last["metadata"]["workflow_run_id"], run_id.as_str());

    // The same run from the CLI, and the metrics.
    let shown = synap.json(&["workflow", "show", &run_id]);
    assert_eq!(shown["run"]["status"], "succeeded", "{shown}");
    let metrics = server.text("/metrics");
    assert!(
        metrics.contains(
            "synap_workflow_step_duration_seconds_count{workflow=\"capture.enrich\",step=\"apply\",outcome=\"ok\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE synap_workflow_runs gauge"),
        "{metrics}"
    );
}

#[test]
fn the_anthropic_provider_enriches_a_capture() {
    let mock = MockProvider::start(
        200,
        json!({
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "stop_reason": "tool_use",
            "content": [{
                "type": "tool_use",
                "id": "toolu_1",
                "name": "record_analysis",
                "input": {
                    "title": "Dentist appointment",
                    "tags": ["health", "dentist", "appointments"],
                    "intent": "event",
                    "due_at": "2026-12-10T09:30:00Z",
                    "priority": null
                }
            }]
        }),
    );
    let synap = Synap::new();
    let server = Server::start(
        &synap,
        &[
            ("SYNAP_AI_PROVIDER", "anthropic"),
            ("SYNAP_AI_BASE_URL", &mock.url),
            ("SYNAP_AI_API_KEY", "test-key"),
            ("SYNAP_AI_MODEL", "claude-test"),
        ],
    );
    let (entity_id, run_id) = server.capture("dentist on the 10th at half past nine");
    assert_eq!(server.finished_run(&run_id)["status"], "succeeded");
    let note = server.entity(&entity_id);
    assert_eq!(note["title"], "Dentist appointment", "{note}");
    assert_eq!(note["type"], "event");
    assert_eq!(note["metadata"]["starts_at"], "2026-12-10T09:30:00Z");
    assert_eq!(mock.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn when_the_model_keeps_failing_the_capture_falls_back_and_says_why() {
    let mock = MockProvider::start(503, json!({"error": {"message": "overloaded"}}));
    let synap = Synap::new();
    let server = Server::start(
        &synap,
        &[
            ("SYNAP_AI_PROVIDER", "openai"),
            ("SYNAP_AI_BASE_URL", &mock.url),
            ("SYNAP_AI_API_KEY", "test-key"),
            ("SYNAP_AI_MODEL", "gpt-test"),
        ],
    );
    let text = "Remember to water the plants while the neighbours are away in the mountains";
    let (entity_id, run_id) = server.capture(text);
    let run = server.finished_run(&run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let analyze = &run["steps"][0];
    assert_eq!(analyze["attempts"], 3, "{run}");
    let why = analyze["output"]["fallback"].as_str().unwrap();
    assert!(why.contains("503"), "{why}");
    assert_eq!(mock.requests.load(Ordering::SeqCst), 3);

    let note = server.entity(&entity_id);
    assert_eq!(note["tags"], json!(["unprocessed"]));
    assert_eq!(note["type"], "note");
    assert_eq!(note["title"], text);
}

#[test]
fn runs_that_cannot_be_retried_or_do_not_exist_say_so() {
    let synap = Synap::new();
    let server = Server::start(&synap, &[]);
    let (_, run_id) = server.capture("A quiet thought");
    server.finished_run(&run_id);

    let (status, problem) =
        server.call("POST", &format!("/v1/workflows/runs/{run_id}/retry"), None);
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "run_not_failed");
    assert_eq!(problem["status"], 409);
    assert_eq!(problem["current_status"], "succeeded");
    let stderr = synap.fails(&["workflow", "retry", &run_id], 4);
    assert!(stderr.contains("only a failed run"), "{stderr}");

    let missing = uuid_like();
    let (status, _) = server.call("GET", &format!("/v1/workflows/runs/{missing}"), None);
    assert_eq!(status, 404);
    synap.fails(&["workflow", "show", &missing], 3);

    let listed = synap.json(&["workflow", "runs", "--workflow", "capture.enrich"]);
    assert_eq!(listed["items"][0]["id"], run_id.as_str(), "{listed}");
}

fn uuid_like() -> String {
    "0192f0c1-5a2e-7c3d-8f10-3b7e2a9d4c01".to_string()
}
