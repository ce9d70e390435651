//! `synap note …`: adding and editing notes (and entities of any type).

pub mod add;
pub mod edit;

use crate::context::Context;
use crate::error::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a note; prints its id
    Add(add::Args),
    /// Change a note's title, content, type or tags in one command
    Edit(edit::Args),
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Add(args) => add::run(context, args).await,
        Command::Edit(args) => edit::run(context, args).await,
    }
}
