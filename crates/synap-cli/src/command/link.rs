//! `synap link SOURCE TARGET [--kind KIND]`: a typed, directed link; prints the
//! relation's id (which `synap unlink` takes).

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use serde::Serialize;
use synap_domain::{EntityId, RelationId, RelationKind};
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The id of the entity the link goes from
    pub source: String,
    /// The id of the entity the link goes to
    pub target: String,
    /// contains, relates_to, blocks, duplicates, derived_from, or a lowercase word of your own
    #[arg(long, value_name = "KIND", default_value = RelationKind::DEFAULT)]
    pub kind: String,
}

/// The JSON answer.
#[derive(Debug, Serialize)]
struct Linked {
    relation_id: RelationId,
    source_id: EntityId,
    target_id: EntityId,
    kind: String,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let source_id = input::entity_id(&args.source)?;
    let target_id = input::entity_id(&args.target)?;
    let kind = RelationKind::parse(&args.kind)?;
    let id = RelationId::new_v7();
    context
        .execute(Target::Link {
            id,
            source_id,
            target_id,
            kind: kind.clone(),
        })
        .await?;
    if context.out.is_json() {
        context.out.document(&Linked {
            relation_id: id,
            source_id,
            target_id,
            kind: kind.as_str().to_string(),
        })
    } else {
        context.out.line(id.to_string())
    }
}
