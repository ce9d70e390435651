//! `synap workflow …`: the acting user's workflow runs — list them, show one with
//! its steps, retry a failed one from its failed step, cancel an unfinished one.
//! The same views as `/v1/workflows/runs`.

pub mod cancel;
pub mod retry;
pub mod runs;
pub mod show;

use crate::context::Context;
use crate::error::CliError;
use synap_store::workflow::RunStatus;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List runs, newest first
    Runs(runs::Args),
    /// Show a run with its steps: attempts, durations, outputs and errors
    Show(show::Args),
    /// Run a failed run again from its failed step (succeeded steps are kept)
    Retry(retry::Args),
    /// Cancel a run that has not finished
    Cancel(cancel::Args),
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Runs(args) => runs::run(context, args).await,
        Command::Show(args) => show::run(context, args).await,
        Command::Retry(args) => retry::run(context, args).await,
        Command::Cancel(args) => cancel::run(context, args).await,
    }
}

/// A run state on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Queued,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<StatusArg> for RunStatus {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Queued => RunStatus::Queued,
            StatusArg::Running => RunStatus::Running,
            StatusArg::Waiting => RunStatus::Waiting,
            StatusArg::Succeeded => RunStatus::Succeeded,
            StatusArg::Failed => RunStatus::Failed,
            StatusArg::Cancelled => RunStatus::Cancelled,
        }
    }
}

fn no_such_run(id: uuid::Uuid) -> CliError {
    CliError::not_found(format!(
        "there is no workflow run {id}; `synap workflow runs` lists them"
    ))
}
