//! `synap history ID`: every event of an entity, oldest first (read page by page).
//! `--json` prints `{"items": [...]}` with the events in their API shape.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use crate::output;
use synap_domain::StoredEvent;
use synap_domain::limits::PAGE_LIMIT_MAX;
use synap_store::{Page, PageRequest};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub id: String,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.id)?;
    // Not found is an error, not an empty history.
    context.entity(id).await?;
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut cursor = None;
    loop {
        let request = PageRequest {
            limit: Some(PAGE_LIMIT_MAX),
            cursor,
        };
        let page = context
            .store
            .history(&context.scope(), id, &request)
            .await?;
        events.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if context.out.is_json() {
        return context.out.document(&Page {
            items: events,
            next_cursor: None,
        });
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|event| {
            vec![
                event.version.to_string(),
                output::time(event.recorded_at),
                event.event_type().to_string(),
                event.metadata.source.as_str().to_string(),
                output::event_summary(event),
            ]
        })
        .collect();
    context.out.table(
        &["VERSION", "RECORDED", "TYPE", "SOURCE", "CHANGE"],
        &rows,
        "",
    )
}
