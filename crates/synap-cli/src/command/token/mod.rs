//! `synap token …`: API tokens of the acting user (the local owner unless `--user`).

pub mod create;
pub mod list;
pub mod revoke;

use crate::context::Context;
use crate::error::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an API token; prints it once (it cannot be shown again)
    Create(create::Args),
    /// List your tokens, newest first (never their secrets)
    List(list::Args),
    /// Revoke a token; it stops working at once
    Revoke(revoke::Args),
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Create(args) => create::run(context, args).await,
        Command::List(args) => list::run(context, args).await,
        Command::Revoke(args) => revoke::run(context, args).await,
    }
}

/// A token scope on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    Read,
    Write,
    Admin,
}

impl ScopeArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeArg::Read => "read",
            ScopeArg::Write => "write",
            ScopeArg::Admin => "admin",
        }
    }
}
