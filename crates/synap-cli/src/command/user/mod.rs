//! `synap user …`: user accounts.

pub mod add;

use crate::context::Context;
use crate::error::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a user; prints the new user's id
    Add(add::Args),
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Add(args) => add::run(context, args).await,
    }
}
