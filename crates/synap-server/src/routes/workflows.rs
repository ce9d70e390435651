//! `/v1/workflows/runs`: the caller's workflow runs — list, one run with its
//! steps (attempts, durations, errors), retry a failed run from its failed step,
//! cancel an unfinished one. The engine itself is `synap-workflow`; this module
//! only shows and nudges what the store holds.

use super::dto::{CanRead, CanWrite, CommonErrors, Problem};
use super::entities::page_limit;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use synap_store::PageRequest;
use synap_store::workflow::{
    RetryOutcome, RunDetail, RunFilter, RunStatus, RunView, StepStatus, StepView,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(retry_run))
        .routes(routes!(cancel_run))
}

/// A run's state.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowRunStatus {
    /// Waiting for its first claim.
    Queued,
    /// A worker holds its lease.
    Running,
    /// A step failed and waits for its backoff before the next attempt.
    Waiting,
    Succeeded,
    /// A step failed for good; `POST …/retry` runs it again from that step.
    Failed,
    Cancelled,
}

impl From<RunStatus> for WorkflowRunStatus {
    fn from(status: RunStatus) -> Self {
        match status {
            RunStatus::Queued => WorkflowRunStatus::Queued,
            RunStatus::Running => WorkflowRunStatus::Running,
            RunStatus::Waiting => WorkflowRunStatus::Waiting,
            RunStatus::Succeeded => WorkflowRunStatus::Succeeded,
            RunStatus::Failed => WorkflowRunStatus::Failed,
            RunStatus::Cancelled => WorkflowRunStatus::Cancelled,
        }
    }
}

impl From<WorkflowRunStatus> for RunStatus {
    fn from(status: WorkflowRunStatus) -> Self {
        match status {
            WorkflowRunStatus::Queued => RunStatus::Queued,
            WorkflowRunStatus::Running => RunStatus::Running,
            WorkflowRunStatus::Waiting => RunStatus::Waiting,
            WorkflowRunStatus::Succeeded => RunStatus::Succeeded,
            WorkflowRunStatus::Failed => RunStatus::Failed,
            WorkflowRunStatus::Cancelled => RunStatus::Cancelled,
        }
    }
}

/// A workflow run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowRun {
    pub id: Uuid,
    /// The workflow's name, e.g. `capture.enrich`.
    pub workflow: String,
    pub status: WorkflowRunStatus,
    /// What the run was started with.
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    /// Log position of the event that triggered the run (absent for scheduled runs).
    pub trigger_position: Option<u64>,
    /// Claims so far (a run picked up again after a crash counts twice).
    pub attempt: u32,
    /// When a queued or waiting run may next be claimed.
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Timestamp,
    /// Why the run failed (or the last retried failure while it waits).
    pub error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
}

impl From<RunView> for WorkflowRun {
    fn from(run: RunView) -> Self {
        WorkflowRun {
            id: run.id,
            workflow: run.workflow,
            status: run.status.into(),
            input: run.input,
            trigger_position: run.trigger_position,
            attempt: run.attempt,
            next_attempt_at: run.next_attempt_at,
            error: run.error,
            created_at: run.created_at,
            updated_at: run.updated_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
        }
    }
}

/// A step's state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStepStatus {
    /// Not finished yet (it failed and will be tried again, or it is running).
    Pending,
    Succeeded,
    Failed,
}

impl From<StepStatus> for WorkflowStepStatus {
    fn from(status: StepStatus) -> Self {
        match status {
            StepStatus::Pending => WorkflowStepStatus::Pending,
            StepStatus::Succeeded => WorkflowStepStatus::Succeeded,
            StepStatus::Failed => WorkflowStepStatus::Failed,
        }
    }
}

/// One step of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowStep {
    pub name: String,
    pub status: WorkflowStepStatus,
    /// What a succeeded step produced (kept: it never runs again in this run).
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
    /// Executions so far, failed ones included.
    pub attempts: u32,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub first_started_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_started_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    /// The last execution's duration in milliseconds.
    pub last_duration_ms: f64,
    /// Every execution's duration together, in milliseconds.
    pub total_duration_ms: f64,
}

