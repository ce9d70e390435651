//! The insight job end to end: a real `synap worker` gives the local owner the
//! hourly schedule and runs it at once; three notes tagged alike within a day
//! become one suggestion, which `synap suggestion` lists, accepts (the project
//! appears, linked to the notes) and refuses to decide twice.

use crate::support::{Synap, ids, items};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn a_busy_tag_is_suggested_as_a_project_and_accepting_makes_it() {
    let synap = Synap::new();
    let notes: Vec<String> = ["Tomatoes", "Compost", "Seeds to order"]
        .iter()
        .map(|text| synap.add_note(text, &["--tag", "Garden"]))
        .collect();
    assert_eq!(synap.ok(&["suggestion", "list"]), "no suggestions");

    let mut worker = synap
        .command()
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("synap worker starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed = synap.json(&["suggestion", "list", "--status", "pending"]);
        if !items(&listed).is_empty() {
            break listed;
        }
        assert!(Instant::now() < deadline, "no suggestion appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = worker.kill();
    let _ = worker.wait();

    let suggestion = &items(&listed)[0];
    assert_eq!(suggestion["tag"], "Garden");
    let mut covered: Vec<String> = suggestion["entity_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    covered.sort();
    let mut expected = notes.clone();
    expected.sort();
    assert_eq!(covered, expected);
    let id = suggestion["id"].as_str().unwrap();

    let accepted = synap.ok(&["suggestion", "accept", id]);
    assert!(accepted.starts_with("accepted: project "), "{accepted}");
    let projects = synap.json(&["list", "--type", "project"]);
    assert_eq!(ids(&projects).len(), 1, "{projects}");
    let project = &ids(&projects)[0];
    let links = synap.json(&["links", project]);
    assert_eq!(items(&links).len(), 3, "{links}");

    let again = synap.fails(&["suggestion", "dismiss", id], 4);
    assert!(again.contains("already accepted"), "{again}");
    synap.fails(
        &[
            "suggestion",
            "accept",
            "0190b5a0-0000-7000-8000-000000000000",
        ],
        3,
    );
}
