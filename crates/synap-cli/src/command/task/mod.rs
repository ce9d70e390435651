//! `synap task …`: adding tasks and changing their status.

pub mod add;
pub mod status;

use crate::context::Context;
use crate::error::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a task; prints its id
    Add(add::Args),
    /// Set a task's status
    Status(status::Args),
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Add(args) => add::run(context, args).await,
        Command::Status(args) => status::run(context, args).await,
    }
}