impl From<StepView> for WorkflowStep {
    fn from(step: StepView) -> Self {
        WorkflowStep {
            name: step.name,
            status: step.status.into(),
            output: step.output,
            attempts: step.attempts,
            last_error: step.last_error,
            first_started_at: step.first_started_at,
            last_started_at: step.last_started_at,
            finished_at: step.finished_at,
            last_duration_ms: step.last_duration_us as f64 / 1_000.0,
            total_duration_ms: step.total_duration_us as f64 / 1_000.0,
        }
    }
}

/// A run with its steps, in the order they first ran.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowRunDetail {
    #[serde(flatten)]
    pub run: WorkflowRun,
    pub steps: Vec<WorkflowStep>,
}

impl From<RunDetail> for WorkflowRunDetail {
    fn from(detail: RunDetail) -> Self {
        WorkflowRunDetail {
            run: detail.run.into(),
            steps: detail.steps.into_iter().map(Into::into).collect(),
        }
    }
}

/// One page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowRunPage {
    pub items: Vec<WorkflowRun>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListRunsQuery {
    /// Only runs in this state.
    #[serde(default)]
    status: Option<WorkflowRunStatus>,
    /// Only runs of this workflow (e.g. `capture.enrich`).
    #[serde(default)]
    workflow: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// List the caller's workflow runs, newest first.
#[utoipa::path(
    get,
    path = "/v1/workflows/runs",
    tag = "workflows",
    params(ListRunsQuery),
    responses(
        (status = 200, description = "One page of runs.", body = WorkflowRunPage),
        (status = 400, description = "A malformed or unknown query parameter (`invalid_query`, with `parameter`) or a cursor this server did not issue (`invalid_input`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn list_runs(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListRunsQuery>,
) -> ApiResult<Json<WorkflowRunPage>> {
    let filter = RunFilter {
        status: query.status.map(Into::into),
        workflow: query.workflow,
    };
    let page = PageRequest {
        limit: page_limit(query.limit)?,
        cursor: query.cursor,
    };
    let page = state
        .store
        .list_runs(&caller.scope(), &filter, &page)
        .await?;
    Ok(Json(WorkflowRunPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn no_such_run() -> ApiError {
    ApiError::not_found("there is no such workflow run")
}

/// One run with its steps: attempts, durations, outputs and errors.
#[utoipa::path(
    get,
    path = "/v1/workflows/runs/{id}",
    tag = "workflows",
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses(
        (status = 200, description = "The run and its steps.", body = WorkflowRunDetail),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run (or it belongs to someone else) (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn get_run(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WorkflowRunDetail>> {
    let detail = state
        .store
        .run_detail(&caller.scope(), id)
        .await?
        .ok_or_else(no_such_run)?;
    Ok(Json(detail.into()))
}

/// Run a failed run again from its failed step.
///
/// Steps that succeeded keep their results and do not run again; the failed step
/// gets a fresh attempt budget.
#[utoipa::path(
    post,
    path = "/v1/workflows/runs/{id}/retry",
    tag = "workflows",
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses(
        (status = 202, description = "The run is queued again.", body = WorkflowRun),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run has not failed (`run_not_failed`, with `current_status`): only failed runs are retried.", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn retry_run(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(axum::http::StatusCode, Json<WorkflowRun>)> {
    match state.store.retry_run(&caller.scope(), id).await? {
        RetryOutcome::Requeued(run) => Ok((axum::http::StatusCode::ACCEPTED, Json((*run).into()))),
        RetryOutcome::NotFound => Err(no_such_run()),
        RetryOutcome::NotFailed(status) => Err(ApiError::conflict(
            "run_not_failed",
            format!(
                "the run is {}; only a failed run can be retried",
                status.as_str()
            ),
        )
        .with("current_status", status.as_str())),
    }
}

/// Cancel a run that has not finished.
///
/// A worker executing it stops at its next write. A finished run is answered
/// unchanged.
#[utoipa::path(
    post,
    path = "/v1/workflows/runs/{id}/cancel",
    tag = "workflows",
    params(("id" = Uuid, Path, description = "The run's id.")),
    responses(
        (status = 200, description = "The run, cancelled (or already finished).", body = WorkflowRun),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn cancel_run(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WorkflowRun>> {
    let run = state
        .store
        .cancel_run(&caller.scope(), id)
        .await?
        .ok_or_else(no_such_run)?;
    Ok(Json(run.into()))
}
