//! `synap restore ID`: brings back a deleted entity.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use synap_domain::EntityCommand;
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub id: String,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.id)?;
    let outcome = context
        .execute(Target::Entity {
            id,
            command: EntityCommand::Restore,
        })
        .await?;
    let done = format!("restored {id}");
    let unchanged = format!("{id} is not deleted; nothing to restore");
    crate::command::print_outcome(context, &outcome, &done, &unchanged)
}
