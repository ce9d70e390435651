//! `synap export PATH [--at RFC3339]`: writes every entity as a Markdown file with
//! frontmatter (`synap_vault::export`) into a new folder, or into a `.zip` when
//! PATH ends in `.zip`; `--at` exports the knowledge base as it was then.

use crate::command::import::is_zip;
use crate::context::Context;
use crate::error::CliError;
use crate::input;
use serde::Serialize;
use std::path::PathBuf;
use synap_domain::Timestamp;
use synap_vault::{ExportOptions, export_vault};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write: a new or empty folder, or FILE.zip (must not exist)
    #[arg(value_name = "DIR|FILE.zip")]
    pub path: PathBuf,
    /// Export the knowledge base as it was at this time (RFC 3339)
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
}

#[derive(Debug, Serialize)]
struct Exported {
    path: String,
    entities: u64,
    relations: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<Timestamp>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let at = args
        .at
        .as_deref()
        .map(|raw| input::timestamp("--at", raw))
        .transpose()?;
    if is_zip(&args.path) && args.path.exists() {
        return Err(CliError::usage(format!(
            "{} exists; choose a new file name or remove it first",
            args.path.display()
        )));
    }
    let vault = export_vault(context.store.clone(), context.scope(), ExportOptions { at }).await?;
    let path = args.path.clone();
    let entities = vault.entities;
    let relations = vault.relations;
    tokio::task::spawn_blocking(move || {
        if is_zip(&path) {
            let file = std::fs::File::create_new(&path)?;
            vault.write_zip(std::io::BufWriter::new(file)).map(drop)
        } else {
            vault.write_dir(&path)
        }
    })
    .await
    .map_err(|e| CliError::error(format!("writing the export failed: {e}")))?
    .map_err(|e| CliError::error(format!("cannot write {}: {e}", args.path.display())))?;
    let done = Exported {
        path: args.path.display().to_string(),
        entities,
        relations,
        at,
    };
    if context.out.is_json() {
        context.out.document(&done)
    } else {
        context.out.line(format!(
            "exported {} entities and {} relations to {}",
            done.entities, done.relations, done.path
        ))
    }
}
