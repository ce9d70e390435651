//! `synap rm ID`: soft-deletes an entity; `synap restore ID` brings it back.

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
            command: EntityCommand::Delete,
        })
        .await?;
    let done = format!("deleted {id}; undo with `synap restore {id}`");
    let unchanged = format!("{id} was already deleted; undo with `synap restore {id}`");
    crate::command::print_outcome(context, &outcome, &done, &unchanged)
}
