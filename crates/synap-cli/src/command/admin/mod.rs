//! `synap admin …`: operator tools on the whole store (not scoped to a user).

pub mod migrate;
pub mod rebuild;
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
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Verify => verify::run(context).await,
        Command::Rebuild => rebuild::run(context).await,
        Command::Stats => stats::run(context).await,
        // Dispatched by `command::run` before any store is opened.
        Command::Migrate(_) => Err(CliError::error(
            "admin migrate opens its own databases and cannot run on an opened store",
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
