//! `synap rm` and `synap restore`: soft delete and its undo.

use crate::support::{Synap, ids};

#[test]
fn a_deleted_note_is_hidden_refuses_edits_and_comes_back() {
    let synap = Synap::new();
    let id = synap.add_note("short-lived", &[]);

    let said = synap.ok(&["rm", &id]);
    assert!(
        said.contains("synap restore"),
        "rm says how to undo: {said}"
    );
    assert!(ids(&synap.json(&["list"])).is_empty());
    assert_eq!(ids(&synap.json(&["list", "--deleted"])), [id.as_str()]);
    assert!(
        synap.json(&["show", &id])["deleted_at"].is_string(),
        "a deleted entity can still be shown"
    );

    let refused = synap.fails(&["note", "edit", &id, "--title", "x"], 1);
    assert!(
        refused.contains("is deleted") && refused.contains("synap restore"),
        "{refused}"
    );
    assert!(synap.ok(&["rm", &id]).contains("already deleted"));

    synap.ok(&["restore", &id]);
    assert_eq!(ids(&synap.json(&["list"])), [id.as_str()]);
    assert!(synap.json(&["show", &id]).get("deleted_at").is_none());
    assert!(synap.ok(&["restore", &id]).contains("nothing to restore"));
}
