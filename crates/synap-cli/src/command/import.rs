//! `synap import PATH`: brings a Markdown vault (a folder, or a `.zip` of one) in
//! as entities, idempotently (`synap_vault::import`). Prints what was created,
//! changed and left alone, and every file or link that could not be mapped; those
//! never stop the import.

use crate::context::Context;
use crate::error::CliError;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use synap_vault::source::SourceError;
use synap_vault::{ImportOptions, VaultSource, import_vault};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vault: a folder of .md files, or a .zip of one
    #[arg(value_name = "DIR|FILE.zip")]
    pub path: PathBuf,
}

/// Whether a path names a ZIP archive (by its extension).
pub fn is_zip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("zip"))
}

fn read(path: &Path) -> Result<VaultSource, CliError> {
    let failed = |error: SourceError| {
        CliError::usage(format!("cannot read the vault {}: {error}", path.display()))
    };
    if is_zip(path) {
        let file = std::fs::File::open(path).map_err(|e| failed(e.into()))?;
        VaultSource::read_zip(std::io::BufReader::new(file)).map_err(failed)
    } else if path.is_dir() {
        VaultSource::read_dir(path).map_err(failed)
    } else {
        Err(CliError::usage(format!(
            "{} is neither a folder nor a .zip file; give the vault's folder or a ZIP of it",
            path.display()
        )))
    }
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let path = args.path.clone();
    let source = tokio::task::spawn_blocking(move || read(&path))
        .await
        .map_err(|e| CliError::error(format!("reading the vault failed: {e}")))??;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0).with_message("importing");
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} notes ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress_bar = bar.clone();
    let options = ImportOptions {
        metadata: context.metadata(),
        progress: Some(Arc::new(move |done, total| {
            progress_bar.set_length(total);
            progress_bar.set_position(done);
        })),
    };
    let report = import_vault(context.store.clone(), context.scope(), source, options).await;
    bar.finish_and_clear();
    let report = report?;
    if context.out.is_json() {
        return context.out.document(&report);
    }
    for problem in &report.problems {
        context.out.line(format!(
            "{}: {} ({})",
            problem.path, problem.message, problem.kind
        ))?;
    }
    context.out.line(format!(
        "{} notes: {} created, {} changed, {} unchanged, {} skipped; {} links added; {} files attached; {} events; {} problems",
        report.notes,
        report.created,
        report.updated,
        report.unchanged,
        report.skipped,
        report.relations_created,
        report.attachments_added,
        report.events,
        report.problems.len()
    ))
}
