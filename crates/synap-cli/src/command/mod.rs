//! The commands, one module per command and one folder per command tree
//! (`note/add.rs` is `synap note add`). Each module holds its arguments and a
//! `run` that takes the [`Context`] and returns what happened as a [`CliError`] or
//! nothing.

pub mod admin;
pub mod attach;
pub mod attachment;
pub mod attachments;
pub mod capture;
pub mod detach;
pub mod events;
pub mod export;
pub mod history;
pub mod import;
pub mod link;
pub mod links;
pub mod list;
pub mod note;
pub mod restore;
pub mod revert;
pub mod rm;
pub mod search;
pub mod serve;
pub mod show;
pub mod suggestion;
pub mod task;
pub mod token;
pub mod unlink;
pub mod user;
pub mod webhook;
pub mod worker;
pub mod workflow;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::error::CliError;
use serde::Serialize;
use synap_store::CommandOutcome;

/// Opens the store and runs the command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    // These open their databases themselves, and must not create the source.
    match &cli.command {
        Command::Admin(admin::Command::Migrate(args)) => {
            return admin::migrate::run(&cli.global, args).await;
        }
        // The backup reads the database with its own connection; the restore must
        // find the data directory empty.
        Command::Admin(admin::Command::Backup(args)) => {
            return admin::backup::run(&cli.global, args).await;
        }
        Command::Admin(admin::Command::Restore(args)) => {
            return admin::restore::run(&cli.global, args).await;
        }
        _ => {}
    }
    let context = Context::open(&cli.global).await?;
    match cli.command {
        Command::Capture(args) => capture::run(&context, args).await,
        Command::Note(command) => note::run(&context, command).await,
        Command::Task(command) => task::run(&context, command).await,
        Command::Show(args) => show::run(&context, args).await,
        Command::List(args) => list::run(&context, args).await,
        Command::History(args) => history::run(&context, args).await,
        Command::Revert(args) => revert::run(&context, args).await,
        Command::Rm(args) => rm::run(&context, args).await,
        Command::Attach(args) => attach::run(&context, args).await,
        Command::Attachments(args) => attachments::run(&context, args).await,
        Command::Attachment(command) => attachment::run(&context, command).await,
        Command::Detach(args) => detach::run(&context, args).await,
        Command::Restore(args) => restore::run(&context, args).await,
        Command::Link(args) => link::run(&context, args).await,
        Command::Unlink(args) => unlink::run(&context, args).await,
        Command::Links(args) => links::run(&context, args).await,
        Command::Search(args) => search::run(&context, &cli.global, args).await,
        Command::Events(args) => events::run(&context, args).await,
        Command::Import(args) => import::run(&context, args).await,
        Command::Export(args) => export::run(&context, args).await,
        Command::Serve(args) => serve::run(&context, &cli.global, args).await,
        Command::Worker(args) => worker::run(&context, &cli.global, args).await,
        Command::Workflow(command) => workflow::run(&context, command).await,
        Command::Suggestion(command) => suggestion::run(&context, command).await,
        Command::Webhook(command) => webhook::run(&context, command).await,
        Command::User(command) => user::run(&context, command).await,
        Command::Token(command) => token::run(&context, command).await,
        Command::Admin(command) => admin::run(&context, command).await,
    }
}

/// The JSON answer of a command that created an entity.
#[derive(Debug, Serialize)]
pub struct Created {
    pub entity_id: uuid::Uuid,
    pub version: u64,
}

/// Prints the outcome of a command that changed an existing aggregate: the outcome
/// as JSON, or `done` (or `unchanged` when the command appended nothing) for people.
pub fn print_outcome(
    context: &Context,
    outcome: &CommandOutcome,
    done: &str,
    unchanged: &str,
) -> Result<(), CliError> {
    if context.out.is_json() {
        context.out.document(outcome)
    } else if outcome.events.is_empty() {
        context.out.line(unchanged)
    } else {
        context.out.line(done)
    }
}
