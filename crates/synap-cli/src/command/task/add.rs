//! `synap task add TITLE [--due WHEN] [--priority 0-3]`: creates a task (status
//! `todo`) and prints its id.

use crate::command::Created;
use crate::context::Context;
use crate::error::CliError;
use crate::input;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use synap_domain::limits::TASK_PRIORITY_MAX;
use synap_domain::{CreateEntity, EntityCommand, EntityId, EntityType, TaskInput};
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task's title
    pub title: String,
    /// When it is due: 2025-01-31 (start of that day here), today, tomorrow, or an RFC 3339 timestamp
    #[arg(long, value_name = "WHEN")]
    pub due: Option<String>,
    /// Priority, 0 (none) to 3 (highest)
    #[arg(long, value_name = "0-3", value_parser = clap::value_parser!(u8).range(0..=i64::from(TASK_PRIORITY_MAX)))]
    pub priority: Option<u8>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let due_at = match &args.due {
        Some(raw) => Some(input::due(raw, Timestamp::now(), &TimeZone::system())?),
        None => None,
    };
    let id = EntityId::new_v7();
    let create = CreateEntity {
        entity_type: EntityType::Task,
        title: Some(args.title),
        content: None,
        tags: Vec::new(),
        task: Some(TaskInput {
            status: None,
            priority: args.priority,
            due_at,
        }),
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
