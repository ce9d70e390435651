//! `synap capture TEXT|-`: the note exists at once; enrichment (title, tags, type
//! by AI) will follow in a workflow, whose run id is `null` until workflows land.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use serde::Serialize;
use synap_domain::{CreateEntity, EntityCommand, EntityId};
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The text, or `-` to read it from standard input
    #[arg(value_name = "TEXT|-")]
    pub text: String,
}

/// The JSON answer, shaped like `POST /v1/capture`.
#[derive(Debug, Serialize)]
struct Captured {
    entity_id: EntityId,
    run_id: Option<uuid::Uuid>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let body = input::text(&args.text)?;
    let id = EntityId::new_v7();
    let command = EntityCommand::Create(CreateEntity::note(body));
    context.execute(Target::Entity { id, command }).await?;
    if context.out.is_json() {
        context.out.document(&Captured {
            entity_id: id,
            run_id: None,
        })
    } else {
        context.out.line(id.to_string())
    }
}
