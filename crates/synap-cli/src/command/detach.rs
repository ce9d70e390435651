//! `synap detach ENTITY ATTACHMENT_ID`: removes an attachment from an entity
//! (`entity.attachment_removed`). The bytes stay stored: `synap revert` can bring
//! the attachment back.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use synap_domain::AttachmentId;
use synap_store::attachments;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub entity: String,
    /// The attachment's id (see `synap attachments ENTITY`)
    pub attachment: String,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.entity)?;
    let attachment = AttachmentId(input::uuid(&args.attachment)?);
    let found = attachments::find(context.store.as_ref(), context.scope(), id, attachment).await?;
    let Some(found) = found else {
        return Err(CliError::not_found(format!(
            "entity {id} has no attachment {attachment}; list them with `synap attachments {id}`"
        )));
    };
    let outcome = attachments::detach(
        context.store.as_ref(),
        context.scope(),
        id,
        attachment,
        context.metadata(),
    )
    .await?;
    let done = format!("detached {} from {id}", found.filename);
    crate::command::print_outcome(context, &outcome, &done, &done)
}
