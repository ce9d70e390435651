//! `synap admin verify`, `rebuild` and `stats`.

use crate::support::Synap;

fn populate(synap: &Synap) -> (String, String) {
    let a = synap.add_note("alpha body", &["--tag", "x"]);
    let b = synap.add_note("beta body links [[alpha body]]", &[]);
    synap.ok(&["note", "edit", &a, "--content", "alpha body, edited"]);
    let task = synap.ok(&[
        "task",
        "add",
        "check",
        "--due",
        "2025-06-01",
        "--priority",
        "1",
    ]);
    synap.ok(&["task", "status", &task, "done"]);
    synap.ok(&["link", &a, &task]);
    synap.ok(&["rm", &b]);
    (a, task)
}

#[test]
fn verify_passes_on_a_populated_store_and_after_a_rebuild() {
    let synap = Synap::new();
    populate(&synap);
    let said = synap.ok(&["admin", "verify"]);
    assert!(said.contains("match"), "{said}");
    let report = synap.json(&["admin", "verify"]);
    assert_eq!(report["differences"], serde_json::json!([]));
    assert!(
        report["events_checked"].as_u64().unwrap_or(0) >= 8,
        "{report}"
    );

    let rebuilt = synap.run(&["admin", "rebuild"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    assert!(rebuilt.stdout.contains("rebuilt"), "{}", rebuilt.stdout);
    assert!(
        rebuilt.stderr.is_empty(),
        "no progress bar when stderr is not a terminal: {:?}",
        rebuilt.stderr
    );
    synap.ok(&["admin", "verify"]);
}

#[test]
fn stats_reports_sizes_as_json_and_for_people() {
    let synap = Synap::new();
    synap.add_note("twelve bytes", &[]);
    synap.add_note("eleven byte", &[]);
    let stats = synap.json(&["admin", "stats"]);
    for field in [
        "events",
        "entities",
        "relations",
        "users",
        "content_versions",
        "content_bytes",
        "bytes_on_disk",
        "amplification",
    ] {
        assert!(stats[field].is_number(), "stats has {field}: {stats}");
    }
    assert_eq!(stats["entities"], 2);
    assert_eq!(stats["content_versions"], 2);
    assert_eq!(stats["content_bytes"], 23);
    assert!(stats["events"].as_u64().unwrap_or(0) >= 2);
    let on_disk = stats["bytes_on_disk"].as_f64().unwrap_or(0.0);
    assert!(on_disk > 0.0);
    let amplification = stats["amplification"].as_f64().unwrap_or(0.0);
    assert!((amplification - on_disk / 23.0).abs() < 1.0, "{stats}");

    let human = synap.ok(&["admin", "stats"]);
    for label in [
        "events",
        "entities",
        "relations",
        "content versions",
        "content bytes",
        "bytes on disk",
        "amplification",
    ] {
        assert!(human.contains(label), "{label} in {human}");
    }
}
