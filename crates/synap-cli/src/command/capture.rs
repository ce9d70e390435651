//! `synap capture TEXT|-`: the note exists at once; the `capture.enrich` workflow
//! (title, tags, type by the configured analyzer) runs on a worker — inside
//! `synap serve` or a `synap worker` — and `synap workflow show RUN_ID` follows it.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use serde::Serialize;
use synap_domain::{CreateEntity, EntityCommand, EntityId};
use synap_flows::enrich::capture_enrich_run;
use synap_store::{CommandRequest, Target};
use uuid::Uuid;

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
    run_id: Uuid,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let body = input::text(&args.text)?;
    let id = EntityId::new_v7();
    let command = EntityCommand::Create(CreateEntity::note(body));
    let mut request = CommandRequest::new(
        context.scope(),
        Target::Entity { id, command },
        context.metadata(),
    );
    let run = capture_enrich_run(id, request.command_id);
    let run_id = run.id;
    request = request.triggering(run);
    context.store.execute(request).await?;
    if context.out.is_json() {
        context.out.document(&Captured {
            entity_id: id,
            run_id,
        })
    } else {
        context.out.line(id.to_string())
    }
}
