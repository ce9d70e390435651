//! `synap events [--after P] [--type T]... [--aggregate ID] [--since T] [--until T]
//! [--limit N] [--follow]`: the acting user's part of the event log, oldest first.
//!
//! Without `--follow`: one page; `--json` prints `{"items": [...], "next_after": P}`
//! where `next_after` (present when the page is full) is the `--after` of the next
//! page. With `--follow`: every event after `--after`, then new ones as they are
//! committed, until Ctrl-C; `--json` prints one object per line.

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use crate::output;
use serde::Serialize;
use std::time::Duration;
use synap_domain::StoredEvent;
use synap_domain::event::CATALOGUE;
use synap_domain::limits::PAGE_LIMIT_MAX;
use synap_store::EventFilter;

/// How long one wait for new events lasts before the follower checks in again.
const FOLLOW_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only events after this position
    #[arg(long, value_name = "P", default_value_t = 0)]
    pub after: u64,
    /// Only events of this type, like entity.created (repeat for several)
    #[arg(long = "type", value_name = "T")]
    pub types: Vec<String>,
    /// Only events of this entity or relation
    #[arg(long, value_name = "ID")]
    pub aggregate: Option<String>,
    /// Only events recorded at or after this time (RFC 3339)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events recorded before this time (RFC 3339)
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// At most this many per page (1 to 500) [default: 50]
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Keep printing new events until Ctrl-C
    #[arg(long)]
    pub follow: bool,
}

/// The JSON answer without `--follow`.
#[derive(Debug, Serialize)]
struct EventPage {
    items: Vec<StoredEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<u64>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    for event_type in &args.types {
        if !CATALOGUE.iter().any(|(name, _)| name == event_type) {
            let known: Vec<&str> = CATALOGUE.iter().map(|(name, _)| *name).collect();
            return Err(CliError::usage(format!(
                "--type: unknown event type {event_type:?}; use one of {}",
                known.join(", ")
            )));
        }
    }
    let filter = EventFilter {
        after: args.after,
        types: args.types,
        aggregate_id: args.aggregate.as_deref().map(input::uuid).transpose()?,
        since: args
            .since
            .as_deref()
            .map(|raw| input::timestamp("--since", raw))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|raw| input::timestamp("--until", raw))
            .transpose()?,
        limit: args.limit,
    };
    if args.follow {
        return follow(context, filter).await;
    }
    let events = context.store.read_events(&context.scope(), &filter).await?;
    let page_limit = args
        .limit
        .unwrap_or(synap_domain::limits::PAGE_LIMIT_DEFAULT);
    let next_after = match events.last() {
        Some(last) if events.len() as u64 >= u64::from(page_limit) => Some(last.position),
        _ => None,
    };
    if context.out.is_json() {
        return context.out.document(&EventPage {
            items: events,
            next_after,
        });
    }
    let rows: Vec<Vec<String>> = events.iter().map(row).collect();
    context.out.table(
        &[
            "POSITION",
            "RECORDED",
            "TYPE",
            "AGGREGATE",
            "VERSION",
            "CHANGE",
        ],
        &rows,
        "no events",
    )?;
    if let Some(after) = next_after {
        context.out.line(format!("more: add --after {after}"))?;
    }
    Ok(())
}

/// Prints events as they come until Ctrl-C.
///
/// The head position is read before each read of the log: once a read returns a
/// partial page, every event of this user up to that head has been printed, so the
/// wait starts from there. Waiting from the last printed position instead would
/// wake at once, forever, whenever other users' events lie above it.
async fn follow(context: &Context, mut filter: EventFilter) -> Result<(), CliError> {
    let page_limit = filter.limit.unwrap_or(PAGE_LIMIT_MAX);
    filter.limit = Some(page_limit);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let head = context.store.head_position().await?;
        let events = context.store.read_events(&context.scope(), &filter).await?;
        let full = events.len() as u64 >= u64::from(page_limit);
        for event in &events {
            if context.out.is_json() {
                context.out.json_line(event)?;
            } else {
                context.out.line(row(event).join("  ").trim_end())?;
            }
            filter.after = event.position;
        }
        if full {
            continue;
        }
        let seen = filter.after.max(head);
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            woken = context.store.wait_for_events(seen, FOLLOW_WAIT) => { woken?; }
        }
    }
}

fn row(event: &StoredEvent) -> Vec<String> {
    vec![
        event.position.to_string(),
        output::time(event.recorded_at),
        event.event_type().to_string(),
        event.aggregate_id.to_string(),
        event.version.to_string(),
        output::event_summary(event),
    ]
}
