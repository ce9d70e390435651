//! `synap link`, `links` and `unlink`.

use crate::support::{Synap, items};

#[test]
fn links_are_made_listed_both_ways_and_removed() {
    let synap = Synap::new();
    let plan = synap.add_note("The plan", &[]);
    let step = synap.add_note("A step", &[]);

    let relation = synap.ok(&["link", &plan, &step, "--kind", "contains"]);
    assert_eq!(
        relation.len(),
        36,
        "link prints the relation id: {relation}"
    );

    let out = synap.json(&["links", &plan, "--out"]);
    assert_eq!(items(&out).len(), 1);
    assert_eq!(items(&out)[0]["id"], relation.as_str());
    assert_eq!(items(&out)[0]["kind"], "contains");
    assert_eq!(items(&out)[0]["target_title"], "A step");
    assert!(items(&synap.json(&["links", &plan, "--in"])).is_empty());

    let backlinks = synap.json(&["links", &step, "--in"]);
    assert_eq!(items(&backlinks)[0]["source_id"], plan.as_str());
    let human = synap.ok(&["links", &step]);
    assert!(
        human.contains("The plan") && human.contains("contains"),
        "{human}"
    );

    let duplicate = synap.fails(&["link", &plan, &step, "--kind", "contains"], 4);
    assert!(duplicate.contains("already linked"), "{duplicate}");

    synap.ok(&["unlink", &relation]);
    assert!(items(&synap.json(&["links", &plan])).is_empty());
    let again = synap.fails(&["unlink", &relation], 3);
    assert!(again.contains("no such relation"), "{again}");
}

#[test]
fn the_default_kind_is_relates_to_and_kinds_are_checked() {
    let synap = Synap::new();
    let a = synap.add_note("a", &[]);
    let b = synap.add_note("b", &[]);
    synap.ok(&["link", &a, &b]);
    assert_eq!(items(&synap.json(&["links", &a]))[0]["kind"], "relates_to");

    let bad = synap.fails(&["link", &a, &b, "--kind", "Not A Kind"], 2);
    assert!(bad.starts_with("kind:"), "{bad}");
    let missing = synap.fails(&["link", &a, "01900000-0000-7000-8000-000000000000"], 3);
    assert!(
        missing.contains("no entity 01900000-0000-7000-8000-000000000000"),
        "{missing}"
    );
}
