//! `synap workflow runs [--status S] [--workflow NAME] [--limit N] [--cursor C]`:
//! one page of runs, newest first. `--json` prints the page (`items`, `next_cursor`).

use super::StatusArg;
use crate::context::Context;
use crate::error::CliError;
use crate::output;
use synap_store::PageRequest;
use synap_store::workflow::RunFilter;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only runs in this state
    #[arg(long, value_name = "S")]
    pub status: Option<StatusArg>,
    /// Only runs of this workflow (e.g. capture.enrich)
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
    /// At most this many (1 to 500) [default: 50]
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue after the page that printed this cursor
    #[arg(long, value_name = "C")]
    pub cursor: Option<String>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let filter = RunFilter {
        status: args.status.map(Into::into),
        workflow: args.workflow,
    };
    let page = PageRequest {
        limit: args.limit,
        cursor: args.cursor,
    };
    let page = context
        .store
        .list_runs(&context.scope(), &filter, &page)
        .await?;
    if context.out.is_json() {
        return context.out.document(&page);
    }
    let rows: Vec<Vec<String>> = page
        .items
        .iter()
        .map(|run| {
            vec![
                run.id.to_string(),
                run.workflow.clone(),
                run.status.as_str().to_string(),
                run.attempt.to_string(),
                output::time_short(run.created_at),
                run.error
                    .as_deref()
                    .map_or_else(String::new, |e| output::truncate(e, 60)),
            ]
        })
        .collect();
    context.out.table(
        &["ID", "WORKFLOW", "STATUS", "CLAIMS", "CREATED", "ERROR"],
        &rows,
        "no workflow runs yet; `synap capture TEXT` starts one",
    )?;
    if let Some(cursor) = page.next_cursor {
        context
            .out
            .line(format!("more: synap workflow runs --cursor {cursor}"))?;
    }
    Ok(())
}
