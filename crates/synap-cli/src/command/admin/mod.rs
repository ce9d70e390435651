//! `synap admin …`: operator tools on the whole store (not scoped to a user).

pub mod backup;
pub mod migrate;
pub mod rebuild;
pub mod restore;
pub mod stats;
pub mod verify;

use crate::context::Context;
use crate::error::CliError;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Rebuild every projection from the log off to the side and compare; exit 1 on any difference
    Verify,
    /// Drop and rebuild every projection from the log
    Rebuild,
    /// Events, entities, relations, content and bytes on disk
    Stats,
    /// Copy this embedded instance into an empty PostgreSQL database, rebuild and verify it there
    Migrate(migrate::Args),
    /// Write a consistent snapshot of the embedded database and its objects to FILE, while the server runs
    Backup(backup::Args),
    /// Restore a backup into an empty data directory, then verify it
    Restore(restore::Args),
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Verify => verify::run(context).await,
        Command::Rebuild => rebuild::run(context).await,
        Command::Stats => stats::run(context).await,
        // Dispatched by `command::run` before any store is opened.
        Command::Migrate(_) | Command::Backup(_) | Command::Restore(_) => Err(CliError::error(
            "admin migrate, backup and restore open their own databases and cannot run on an opened store",
        )),
    }
}

/// A progress bar over events on standard error, hidden when that is not a terminal.
fn progress_bar(message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0).with_message(message);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Runs `store`'s verify under a progress bar.
async fn verify_with_progress(
    store: &dyn synap_store::Store,
) -> synap_store::StoreResult<synap_store::VerifyReport> {
    let bar = progress_bar("verifying");
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = store.verify(&progress).await;
    bar.finish_and_clear();
    report
}

/// Prints a verify report for people: each difference and warning, then, when
/// it is clean, how many events it checked.
fn print_verify(
    out: &crate::output::Output,
    report: &synap_store::VerifyReport,
) -> Result<(), CliError> {
    for line in report.differences.iter().chain(&report.warnings) {
        out.line(line)?;
    }
    if report.is_clean() {
        out.line(format!(
            "verified {} events; the projections match the log",
            report.events_checked
        ))?;
    }
    Ok(())
}
