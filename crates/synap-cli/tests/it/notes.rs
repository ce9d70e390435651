//! Notes from creation through edits, history, revert and time travel.

use crate::support::{Synap, items};

#[test]
fn a_note_is_added_edited_reverted_and_read_at_a_past_version() {
    let synap = Synap::new();
    let id = synap.add_note("# Groceries\nmilk and eggs", &["--tag", "home"]);

    let shown = synap.ok(&["show", &id]);
    assert!(shown.contains("Groceries"), "{shown}");
    assert!(
        shown.contains("milk and eggs"),
        "the body is shown: {shown}"
    );
    assert!(shown.contains("home"), "{shown}");

    let edited = synap.ok(&[
        "note",
        "edit",
        &id,
        "--title",
        "Shopping",
        "--content",
        "bread",
        "--add-tag",
        "weekly",
        "--remove-tag",
        "home",
    ]);
    assert!(
        edited.contains("version 5"),
        "four changes after version 1: {edited}"
    );

    let now = synap.json(&["show", &id]);
    assert_eq!(now["title"], "Shopping");
    assert_eq!(now["body"], "bread");
    assert_eq!(now["tags"], serde_json::json!(["weekly"]));
    assert_eq!(now["version"], 5);

    let history = synap.json(&["history", &id]);
    let types: Vec<&str> = items(&history)
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "entity.created",
            "entity.title_changed",
            "entity.content_changed",
            "entity.tags_added",
            "entity.tags_removed"
        ]
    );
    let human = synap.ok(&["history", &id]);
    assert!(human.contains("\"Groceries\" → \"Shopping\""), "{human}");

    synap.ok(&["revert", &id, "--to-version", "1"]);
    let reverted = synap.json(&["show", &id]);
    assert_eq!(reverted["title"], "Groceries");
    assert_eq!(reverted["body"], "# Groceries\nmilk and eggs");
    assert_eq!(reverted["tags"], serde_json::json!(["home"]));
    assert!(
        reverted["version"].as_u64().unwrap_or(0) > 5,
        "revert appends: {reverted}"
    );

    let second = synap.json(&["show", &id, "--version", "2"]);
    assert_eq!(second["title"], "Shopping");
    assert_eq!(
        second["body"], "# Groceries\nmilk and eggs",
        "content changed only at version 3"
    );
    assert_eq!(second["version"], 2);
}

#[test]
fn show_at_a_time_gives_the_state_then() {
    let synap = Synap::new();
    let id = synap.add_note("first words", &[]);
    let history = synap.json(&["history", &id]);
    let created_at = items(&history)[0]["recorded_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    synap.ok(&["note", "edit", &id, "--content", "second words"]);

    let then = synap.json(&["show", &id, "--at", &created_at]);
    assert_eq!(then["body"], "first words");
    let before = synap.fails(&["show", &id, "--at", "2000-01-01T00:00:00Z"], 3);
    assert!(before.contains("did not exist yet"), "{before}");
}

#[test]
fn text_and_content_can_come_from_standard_input() {
    let synap = Synap::new();
    let id = synap
        .run_with_stdin(
            &["note", "add", "-", "--title", "Piped"],
            "line one\nline two\n",
        )
        .success();
    let note = synap.json(&["show", &id]);
    assert_eq!(note["title"], "Piped");
    assert_eq!(note["body"], "line one\nline two\n");

    synap
        .run_with_stdin(&["note", "edit", &id, "--content", "-"], "replaced")
        .success();
    assert_eq!(synap.json(&["show", &id])["body"], "replaced");
}

#[test]
fn capture_creates_the_note_at_once_and_queues_its_enrichment() {
    let synap = Synap::new();
    let captured = synap.json(&["capture", "remember the milk"]);
    let id = captured["entity_id"].as_str().unwrap_or_default();
    let note = synap.json(&["show", id]);
    assert_eq!(note["type"], "note");
    assert_eq!(note["body"], "remember the milk");
    // No worker runs in a one-shot command: the run waits for `serve` or `worker`.
    let run_id = captured["run_id"].as_str().expect("a run id");
    let run = synap.json(&["workflow", "show", run_id]);
    assert_eq!(run["run"]["workflow"], "capture.enrich");
    assert_eq!(run["run"]["status"], "queued");
}

#[test]
fn an_edit_that_changes_nothing_says_so() {
    let synap = Synap::new();
    let id = synap.add_note("same", &["--title", "Same"]);
    let said = synap.ok(&["note", "edit", &id, "--title", "Same"]);
    assert!(said.contains("nothing changed"), "{said}");
    assert_eq!(synap.json(&["show", &id])["version"], 1);
}

#[test]
fn note_add_takes_a_type() {
    let synap = Synap::new();
    let id = synap.add_note("a thought", &["--type", "idea"]);
    assert_eq!(synap.json(&["show", &id])["type"], "idea");
}
