//! `synap worker` as a real process: SIGKILLed in the middle of a step, its run
//! goes to another worker process once the lease expires, and the steps that had
//! succeeded do not run again. The test workflows (`synap_workflow::testing`,
//! enabled by `SYNAP_TEST_WORKFLOWS_DIR`) count their executions in files.

use crate::support::Synap;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use synap_store::workflow::WorkflowStore;
use synap_store::workflow::{NewRun, RunStatus};
use synap_store::{Accounts, Scope};
use synap_store_sqlite::{SqliteConfig, SqliteStore};
use synap_workflow::testing::{STEPS_WORKFLOW, TEST_WORKFLOWS_ENV, executions};

fn worker(synap: &Synap, counters: &Path) -> Child {
    synap
        .command()
        .env(TEST_WORKFLOWS_ENV, counters)
        .env("SYNAP_WORKFLOW_LEASE", "2s")
        .arg("worker")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("synap worker starts")
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_worker_leaves_its_run_to_another_that_does_not_repeat_finished_steps() {
    let synap = Synap::new();
    synap.ok(&["list"]); // creates the instance
    let counters = synap.path("counters");
    std::fs::create_dir(&counters).unwrap();
    let gate = synap.path("gate");
    std::fs::write(&gate, "closed").unwrap();

    let store = SqliteStore::open(SqliteConfig::new(synap.data_dir().join("synap.db"))).unwrap();
    let owner = Scope::user(store.local_owner().await.unwrap().id);
    let input = json!({ "gate": { "two": gate.to_str().unwrap() } });
    let run = store
        .enqueue_run(&owner, NewRun::new(STEPS_WORKFLOW, input))
        .await
        .unwrap()
        .id;

    // Worker A finishes `one`, then hangs inside `two` (its first execution waits
    // at the gate) — and is killed there.
    let mut a = worker(&synap, &counters);
    wait_until(
        "worker A is inside step two",
        Duration::from_secs(30),
        || executions(&counters, run, "two") == 1,
    );
    a.kill().unwrap();
    a.wait().unwrap();
    assert_eq!(executions(&counters, run, "one"), 1);

    // Worker B takes the run over after A's lease (2 s) has run out.
    let mut b = worker(&synap, &counters);
    let started = Instant::now();
    let mut status = RunStatus::Running;
    wait_until("worker B finishes the run", Duration::from_secs(30), || {
        status = block_on(store.run_detail(&owner, run))
            .unwrap()
            .unwrap()
            .run
            .status;
        status.is_terminal()
    });
    assert_eq!(status, RunStatus::Succeeded);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "B waited for A's lease to expire"
    );
    assert_eq!(
        executions(&counters, run, "one"),
        1,
        "a finished step never runs again"
    );
    assert_eq!(executions(&counters, run, "two"), 2);
    assert_eq!(executions(&counters, run, "three"), 1);
    let detail = store.run_detail(&owner, run).await.unwrap().unwrap();
    assert_eq!(detail.run.attempt, 2, "two claims: A's and B's");

    // B stops gracefully.
    let terminated = Command::new("kill")
        .args(["-TERM", &b.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    wait_until("worker B exits", Duration::from_secs(20), || {
        b.try_wait().unwrap().is_some()
    });
    assert_eq!(b.wait().unwrap().code(), Some(0));
}

/// Runs a store future to completion from the synchronous polling closure.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}
