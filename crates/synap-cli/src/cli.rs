//! The argument grammar: the global flags and the command tree. Each command's own
//! arguments live next to its code in [`crate::command`].

use crate::command::{
    admin, attach, attachment, attachments, capture, detach, events, export, history, import, link,
    links, list, note, restore, revert, rm, search, serve, show, suggestion, task, token, unlink,
    user, webhook, worker, workflow,
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Synap: capture notes and tasks, link and search them; every change is an event.
#[derive(Debug, Parser)]
#[command(name = "synap", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes. Flags override `SYNAP_*` variables, which override
/// `<data-dir>/synap.toml`, which overrides the defaults.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Data directory: the embedded database and synap.toml [default: ./synap-data]
    #[arg(long, global = true, env = "SYNAP_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database: sqlite://PATH [default: sqlite://<data-dir>/synap.db]
    #[arg(
        long,
        global = true,
        env = "SYNAP_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Act as this user instead of the local owner
    #[arg(long, global = true, value_name = "EMAIL")]
    pub user: Option<String>,
    /// Print JSON: one document, or one object per line for `events --follow`
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Capture a thought as a note now; a workflow then titles, tags and types it
    Capture(capture::Args),
    /// Add and edit notes (and other entities)
    #[command(subcommand)]
    Note(note::Command),
    /// Add tasks and move them through their states
    #[command(subcommand)]
    Task(task::Command),
    /// Show an entity and its content, now or at a past time or version
    Show(show::Args),
    /// List entities, most recently updated first
    List(list::Args),
    /// Show an entity's events, oldest first
    History(history::Args),
    /// Restore an earlier version by appending events (history is kept)
    Revert(revert::Args),
    /// Delete an entity (restorable with `synap restore`)
    Rm(rm::Args),
    /// Restore a deleted entity
    Restore(restore::Args),
    /// Attach a file to an entity (streamed; media type detected from its bytes)
    Attach(attach::Args),
    /// List the files attached to an entity
    Attachments(attachments::Args),
    /// Read one attachment
    #[command(subcommand)]
    Attachment(attachment::Command),
    /// Detach a file from an entity (revert can bring it back)
    Detach(detach::Args),
    /// Link two entities
    Link(link::Args),
    /// Remove a link
    Unlink(unlink::Args),
    /// Show the links of an entity
    Links(links::Args),
    /// Search titles and content
    Search(search::Args),
    /// Read the event log, or follow it as it grows
    Events(events::Args),
    /// Import a Markdown vault (a folder or a .zip); importing again applies only changes
    Import(import::Args),
    /// Export every entity as Markdown with frontmatter, now or as it was at a time
    Export(export::Args),
    /// Serve the HTTP API until SIGTERM or Ctrl-C
    Serve(serve::Args),
    /// Run workflows (AI enrichment, …) in a process of its own until SIGTERM or Ctrl-C
    Worker(worker::Args),
    /// Show, retry and cancel workflow runs
    #[command(subcommand)]
    Workflow(workflow::Command),
    /// List, accept and dismiss what the insight job suggests
    #[command(subcommand)]
    Suggestion(suggestion::Command),
    /// Subscribe URLs to your events (signed deliveries), list and delete them
    #[command(subcommand)]
    Webhook(webhook::Command),
    /// Manage user accounts
    #[command(subcommand)]
    User(user::Command),
    /// Create, list and revoke API tokens
    #[command(subcommand)]
    Token(token::Command),
    /// Check, rebuild, measure and migrate the store
    #[command(subcommand)]
    Admin(admin::Command),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
