//! Settings layering: defaults → `<data-dir>/synap.toml` → `SYNAP_*` → flags.

use crate::support::{Synap, ids};

#[test]
fn the_default_database_lives_in_the_data_dir() {
    let synap = Synap::new();
    synap.add_note("x", &[]);
    assert!(synap.path("synap.db").exists());
}

#[test]
fn the_environment_names_the_data_dir() {
    let synap = Synap::new();
    let id = synap.add_note("x", &[]);
    let listed = synap
        .bare_command()
        .env("SYNAP_DATA_DIR", synap.data_dir())
        .args(["list", "--json"])
        .output();
    let listed = listed.expect("synap runs");
    assert!(listed.status.success());
    let document: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(ids(&document), [id.as_str()]);
}

#[test]
fn the_file_picks_the_database_the_environment_beats_it_and_a_flag_beats_both() {
    let synap = Synap::new();
    let url = |name: &str| format!("sqlite://{}", synap.path(name).display());
    std::fs::write(
        synap.path("synap.toml"),
        format!("database_url = {:?}\n", url("from-file.db")),
    )
    .expect("write");

    synap.add_note("x", &[]);
    assert!(synap.path("from-file.db").exists());
    assert!(!synap.path("synap.db").exists());

    let run = |command: &mut std::process::Command| {
        let output = command
            .args(["note", "add", "y"])
            .output()
            .expect("synap runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(synap
        .command()
        .env("SYNAP_DATABASE_URL", url("from-env.db")));
    assert!(synap.path("from-env.db").exists());

    run(synap
        .command()
        .env("SYNAP_DATABASE_URL", url("from-env.db"))
        .args(["--database-url", &url("from-flag.db")]));
    assert!(synap.path("from-flag.db").exists());
}

#[test]
fn a_settings_file_with_an_unknown_key_is_refused() {
    let synap = Synap::new();
    std::fs::write(
        synap.path("synap.toml"),
        "databse_url = \"sqlite://x.db\"\n",
    )
    .expect("write");
    let message = synap.fails(&["list"], 1);
    assert!(
        message.contains("synap.toml is not valid") && message.contains("databse_url"),
        "{message}"
    );
}
