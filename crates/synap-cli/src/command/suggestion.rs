//! `synap suggestion list|accept|dismiss`: what the hourly insight job proposes
//! (`synap_flows::insights`) — a project for a tag put on 3 or more entities
//! within a day — and the user's decision. Accepting makes the project and links
//! it to the entities; a decided suggestion is a conflict (exit 4).

use crate::context::Context;
use crate::error::CliError;
use synap_flows::insights::accept_suggestion;
use synap_store::suggestions::{Decided, Decision, Suggestion, SuggestionStatus};
use uuid::Uuid;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List your suggestions, newest first
    List(ListArgs),
    /// Accept one: the project is made and linked to the entities
    Accept(IdArgs),
    /// Dismiss one; it is not proposed again
    Dismiss(IdArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Pending,
    Accepted,
    Dismissed,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only suggestions in this state
    #[arg(long, value_name = "STATUS")]
    pub status: Option<StatusArg>,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The suggestion's id
    #[arg(value_name = "ID")]
    pub id: Uuid,
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::List(args) => list(context, args).await,
        Command::Accept(args) => {
            let decision = accept_suggestion(
                context.store.as_ref(),
                &context.scope(),
                args.id,
                context.metadata(),
            )
            .await?;
            answer(context, args.id, decision)
        }
        Command::Dismiss(args) => {
            let decision = context
                .store
                .decide_suggestion(&context.scope(), args.id, Decision::Dismissed)
                .await?;
            answer(context, args.id, decision)
        }
    }
}

async fn list(context: &Context, args: ListArgs) -> Result<(), CliError> {
    let status = args.status.map(|s| match s {
        StatusArg::Pending => SuggestionStatus::Pending,
        StatusArg::Accepted => SuggestionStatus::Accepted,
        StatusArg::Dismissed => SuggestionStatus::Dismissed,
    });
    let all = context.store.suggestions(&context.scope(), status).await?;
    if context.out.is_json() {
        return context.out.document(&serde_json::json!({ "items": all }));
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.status.as_str().to_string(),
                format!("make a project for #{}", s.tag),
                format!("{} entities", s.entity_ids.len()),
            ]
        })
        .collect();
    context.out.table(
        &["ID", "STATUS", "SUGGESTION", "COVERS"],
        &rows,
        "no suggestions",
    )
}

/// Prints a decided suggestion; a suggestion decided before is a conflict.
fn answer(context: &Context, id: Uuid, decision: Decided) -> Result<(), CliError> {
    match decision {
        Decided::Done(suggestion) => done(context, &suggestion),
        Decided::NotPending(status) => Err(decided(id, status)),
        Decided::NotFound => Err(missing(id)),
    }
}

fn done(context: &Context, suggestion: &Suggestion) -> Result<(), CliError> {
    if context.out.is_json() {
        return context.out.document(suggestion);
    }
    match suggestion.project_id {
        Some(project) => context.out.line(format!(
            "accepted: project {project} ({}) holds {} entities",
            suggestion.tag,
            suggestion.entity_ids.len()
        )),
        None => context.out.line(format!(
            "dismissed: #{} will not be proposed again",
            suggestion.tag
        )),
    }
}

fn decided(id: Uuid, status: SuggestionStatus) -> CliError {
    CliError::conflict(format!(
        "suggestion {id} was already {}; only a pending one can be accepted or dismissed",
        status.as_str()
    ))
}

fn missing(id: Uuid) -> CliError {
    CliError::not_found(format!(
        "there is no suggestion {id}; `synap suggestion list` shows yours"
    ))
}
