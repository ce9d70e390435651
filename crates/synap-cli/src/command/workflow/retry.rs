//! `synap workflow retry RUN_ID`: queues a failed run again from its failed step;
//! steps that succeeded keep their results. A run that has not failed is a
//! conflict (exit 4).

use crate::context::Context;
use crate::error::CliError;
use synap_store::workflow::RetryOutcome;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The failed run's id
    #[arg(value_name = "RUN_ID")]
    pub id: Uuid,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    match context.store.retry_run(&context.scope(), args.id).await? {
        RetryOutcome::Requeued(run) => {
            if context.out.is_json() {
                context.out.document(&run)
            } else {
                context.out.line(format!(
                    "run {} is queued again; a worker (synap serve or synap worker) picks it up",
                    run.id
                ))
            }
        }
        RetryOutcome::NotFound => Err(super::no_such_run(args.id)),
        RetryOutcome::NotFailed(status) => Err(CliError::conflict(format!(
            "run {} is {}; only a failed run can be retried",
            args.id,
            status.as_str()
        ))),
    }
}
