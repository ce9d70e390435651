//! `synap show ID [--at RFC3339 | --version N]`: an entity's state and its content
//! body, now or at a past time or version (a fold of the log).

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use crate::output;
use serde::Serialize;
use synap_domain::{DomainError, EntityId};
use synap_store::{AsOf, EntityView};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub id: String,
    /// Show the state as it was at this time (RFC 3339)
    #[arg(long, value_name = "RFC3339", conflicts_with = "version")]
    pub at: Option<String>,
    /// Show the state right after this version
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
}

/// The JSON answer: the entity's fields plus its content body.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    entity: &'a EntityView,
    body: Option<String>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.id)?;
    let as_of = match (&args.at, args.version) {
        (Some(at), _) => Some(AsOf::Time(input::timestamp("--at", at)?)),
        (None, Some(version)) => Some(AsOf::Version(version)),
        (None, None) => None,
    };
    let view = match as_of {
        None => context.entity(id).await?,
        Some(as_of) => past(context, id, as_of).await?,
    };
    let body = match &view.content {
        Some(content) => context
            .store
            .content(&context.scope(), content.hash)
            .await?
            .map(|c| c.body),
        None => None,
    };
    if context.out.is_json() {
        return context.out.document(&Shown {
            entity: &view,
            body,
        });
    }
    context.out.line(describe(&view, as_of))?;
    if let Some(body) = body {
        context.out.line(format!("\n{}", body.trim_end()))?;
    }
    Ok(())
}

/// The state at a version or time, or "not found" naming what does exist.
async fn past(context: &Context, id: EntityId, as_of: AsOf) -> Result<EntityView, CliError> {
    if let Some(view) = context.store.entity_at(&context.scope(), id, as_of).await? {
        return Ok(view);
    }
    let current = context.entity(id).await?;
    Err(match as_of {
        AsOf::Version(version) => DomainError::NoSuchVersion {
            id,
            version,
            current: current.version,
        }
        .into(),
        AsOf::Time(at) => CliError::not_found(format!(
            "entity {id} did not exist yet at {at}; it was created at {}",
            output::time(current.created_at)
        )),
    })
}

fn describe(view: &EntityView, as_of: Option<AsOf>) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("id", view.id.to_string()),
        ("type", view.entity_type.to_string()),
        ("title", view.title.clone()),
    ];
    if !view.tags.is_empty() {
        rows.push(("tags", view.tags.join(", ")));
    }
    if let Some(task) = &view.task {
        let mut text = format!("{}, priority {}", task.status, task.priority);
        if let Some(due) = task.due_at {
            text.push_str(&format!(", due {}", output::time(due)));
        }
        if let Some(done) = task.completed_at {
            text.push_str(&format!(", completed {}", output::time(done)));
        }
        rows.push(("task", text));
    }
    rows.push(("version", view.version.to_string()));
    match as_of {
        Some(AsOf::Time(at)) => rows.push(("as of", output::time(at))),
        Some(AsOf::Version(_)) | None => {}
    }
    rows.push(("created", output::time(view.created_at)));
    rows.push(("updated", output::time(view.updated_at)));
    if let Some(deleted) = view.deleted_at {
        rows.push((
            "deleted",
            format!(
                "{} (undo with `synap restore {}`)",
                output::time(deleted),
                view.id
            ),
        ));
    }
    if let Some(content) = &view.content {
        rows.push((
            "content",
            format!(
                "{}, {}, sha256 {}",
                content.media_type,
                output::bytes(content.size),
                content.hash
            ),
        ));
    }
    if !view.metadata.is_empty() {
        rows.push((
            "metadata",
            serde_json::Value::Object(view.metadata.clone()).to_string(),
        ));
    }
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(name, value)| format!("{name:width$}  {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}
