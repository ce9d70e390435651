//! The exit-code contract: 2 usage, 3 not found, 4 conflict, 1 error — each with
//! one line on standard error that says what to do.

use crate::support::Synap;

const MISSING: &str = "01900000-0000-7000-8000-000000000000";

#[test]
fn invalid_ids_are_usage_errors() {
    let synap = Synap::new();
    for args in [
        vec!["show", "not-an-id"],
        vec!["note", "edit", "not-an-id", "--title", "x"],
        vec!["rm", "not-an-id"],
        vec!["history", "not-an-id"],
        vec!["unlink", "not-an-id"],
        vec!["events", "--aggregate", "not-an-id"],
    ] {
        let message = synap.fails(&args, 2);
        assert!(
            message.starts_with("not an id: \"not-an-id\""),
            "{args:?}: {message}"
        );
    }
}

#[test]
fn clap_usage_errors_exit_2() {
    let synap = Synap::new();
    assert_eq!(synap.run(&["no-such-command"]).code, 2);
    assert_eq!(synap.run(&["task", "add", "x", "--priority", "4"]).code, 2);
    assert_eq!(synap.run(&["task", "status", MISSING, "finished"]).code, 2);
    assert_eq!(
        synap
            .run(&[
                "show",
                MISSING,
                "--at",
                "2025-01-01T00:00:00Z",
                "--version",
                "1"
            ])
            .code,
        2
    );
}

#[test]
fn other_usage_errors_are_one_line() {
    let synap = Synap::new();
    let due = synap.fails(&["task", "add", "x", "--due", "someday"], 2);
    assert!(due.starts_with("--due: cannot read \"someday\""), "{due}");
    let nothing = synap.fails(&["note", "edit", MISSING], 2);
    assert!(nothing.starts_with("nothing to change"), "{nothing}");
    let limit = synap.fails(&["list", "--limit", "501"], 2);
    assert!(limit.contains("use 1 to 500"), "{limit}");
    let cursor = synap.fails(&["list", "--cursor", "garbage"], 2);
    assert!(cursor.contains("cursor"), "{cursor}");
    let at = synap.fails(&["show", MISSING, "--at", "yesterday"], 2);
    assert!(at.starts_with("--at: not a timestamp"), "{at}");
    let event_type = synap.fails(&["events", "--type", "entity.create"], 2);
    assert!(event_type.contains("unknown event type"), "{event_type}");
}

#[test]
fn unknown_things_exit_3() {
    let synap = Synap::new();
    for args in [
        vec!["show", MISSING],
        vec!["history", MISSING],
        vec!["links", MISSING],
        vec!["rm", MISSING],
        vec!["note", "edit", MISSING, "--title", "x"],
    ] {
        let message = synap.fails(&args, 3);
        assert!(
            message.starts_with(&format!("no entity {MISSING}")),
            "{args:?}: {message}"
        );
        assert!(message.contains("synap list"), "says what to do: {message}");
    }
    let id = synap.add_note("one version", &[]);
    let version = synap.fails(&["show", &id, "--version", "9"], 3);
    assert!(
        version.contains("no version 9") && version.contains("1 to 1"),
        "{version}"
    );
    let revert = synap.fails(&["revert", &id, "--to-version", "9"], 3);
    assert!(revert.contains("no version 9"), "{revert}");
}

#[test]
fn a_stale_expected_version_is_a_conflict_naming_the_current_version() {
    let synap = Synap::new();
    let id = synap.add_note("v1", &[]);
    synap.ok(&[
        "note",
        "edit",
        &id,
        "--content",
        "v2",
        "--expect-version",
        "1",
    ]);
    let version = synap.json(&["show", &id])["version"].as_u64().unwrap_or(0);

    let message = synap.fails(
        &[
            "note",
            "edit",
            &id,
            "--content",
            "v3",
            "--expect-version",
            "1",
        ],
        4,
    );
    assert!(
        message.contains(&format!("current version is {version}")),
        "{message}"
    );
    assert!(
        message.contains("re-read") && message.contains(&format!("--expect-version {version}")),
        "{message}"
    );
    assert_eq!(
        synap.json(&["show", &id])["body"],
        "v2",
        "nothing was written"
    );
}

#[test]
fn an_unknown_user_exits_3_and_says_how_to_add_one() {
    let synap = Synap::new();
    let message = synap.fails(&["--user", "ghost@example.com", "list"], 3);
    assert_eq!(
        message,
        "no user ghost@example.com; add one with `synap user add ghost@example.com`"
    );
}

#[test]
fn an_unreachable_postgres_is_a_one_line_error_without_credentials() {
    let synap = Synap::new();
    let message = synap.fails(
        &[
            "--database-url",
            // Port 1 on loopback: nothing listens there.
            "postgres://synap:secret@127.0.0.1:1/synap",
            "list",
        ],
        1,
    );
    assert!(
        message.starts_with("the database cannot be reached")
            && message.contains("check that PostgreSQL is running"),
        "{message}"
    );
    assert!(
        !message.contains("secret"),
        "credentials are never echoed: {message}"
    );
}

#[test]
fn task_fields_on_a_note_are_refused() {
    let synap = Synap::new();
    let id = synap.add_note("not a task", &[]);
    let message = synap.fails(&["task", "status", &id, "done"], 1);
    assert!(message.contains("is not a task"), "{message}");
}
