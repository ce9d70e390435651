//! `synap workflow cancel RUN_ID`: cancels a run that has not finished; a worker
//! executing it stops at its next write. A finished run is shown unchanged.

use crate::context::Context;
use crate::error::CliError;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run's id
    #[arg(value_name = "RUN_ID")]
    pub id: Uuid,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let run = context
        .store
        .cancel_run(&context.scope(), args.id)
        .await?
        .ok_or_else(|| super::no_such_run(args.id))?;
    if context.out.is_json() {
        context.out.document(&run)
    } else {
        context
            .out
            .line(format!("run {} is {}", run.id, run.status.as_str()))
    }
}
