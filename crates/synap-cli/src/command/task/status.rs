//! `synap task status ID todo|in_progress|done|cancelled`.

use crate::context::Context;
use crate::error::CliError;
use crate::input::{self, StatusArg};
use synap_domain::{Change, EntityCommand, TaskStatus};
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's id
    pub id: String,
    /// The new status
    pub status: StatusArg,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.id)?;
    let status = TaskStatus::from(args.status);
    let command = EntityCommand::Change(vec![Change::TaskStatus(status)]);
    let outcome = context.execute(Target::Entity { id, command }).await?;
    let done = format!("{id} is now {status}");
    let unchanged = format!("{id} was already {status}");
    crate::command::print_outcome(context, &outcome, &done, &unchanged)
}
