//! `synap user add` and acting as another user with `--user`.

use crate::support::{Synap, ids};

#[test]
fn each_user_sees_only_their_own_entities() {
    let synap = Synap::new();
    let owners = synap.add_note("the owner's note", &[]);
    let added = synap.json(&["user", "add", "bob@example.com"]);
    assert_eq!(added["email"], "bob@example.com");
    assert_eq!(added["role"], "member");

    let bobs = synap.ok(&["--user", "bob@example.com", "note", "add", "bob's note"]);
    assert_eq!(
        ids(&synap.json(&["--user", "bob@example.com", "list"])),
        [bobs.as_str()]
    );
    assert_eq!(ids(&synap.json(&["list"])), [owners.as_str()]);
    synap.fails(&["--user", "bob@example.com", "show", &owners], 3);

    let events = synap.json(&[
        "--user",
        "bob@example.com",
        "events",
        "--type",
        "entity.created",
    ]);
    let event = &events["items"][0];
    assert_eq!(event["metadata"]["source"], "cli");
    assert_eq!(
        event["metadata"]["actor"], added["id"],
        "events name the acting user"
    );
}

#[test]
fn a_taken_email_is_refused() {
    let synap = Synap::new();
    synap.ok(&["user", "add", "ann@example.com", "--role", "admin"]);
    let run = synap.run(&["user", "add", "ANN@example.com"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("ann@example.com") || run.stderr.contains("ANN@example.com"),
        "{}",
        run.stderr
    );
}
