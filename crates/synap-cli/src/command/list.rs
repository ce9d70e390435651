//! `synap list [--type T] [--tag T] [--status S] [--deleted] [--limit N] [--cursor C]`:
//! one page of entities, most recently updated first. `--json` prints the page
//! object (`items`, `next_cursor`).

use crate::context::Context;
use crate::error::CliError;
use crate::input::{StatusArg, TypeArg};
use crate::output::{self, TITLE_CELL_CHARS_MAX};
use synap_store::{EntityFilter, PageRequest};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only entities of this type
    #[arg(long = "type", value_name = "T")]
    pub entity_type: Option<TypeArg>,
    /// Only entities with this tag
    #[arg(long, value_name = "T")]
    pub tag: Option<String>,
    /// Only tasks with this status
    #[arg(long, value_name = "S")]
    pub status: Option<StatusArg>,
    /// List deleted entities instead of live ones
    #[arg(long)]
    pub deleted: bool,
    /// At most this many (1 to 500) [default: 50]
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue after the page that printed this cursor
    #[arg(long, value_name = "C")]
    pub cursor: Option<String>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let filter = EntityFilter {
        entity_type: args.entity_type.map(Into::into),
        tag: args.tag,
        status: args.status.map(Into::into),
        deleted: args.deleted,
        updated_since: None,
    };
    let page = PageRequest {
        limit: args.limit,
        cursor: args.cursor,
    };
    let page = context
        .store
        .list_entities(&context.scope(), &filter, &page)
        .await?;
    if context.out.is_json() {
        return context.out.document(&page);
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|entity| {
            vec![
                entity.id.to_string(),
                entity.entity_type.to_string(),
                entity
                    .task
                    .as_ref()
                    .map_or_else(String::new, |task| task.status.to_string()),
                output::time_short(entity.updated_at),
                output::truncate(&entity.title, TITLE_CELL_CHARS_MAX),
                entity.tags.join(", "),
            ]
        })
        .collect();
    let empty = if filter_is_empty(&filter) {
        "no entities yet; add one with `synap note add TEXT`"
    } else {
        "no entities match"
    };
    context.out.table(
        &["ID", "TYPE", "STATUS", "UPDATED", "TITLE", "TAGS"],
        &rows,
        empty,
    )?;
    if let Some(cursor) = page.next_cursor {
        context.out.line(format!("more: add --cursor {cursor}"))?;
    }
    Ok(())
}

fn filter_is_empty(filter: &EntityFilter) -> bool {
    *filter == EntityFilter::default()
}
