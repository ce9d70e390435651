//! `synap revert ID --to-version N`: appends the events that restore the state of
//! version N. History is kept; the revert can itself be reverted.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use synap_domain::EntityCommand;
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub id: String,
    /// The version whose state to restore (see `synap history ID`)
    #[arg(long, value_name = "N")]
    pub to_version: u64,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.id)?;
    let version = args.to_version;
    let outcome = context
        .execute(Target::Entity {
            id,
            command: EntityCommand::RevertTo { version },
        })
        .await?;
    let done = format!(
        "{id} now has the state of version {version}, as version {}",
        outcome.version
    );
    let unchanged = format!("nothing to revert; {id} already has the state of version {version}");
    crate::command::print_outcome(context, &outcome, &done, &unchanged)
}
