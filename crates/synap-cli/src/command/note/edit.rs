//! `synap note edit ID [--title T] [--content TEXT|-] [--type TYPE] [--add-tag T]
//! [--remove-tag T] [--expect-version N]`: every flag becomes one `Change`, all sent
//! as one command (one transaction, consecutive versions).

use crate::context::Context;
use crate::error::CliError;
use crate::input::{self, TypeArg};
use synap_domain::{Change, EntityCommand, EntityType, NewContent};
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub id: String,
    /// A new title (an empty one derives the title from the content again)
    #[arg(long, value_name = "T")]
    pub title: Option<String>,
    /// New content, or `-` to read it from standard input (empty removes it)
    #[arg(long, value_name = "TEXT|-")]
    pub content: Option<String>,
    /// A new entity type
    #[arg(long = "type", value_name = "TYPE")]
    pub entity_type: Option<TypeArg>,
    /// Add a tag (repeat for several)
    #[arg(long = "add-tag", value_name = "T")]
    pub add_tags: Vec<String>,
    /// Remove a tag (repeat for several)
    #[arg(long = "remove-tag", value_name = "T")]
    pub remove_tags: Vec<String>,
    /// Refuse the edit (exit 4) unless the entity is at exactly this version
    #[arg(long, value_name = "N")]
    pub expect_version: Option<u64>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.id)?;
    let mut changes = Vec::new();
    if let Some(title) = args.title {
        changes.push(Change::Title(title));
    }
    if let Some(content) = args.content {
        changes.push(Change::Content(Some(NewContent::markdown(input::text(
            &content,
        )?))));
    }
    if let Some(entity_type) = args.entity_type {
        changes.push(Change::Type(EntityType::from(entity_type)));
    }
    if !args.add_tags.is_empty() {
        changes.push(Change::AddTags(args.add_tags));
    }
    if !args.remove_tags.is_empty() {
        changes.push(Change::RemoveTags(args.remove_tags));
    }
    if changes.is_empty() {
        return Err(CliError::usage(
            "nothing to change; give --title, --content, --type, --add-tag or --remove-tag",
        ));
    }
    let target = Target::Entity {
        id,
        command: EntityCommand::Change(changes),
    };
    let outcome = context
        .execute_expecting(target, args.expect_version)
        .await?;
    let done = format!("{id} is now at version {}", outcome.version);
    let unchanged = format!(
        "nothing changed; {id} is still at version {}",
        outcome.version
    );
    crate::command::print_outcome(context, &outcome, &done, &unchanged)
}
