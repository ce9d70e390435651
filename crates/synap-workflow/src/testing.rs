//! Test workflows with named failure points, for the engine's tests and for
//! tests that drive a real `synap worker` process (enabled there by the
//! environment variable [`TEST_WORKFLOWS_ENV`], never by default).
//!
//! `test.steps` has three steps, `one`, `two` and `three`. Each execution of a
//! step appends a line to `<dir>/<run id>.<step>` before doing anything else, so
//! a test (in this process or another) counts executions by reading files. The
//! run's input names the failure points:
//!
//! - `{"fail": {"two": 2}}` — step `two` fails (retryable) on its first 2 executions;
//! - `{"fatal": "two"}` — step `two` fails with a non-retryable error;
//! - `{"gate": {"two": "/path"}}` — the *first* execution of `two` waits while
//!   the file `/path` exists (bounded by [`GATE_WAIT_MAX`]), then succeeds;
//! - `{"sleep_ms": {"two": 50}}` — every execution of `two` sleeps this long.
//!
//! Every step returns `{"step": name, "execution": n, "worker": tag}`.
//! `test.keyed` is the same workflow with a concurrency limit of 1 per key.

use crate::definition::{Registry, StepContext, StepError, Workflow};
use crate::retry::RetryPolicy;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Names the counter directory and turns the test workflows on in `synap worker`.
pub const TEST_WORKFLOWS_ENV: &str = "SYNAP_TEST_WORKFLOWS_DIR";
/// The test workflows.
pub const STEPS_WORKFLOW: &str = "test.steps";
pub const KEYED_WORKFLOW: &str = "test.keyed";
/// Their steps, in order.
pub const STEPS: [&str; 3] = ["one", "two", "three"];
/// Longest a gated step waits for its gate file to go.
pub const GATE_WAIT_MAX: Duration = Duration::from_secs(120);
/// Retry policy of the test steps: 3 attempts, 10 s then 20 s (no jitter, so
/// tests can move a manual clock exactly).
pub fn test_policy() -> RetryPolicy {
    RetryPolicy::attempts(3)
        .with_backoff(Duration::from_secs(10), Duration::from_secs(60))
        .with_jitter(0.0)
}
/// Timeout of the test steps.
pub const TEST_STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Executions of `step` in `run` recorded under `dir`.
pub fn executions(dir: &Path, run: uuid::Uuid, step: &str) -> usize {
    std::fs::read_to_string(counter_file(dir, run, step))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

fn counter_file(dir: &Path, run: uuid::Uuid, step: &str) -> PathBuf {
    dir.join(format!("{run}.{step}"))
}

/// Registers `test.steps` and `test.keyed`, counting under `dir`; `worker` tags
/// the outputs (which worker ran a step).
pub fn register(registry: &mut Registry, dir: PathBuf, worker: &str) {
    for (name, limit) in [(STEPS_WORKFLOW, None), (KEYED_WORKFLOW, Some(1))] {
        let mut workflow = Workflow::new(name);
        for step in STEPS {
            let dir = dir.clone();
            let worker = worker.to_string();
            workflow = workflow.step_with(step, test_policy(), TEST_STEP_TIMEOUT, move |context| {
                run_step(dir.clone(), worker.clone(), context)
            });
        }
        if let Some(limit) = limit {
            workflow = workflow.concurrency_limit(limit);
        }
        registry.register(workflow);
    }
}

async fn run_step(dir: PathBuf, worker: String, context: StepContext) -> Result<Value, StepError> {
    let step = context.step.as_str();
    let execution = {
        let path = counter_file(&dir, context.run_id, step);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(StepError::retryable)?;
        writeln!(file, "{worker}").map_err(StepError::retryable)?;
        file.sync_all().map_err(StepError::retryable)?;
        executions(&dir, context.run_id, step)
    };
    let input = &context.input;
    if let Some(ms) = input["sleep_ms"][step].as_u64() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(gate) = input["gate"][step].as_str()
        && execution == 1
    {
        let started = std::time::Instant::now();
        while Path::new(gate).exists() && started.elapsed() < GATE_WAIT_MAX {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    if input["fatal"].as_str() == Some(step) {
        return Err(StepError::non_retryable(format!(
            "{step}: refused for good"
        )));
    }
    if let Some(times) = input["fail"][step].as_u64()
        && execution as u64 <= times
    {
        return Err(StepError::retryable(format!(
            "{step}: failure {execution} of {times}"
        )));
    }
    Ok(
        json!({"step": step, "execution": execution, "worker": worker, "key": context.idempotency_key()}),
    )
}
