//! `synap list`: filters, paging and the JSON page shape.

use crate::support::{Synap, ids, items};

#[test]
fn list_filters_by_type_tag_status_and_deletion() {
    let synap = Synap::new();
    let tagged = synap.add_note("tagged note", &["--tag", "Work"]);
    let plain = synap.add_note("plain note", &[]);
    let task = synap.ok(&["task", "add", "ship it"]);
    synap.ok(&["task", "status", &task, "done"]);
    let gone = synap.add_note("to delete", &[]);
    synap.ok(&["rm", &gone]);

    let all = ids(&synap.json(&["list"]));
    assert_eq!(all.len(), 3, "deleted entities are not listed: {all:?}");
    assert_eq!(all[0], task, "most recently updated first");

    assert_eq!(
        ids(&synap.json(&["list", "--type", "task"])),
        [task.as_str()]
    );
    assert_eq!(
        ids(&synap.json(&["list", "--tag", "work"])),
        [tagged.as_str()],
        "tags match case-insensitively"
    );
    assert_eq!(
        ids(&synap.json(&["list", "--status", "done"])),
        [task.as_str()]
    );
    assert!(ids(&synap.json(&["list", "--status", "in_progress"])).is_empty());
    assert_eq!(ids(&synap.json(&["list", "--deleted"])), [gone.as_str()]);
    assert!(ids(&synap.json(&["list", "--type", "note"])).contains(&plain));

    let table = synap.ok(&["list"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.contains("TITLE"),
        "{table}"
    );
    assert!(
        table.contains("ship it") && table.contains("done"),
        "{table}"
    );
}

#[test]
fn list_pages_with_an_opaque_cursor() {
    let synap = Synap::new();
    for n in 0..5 {
        synap.add_note(&format!("note {n}"), &[]);
    }
    let first = synap.json(&["list", "--limit", "2"]);
    assert_eq!(items(&first).len(), 2);
    let item = &items(&first)[0];
    for field in [
        "id",
        "type",
        "title",
        "preview",
        "tags",
        "version",
        "created_at",
        "updated_at",
    ] {
        assert!(item.get(field).is_some(), "items carry {field}: {item}");
    }
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next_cursor while more remain")
        .to_string();

    let second = synap.json(&["list", "--limit", "2", "--cursor", &cursor]);
    let third_cursor = second["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let third = synap.json(&["list", "--limit", "2", "--cursor", &third_cursor]);
    assert!(
        third.get("next_cursor").is_none(),
        "the last page has no cursor: {third}"
    );

    let mut seen: Vec<String> = [ids(&first), ids(&second), ids(&third)].concat();
    assert_eq!(seen.len(), 5);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "no entity twice across pages");

    let human = synap.ok(&["list", "--limit", "2"]);
    assert!(
        human.contains("--cursor"),
        "people are told how to get more: {human}"
    );
}

#[test]
fn an_empty_store_says_how_to_start() {
    let synap = Synap::new();
    assert!(synap.ok(&["list"]).contains("synap note add"));
    assert!(items(&synap.json(&["list"])).is_empty());
}
