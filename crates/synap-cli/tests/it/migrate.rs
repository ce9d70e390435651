//! `synap admin migrate --to postgres://…`: an embedded instance moves into an
//! empty PostgreSQL database, and the same commands then read the same notes
//! from there. A database that already holds data is refused.

use crate::support::{Synap, ids, items};
use serde_json::Value;
use synap_store_postgres::testing::TestCluster;

/// The items of a listing with positions removed (each backend numbers its own log).
fn without_positions(document: &Value) -> Vec<Value> {
    items(document)
        .iter()
        .map(|item| {
            let mut item = item.clone();
            if let Some(fields) = item.as_object_mut() {
                fields.remove("position");
            }
            item
        })
        .collect()
}

#[test]
fn migrate_copies_the_instance_and_the_notes_read_the_same_from_postgres() {
    let Some(cluster) = TestCluster::shared() else {
        eprintln!("skipped: no PostgreSQL to migrate into");
        return;
    };
    let synap = Synap::new();
    let lisbon = synap.add_note("# Lisbon\nPastéis near [[Alfama]]", &["--tag", "travel"]);
    let alfama = synap.add_note("# Alfama\nOld town", &[]);
    synap.ok(&[
        "note",
        "edit",
        &lisbon,
        "--content",
        "# Lisbon\nPastéis de nata near [[Alfama]]",
    ]);
    let gone = synap.add_note("deleted before the move", &[]);
    synap.ok(&["rm", &gone]);
    let embedded = synap.json(&["list"]);

    let url = cluster.fresh_database();
    let migrated = synap.run(&["admin", "migrate", "--to", &url]);
    assert_eq!(
        migrated.code, 0,
        "stderr: {}; stdout: {}",
        migrated.stderr, migrated.stdout
    );
    assert!(migrated.stdout.contains("copied"), "{}", migrated.stdout);
    assert!(
        migrated.stdout.contains("match the log"),
        "{}",
        migrated.stdout
    );
    assert!(
        !migrated.stdout.contains(&url) && !migrated.stderr.contains(&url),
        "the URL (which may hold a password) is not echoed"
    );

    let listed = synap.json(&["--database-url", &url, "list"]);
    assert_eq!(items(&listed), items(&embedded));
    let mut expected = vec![lisbon.clone(), alfama.clone()];
    expected.sort();
    let mut found = ids(&listed);
    found.sort();
    assert_eq!(found, expected);
    let shown = synap.ok(&["--database-url", &url, "show", &lisbon]);
    assert!(shown.contains("Pastéis de nata"), "{shown}");
    assert_eq!(
        without_positions(&synap.json(&["--database-url", &url, "history", &lisbon])),
        without_positions(&synap.json(&["history", &lisbon])),
        "history reads the same, positions aside",
    );
    synap.ok(&["--database-url", &url, "admin", "verify"]);

    // The target now holds data: a second migration is refused, in one line.
    let refused = synap.fails(&["admin", "migrate", "--to", &url], 2);
    assert!(refused.contains("not empty"), "{refused}");
}

#[test]
fn migrate_needs_an_embedded_source_and_a_postgres_target() {
    let synap = Synap::new();
    synap.add_note("something to move", &[]);
    let said = synap.fails(&["admin", "migrate", "--to", "sqlite:///tmp/other.db"], 2);
    assert!(said.contains("PostgreSQL"), "{said}");
    let said = synap.fails(
        &[
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "admin",
            "migrate",
            "--to",
            "postgres://nobody@127.0.0.1:1/none",
        ],
        2,
    );
    assert!(said.contains("embedded"), "{said}");

    let empty = Synap::new();
    let missing = empty.path("nothing-here");
    let run = empty
        .bare_command()
        .arg("--data-dir")
        .arg(&missing)
        .args([
            "admin",
            "migrate",
            "--to",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .output()
        .expect("synap runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no embedded database"), "{stderr}");
    assert!(!missing.exists(), "no database is created where none was");
}
