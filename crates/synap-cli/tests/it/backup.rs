//! `synap admin backup FILE` and `synap admin restore FILE`: a snapshot taken while
//! a writer appends holds every write acknowledged before it began, restores into an
//! empty data directory and verifies clean; bad targets and bad files are refused
//! without touching what is stored.

use crate::support::Synap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Writes notes through the CLI, one process each, until told to stop; records
/// each acknowledged id with when its command returned.
fn start_writer(
    synap: &Synap,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<(String, Instant)>>>,
) -> std::thread::JoinHandle<()> {
    let data_dir = synap.data_dir().to_path_buf();
    std::thread::spawn(move || {
        let writer = Synap::at(&data_dir);
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let id = writer.add_note(&format!("written during the backup {n}"), &[]);
            acknowledged
                .lock()
                .expect("the list")
                .push((id, Instant::now()));
        }
    })
}

#[test]
fn a_backup_taken_while_a_writer_appends_restores_every_acknowledged_write_and_verifies_clean() {
    let synap = Synap::new();
    let first = synap.add_note(
        "# Before\nwritten before the writer started",
        &["--tag", "old"],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writer = start_writer(&synap, stop.clone(), acknowledged.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().expect("the list").len() < 5 {
        assert!(Instant::now() < deadline, "the writer makes progress");
        std::thread::sleep(Duration::from_millis(20));
    }

    let file = synap.path("instance.backup");
    let began = Instant::now();
    let backup = synap.json(&["admin", "backup", file.to_str().expect("a UTF-8 path")]);
    // Let the writer go on past the end of the backup, then stop it.
    let after = acknowledged.lock().expect("the list").len() + 2;
    while acknowledged.lock().expect("the list").len() < after {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("the writer thread");
    assert!(file.is_file(), "the backup file exists");
    assert!(backup["events"].as_u64().unwrap_or(0) >= 6, "{backup}");

    let before_backup: Vec<String> = acknowledged
        .lock()
        .expect("the list")
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(before_backup.len() >= 5);

    let restored = Synap::new();
    let output = restored.ok(&["admin", "restore", file.to_str().expect("a UTF-8 path")]);
    assert!(output.contains("match the log"), "{output}");
    for id in before_backup.iter().chain([&first]) {
        let shown = restored.json(&["show", id]);
        assert_eq!(shown["id"], id.as_str(), "{shown}");
    }
    let old = restored.json(&["show", &first]);
    assert_eq!(old["title"], "Before");
    assert_eq!(old["tags"], serde_json::json!(["old"]));
    // The restored instance is a working one: verify agrees, and it takes writes.
    restored.ok(&["admin", "verify"]);
    restored.add_note("written after the restore", &[]);
}

#[test]
fn a_backup_keeps_the_object_files_and_restore_puts_them_back() {
    let synap = Synap::new();
    synap.add_note("a note", &[]);
    let object = synap.data_dir().join("objects/users/u/content/abc");
    std::fs::create_dir_all(object.parent().expect("a parent")).expect("the object directory");
    std::fs::write(&object, b"object bytes").expect("an object file");
    // A file the object store is still writing (renamed into place when complete).
    std::fs::write(object.with_file_name("abc#1"), b"half").expect("a staged file");
    let file = synap.path("with-objects.backup");
    let backup = synap.json(&["admin", "backup", file.to_str().expect("a UTF-8 path")]);
    assert_eq!(backup["object_files"], 1, "{backup}");

    let restored = Synap::new();
    restored.ok(&["admin", "restore", file.to_str().expect("a UTF-8 path")]);
    let back = restored.data_dir().join("objects/users/u/content/abc");
    assert_eq!(
        std::fs::read(back).expect("the restored object"),
        b"object bytes"
    );
    assert!(
        !restored
            .data_dir()
            .join("objects/users/u/content/abc#1")
            .exists()
    );
}

#[test]
fn restore_refuses_a_data_directory_that_holds_an_instance_and_changes_nothing() {
    let synap = Synap::new();
    synap.add_note("the backed-up note", &[]);
    let file = synap.path("a.backup");
    synap.ok(&["admin", "backup", file.to_str().expect("a UTF-8 path")]);

    let occupied = Synap::new();
    let kept = occupied.add_note("already here", &[]);
    let message = occupied.fails(
        &["admin", "restore", file.to_str().expect("a UTF-8 path")],
        4,
    );
    assert!(message.contains("empty data directory"), "{message}");
    let listing = occupied.json(&["list"]);
    let items = listing["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{listing}");
    assert_eq!(items[0]["id"], kept.as_str());
}

#[test]
fn backup_refuses_to_overwrite_a_file_and_restore_refuses_a_file_that_is_not_a_backup() {
    let synap = Synap::new();
    synap.add_note("a note", &[]);
    let existing = synap.path("existing.backup");
    std::fs::write(&existing, b"precious").expect("a file");
    let message = synap.fails(
        &["admin", "backup", existing.to_str().expect("a UTF-8 path")],
        4,
    );
    assert!(message.contains("already exists"), "{message}");
    assert_eq!(std::fs::read(&existing).expect("the file"), b"precious");

    let restored = Synap::new();
    let message = restored.fails(
        &["admin", "restore", existing.to_str().expect("a UTF-8 path")],
        1,
    );
    assert!(message.contains("not a usable Synap backup"), "{message}");
    assert!(
        !restored.data_dir().join("synap.db").exists(),
        "nothing is left behind"
    );
    let missing = restored.path("missing.backup");
    restored.fails(
        &["admin", "restore", missing.to_str().expect("a UTF-8 path")],
        3,
    );

    // A truncated backup is refused as well.
    let file = synap.path("whole.backup");
    synap.ok(&["admin", "backup", file.to_str().expect("a UTF-8 path")]);
    let bytes = std::fs::read(&file).expect("the backup");
    let truncated = synap.path("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("a truncated copy");
    let message = restored.fails(
        &[
            "admin",
            "restore",
            truncated.to_str().expect("a UTF-8 path"),
        ],
        1,
    );
    assert!(message.contains("not a usable Synap backup"), "{message}");
    assert!(!restored.data_dir().join("synap.db").exists());
}

#[test]
fn a_backup_of_a_data_directory_without_a_database_is_refused() {
    let synap = Synap::new();
    let file = synap.path("nothing.backup");
    let message = synap.fails(
        &["admin", "backup", file.to_str().expect("a UTF-8 path")],
        3,
    );
    assert!(message.contains("no embedded database"), "{message}");
    assert!(!file.exists());
}
