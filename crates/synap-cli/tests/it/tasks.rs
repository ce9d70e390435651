//! `synap task add` and `synap task status`.

use crate::support::Synap;

#[test]
fn a_task_has_a_due_date_priority_and_status() {
    let synap = Synap::new();
    let id = synap.ok(&[
        "task",
        "add",
        "File taxes",
        "--due",
        "2025-04-15",
        "--priority",
        "3",
    ]);
    let task = synap.json(&["show", &id]);
    assert_eq!(task["type"], "task");
    assert_eq!(task["title"], "File taxes");
    assert_eq!(task["task"]["status"], "todo");
    assert_eq!(task["task"]["priority"], 3);
    assert_eq!(
        task["task"]["due_at"], "2025-04-15T00:00:00Z",
        "start of that day in the system time zone (UTC here)"
    );

    assert!(
        synap
            .ok(&["task", "status", &id, "in_progress"])
            .contains("in_progress")
    );
    synap.ok(&["task", "status", &id, "done"]);
    let done = synap.json(&["show", &id]);
    assert_eq!(done["task"]["status"], "done");
    assert!(done["task"]["completed_at"].is_string());
    assert!(
        synap
            .ok(&["task", "status", &id, "done"])
            .contains("already done")
    );
}

#[test]
fn due_accepts_timestamps_and_relative_days() {
    let synap = Synap::new();
    let exact = synap.ok(&["task", "add", "call", "--due", "2025-04-15T09:30:00+02:00"]);
    assert_eq!(
        synap.json(&["show", &exact])["task"]["due_at"],
        "2025-04-15T07:30:00Z"
    );

    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    for (word, date) in [
        ("today", today),
        ("tomorrow", today.tomorrow().expect("a next day")),
    ] {
        let id = synap.ok(&["task", "add", word, "--due", word]);
        let due = synap.json(&["show", &id])["task"]["due_at"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(due, format!("{date}T00:00:00Z"), "{word}");
    }
}
