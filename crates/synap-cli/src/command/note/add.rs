//! `synap note add TEXT|- [--title T] [--tag T]... [--type TYPE]`: creates an
//! entity (a note unless `--type` says otherwise) and prints its id.

use crate::command::Created;
use crate::context::Context;
use crate::error::CliError;
use crate::input::{self, TypeArg};
use synap_domain::{CreateEntity, EntityCommand, EntityId, EntityType, NewContent};
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The content (Markdown), or `-` to read it from standard input
    #[arg(value_name = "TEXT|-")]
    pub text: String,
    /// The title [default: derived from the first line of the content]
    #[arg(long, value_name = "T")]
    pub title: Option<String>,
    /// A tag (repeat for several)
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// The entity type
    #[arg(long = "type", value_name = "TYPE", default_value = "note")]
    pub entity_type: TypeArg,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let body = input::text(&args.text)?;
    let id = EntityId::new_v7();
    let create = CreateEntity {
        entity_type: EntityType::from(args.entity_type),
        title: args.title,
        content: Some(NewContent::markdown(body)),
        tags: args.tags,
        task: None,
        metadata: Default::default(),
    };
    let outcome = context
        .execute(Target::Entity {
            id,
            command: EntityCommand::Create(create),
        })
        .await?;
    if context.out.is_json() {
        context.out.document(&Created {
            entity_id: id.0,
            version: outcome.version,
        })
    } else {
        context.out.line(id.to_string())
    }
}
