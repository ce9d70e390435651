//! `synap events`: reading the log with filters, and following it live.

use crate::support::{Synap, items};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn events_filter_by_position_type_and_aggregate() {
    let synap = Synap::new();
    let a = synap.add_note("a", &[]);
    synap.ok(&["note", "edit", &a, "--title", "A"]);
    let b = synap.add_note("b", &[]);

    let all = synap.json(&["events"]);
    let positions: Vec<u64> = items(&all)
        .iter()
        .map(|e| e["position"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {positions:?}"
    );
    let event = items(&all).last().cloned().unwrap_or_default();
    for field in [
        "position",
        "id",
        "aggregate_type",
        "aggregate_id",
        "version",
        "type",
        "data",
        "metadata",
        "recorded_at",
    ] {
        assert!(event.get(field).is_some(), "events carry {field}: {event}");
    }

    let created = synap.json(&["events", "--type", "entity.created"]);
    let created_ids: Vec<&str> = items(&created)
        .iter()
        .map(|e| e["aggregate_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(created_ids, [a.as_str(), b.as_str()]);

    let of_a = synap.json(&["events", "--aggregate", &a]);
    assert_eq!(items(&of_a).len(), 2);

    let last = positions.last().copied().unwrap_or(0);
    let after = synap.json(&["events", "--after", &(last - 1).to_string()]);
    assert_eq!(items(&after).len(), 1);

    let page = synap.json(&["events", "--limit", "2"]);
    assert_eq!(items(&page).len(), 2);
    assert_eq!(page["next_after"], items(&page)[1]["position"]);
}

#[test]
fn follow_prints_events_committed_by_another_process() {
    let synap = Synap::new();
    let first = synap.add_note("before following", &[]);
    let mut follower = synap
        .command()
        .args(["events", "--follow", "--json", "--type", "entity.created"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the follower starts");
    let stdout = follower.stdout.take().expect("a stdout pipe");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        let line = received
            .recv_timeout(Duration::from_secs(10))
            .expect("an event line within 10 s");
        serde_json::from_str::<serde_json::Value>(&line).expect("one JSON object per line")
    };
    assert_eq!(next()["aggregate_id"], first.as_str());

    let second = synap.add_note("while following", &[]);
    assert_eq!(next()["aggregate_id"], second.as_str());

    follower.kill().expect("the follower stops");
    let _ = follower.wait();
}
