//! `synap attachment …`: one attachment of an entity.

pub mod get;

use crate::context::Context;
use crate::error::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write an attachment's bytes to a file or standard output
    Get(get::Args),
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Get(args) => get::run(context, args).await,
    }
}
