//! Workflow definitions: a workflow is a name, an ordered list of named steps and
//! an optional per-key concurrency limit. Each step is an async function of a
//! [`StepContext`] with its own retry policy and timeout; what it returns is
//! stored once and handed to later steps (and to a resumed run) instead of
//! running it again.

use crate::retry::RetryPolicy;
use jiff::Timestamp;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use synap_store::Scope;
use uuid::Uuid;

/// Default longest time one step execution may take.
pub const STEP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);
/// Longest step timeout a definition may set (the lease is kept alive by
/// heartbeats meanwhile).
pub const STEP_TIMEOUT_MAX: Duration = Duration::from_secs(2 * 3_600);
/// Most steps in one workflow.
pub const STEPS_MAX: usize = 100;

/// What a step sees.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub run_id: Uuid,
    /// The run's owner: steps act in this scope only.
    pub scope: Scope,
    pub workflow: String,
    pub step: String,
    pub input: Value,
    /// The outputs of the steps that already succeeded in this run, by name.
    pub outputs: BTreeMap<String, Value>,
    /// This execution of the step: 1 for the first.
    pub attempt: u32,
    /// When this execution started (the engine's clock).
    pub started_at: Timestamp,
}

impl StepContext {
    /// The key effects leaving the system carry (an LLM call, a webhook): the
    /// same for every execution of this step in this run, so a receiver can
    /// drop a repeat.
    pub fn idempotency_key(&self) -> String {
        idempotency_key(self.run_id, &self.step)
    }

    /// An earlier step's output.
    pub fn output(&self, step: &str) -> Option<&Value> {
        self.outputs.get(step)
    }
}

/// `wf_<run id>_<step>`: derived from run and step only.
pub fn idempotency_key(run_id: Uuid, step: &str) -> String {
    format!("wf_{}_{}", run_id.simple(), step)
}

/// Why a step execution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Retried after a backoff while attempts are left.
    #[error("{0}")]
    Retryable(String),
    /// Stops the run at once: retrying cannot help (bad input, a refusal).
    #[error("{0}")]
    NonRetryable(String),
    /// Retried no sooner than `after` (a 429's `Retry-After`), attempts permitting.
    #[error("{error}")]
    RetryAfter { error: String, after: Duration },
}

impl StepError {
    pub fn retryable(error: impl std::fmt::Display) -> Self {
        StepError::Retryable(error.to_string())
    }
    pub fn non_retryable(error: impl std::fmt::Display) -> Self {
        StepError::NonRetryable(error.to_string())
    }
}

pub type StepFuture = Pin<Box<dyn Future<Output = Result<Value, StepError>> + Send>>;
type StepFn = Arc<dyn Fn(StepContext) -> StepFuture + Send + Sync>;

/// One named step.
#[derive(Clone)]
pub struct Step {
    pub name: String,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    run: StepFn,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Step {
    pub(crate) fn call(&self, context: StepContext) -> StepFuture {
        (self.run)(context)
    }
}

/// A workflow definition.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub name: String,
    pub steps: Vec<Step>,
    /// Runs sharing a concurrency key that may hold a lease at once.
    pub concurrency_limit: Option<u32>,
}

impl Workflow {
    pub fn new(name: impl Into<String>) -> Self {
        Workflow {
            name: name.into(),
            steps: Vec::new(),
            concurrency_limit: None,
        }
    }

    /// Adds a step with the default retry policy and timeout.
    pub fn step<F, Fut>(self, name: impl Into<String>, run: F) -> Self
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, StepError>> + Send + 'static,
    {
        self.step_with(name, RetryPolicy::default(), STEP_TIMEOUT_DEFAULT, run)
    }

    /// Adds a step with its own retry policy and timeout (capped at
    /// [`STEP_TIMEOUT_MAX`]).
    pub fn step_with<F, Fut>(
        mut self,
        name: impl Into<String>,
        retry: RetryPolicy,
        timeout: Duration,
        run: F,
    ) -> Self
    where
        F: Fn(StepContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, StepError>> + Send + 'static,
    {
        let name = name.into();
        assert!(
            !self.steps.iter().any(|s| s.name == name),
            "workflow {}: step {name} is defined twice",
            self.name
        );
        assert!(
            self.steps.len() < STEPS_MAX,
            "workflow {}: more than {STEPS_MAX} steps",
            self.name
        );
        self.steps.push(Step {
            name,
            retry,
            timeout: timeout.min(STEP_TIMEOUT_MAX),
            run: Arc::new(move |context| Box::pin(run(context))),
        });
        self
    }

    pub fn concurrency_limit(mut self, limit: u32) -> Self {
        self.concurrency_limit = Some(limit.max(1));
        self
    }
}

/// The workflows a worker can run, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    workflows: HashMap<String, Arc<Workflow>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds (or replaces) a workflow.
    pub fn register(&mut self, workflow: Workflow) -> &mut Self {
        self.workflows
            .insert(workflow.name.clone(), Arc::new(workflow));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Workflow>> {
        self.workflows.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.workflows.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.workflows.is_empty()
    }

    pub(crate) fn claimable(&self) -> Vec<synap_store::workflow::ClaimableWorkflow> {
        let mut list: Vec<_> = self
            .workflows
            .values()
            .map(|w| synap_store::workflow::ClaimableWorkflow {
                name: w.name.clone(),
                concurrency_limit: w.concurrency_limit,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}
