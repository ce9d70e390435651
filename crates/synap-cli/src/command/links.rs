//! `synap links ID [--in|--out]`: the live links of an entity — outgoing, incoming
//! (backlinks) or both. `--json` prints `{"items": [...]}`.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use crate::output::{self, TITLE_CELL_CHARS_MAX};
use synap_store::{Direction, Page};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub id: String,
    /// Only links to this entity (backlinks)
    #[arg(long = "in", conflicts_with = "outgoing")]
    pub incoming: bool,
    /// Only links from this entity
    #[arg(long = "out")]
    pub outgoing: bool,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.id)?;
    let direction = match (args.incoming, args.outgoing) {
        (true, _) => Direction::In,
        (_, true) => Direction::Out,
        _ => Direction::Both,
    };
    // Not found is an error, not an empty list.
    context.entity(id).await?;
    let relations = context
        .store
        .relations(&context.scope(), id, direction)
        .await?;
    if context.out.is_json() {
        return context.out.document(&Page {
            items: relations,
            next_cursor: None,
        });
    }
    let rows: Vec<Vec<String>> = relations
        .iter()
        .map(|relation| {
            let (arrow, other_id, other_title) = if relation.source_id == id {
                ("→", relation.target_id, &relation.target_title)
            } else {
                ("←", relation.source_id, &relation.source_title)
            };
            vec![
                relation.id.to_string(),
                relation.kind.clone(),
                arrow.to_string(),
                other_id.to_string(),
                output::truncate(other_title, TITLE_CELL_CHARS_MAX),
            ]
        })
        .collect();
    context.out.table(
        &["RELATION", "KIND", "DIR", "ENTITY", "TITLE"],
        &rows,
        "no links",
    )
}
