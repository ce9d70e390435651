//! `synap attachments ENTITY`: the files attached to an entity, oldest first.
//! `--json` prints `{"items": [...]}`.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use crate::output;
use synap_store::Page;
use synap_store::attachments;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub entity: String,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.entity)?;
    let items = attachments::list(context.store.as_ref(), context.scope(), id)
        .await?
        .ok_or_else(|| CliError::not_found(format!("no entity {id}")))?;
    if context.out.is_json() {
        return context.out.document(&Page {
            items,
            next_cursor: None,
        });
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.filename.clone(),
                a.media_type.clone(),
                output::bytes(a.size),
                output::time_short(a.added_at),
            ]
        })
        .collect();
    context.out.table(
        &["ATTACHMENT", "NAME", "TYPE", "SIZE", "ADDED"],
        &rows,
        "no attachments",
    )
}
