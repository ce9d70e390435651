//! `synap worker [--workers N]`: runs workflows (AI enrichment, …) in a process of
//! its own, on the same database as `synap serve` — for deployments that scale
//! the work apart from the HTTP API (`SYNAP_WORKERS=0` on the servers then). Runs
//! until SIGTERM or SIGINT, then stops between steps and exits 0; a run cut off
//! mid-step is picked up by another worker when its lease expires, and its
//! completed steps do not run again.

use crate::cli::GlobalArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::settings::{Overrides, Settings};
use crate::signals::Signals;
use crate::workers::{self, Workers};
use serde::Serialize;
use std::sync::Arc;
use synap_store::SystemClock;
use synap_workflow::engine::NoObserver;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workers in this process (1 to 64) [default: SYNAP_WORKERS, else 1]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

/// The `--json` announcement and summary.
#[derive(Debug, Serialize)]
struct Announcement<'a> {
    event: &'a str,
    workers: usize,
    workflows: Vec<String>,
}

pub async fn run(context: &Context, global: &GlobalArgs, args: Args) -> Result<(), CliError> {
    let settings = Settings::load(Overrides {
        data_dir: global.data_dir.clone(),
        database_url: global.database_url.clone(),
    })?;
    let flows = settings.workflows(&|name| std::env::var(name).ok())?;
    let count = args.workers.unwrap_or(flows.workers.max(1));
    if !(1..=synap_workflow::engine::WORKERS_MAX).contains(&count) {
        return Err(CliError::usage(format!(
            "--workers takes 1 to {}",
            synap_workflow::engine::WORKERS_MAX
        )));
    }
    let signals = Signals::install()?;
    let clock = Arc::new(SystemClock);
    let prepared = workers::flows(context.store.clone(), clock.clone(), &flows)?;
    let mut workflows: Vec<String> = prepared.registry.names().map(str::to_string).collect();
    workflows.sort();
    let running = Workers::start(
        context.store.clone(),
        clock,
        prepared,
        &flows,
        count,
        Arc::new(NoObserver),
    );
    if context.out.is_json() {
        context.out.json_line(&Announcement {
            event: "started",
            workers: running.count(),
            workflows,
        })?;
    } else {
        context.out.line(format!(
            "synap worker: {} worker{} running {}",
            running.count(),
            if running.count() == 1 { "" } else { "s" },
            workflows.join(", ")
        ))?;
    }
    signals.received().await;
    let report = running.stop().await;
    if !context.out.is_json() {
        context.out.line(format!(
            "synap worker stopped: {} runs succeeded, {} failed",
            report.runs_succeeded, report.runs_failed
        ))?;
    }
    Ok(())
}
