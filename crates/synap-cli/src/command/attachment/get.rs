//! `synap attachment get ENTITY ATTACHMENT_ID [-o FILE]`: streams an attachment's
//! bytes to FILE (default: standard output).

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use futures_util::StreamExt;
use std::path::PathBuf;
use synap_domain::AttachmentId;
use synap_store::attachments;
use tokio::io::AsyncWriteExt;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub entity: String,
    /// The attachment's id (see `synap attachments ENTITY`)
    pub attachment: String,
    /// Write to this file instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.entity)?;
    let attachment_id = AttachmentId(input::uuid(&args.attachment)?);
    let attachment = attachments::find(context.store.as_ref(), context.scope(), id, attachment_id)
        .await?
        .ok_or_else(|| {
            CliError::not_found(format!(
                "entity {id} has no attachment {attachment_id}; list them with `synap attachments {id}`"
            ))
        })?;
    let mut stream =
        attachments::open(context.store.as_ref(), context.scope(), &attachment, None).await?;
    let write_error =
        |what: &str, e: std::io::Error| CliError::error(format!("cannot write {what}: {e}"));
    match &args.output {
        Some(path) => {
            let what = path.display().to_string();
            let mut file = tokio::fs::File::create(path)
                .await
                .map_err(|e| write_error(&what, e))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk
                    .map_err(|e| CliError::error(format!("reading the attachment failed: {e}")))?;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| write_error(&what, e))?;
            }
            file.flush().await.map_err(|e| write_error(&what, e))?;
            if !context.out.is_json() {
                eprintln!(
                    "wrote {} ({} bytes) to {what}",
                    attachment.filename, attachment.size
                );
            }
        }
        None => {
            let mut out = tokio::io::stdout();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk
                    .map_err(|e| CliError::error(format!("reading the attachment failed: {e}")))?;
                out.write_all(&chunk)
                    .await
                    .map_err(|e| write_error("standard output", e))?;
            }
            out.flush()
                .await
                .map_err(|e| write_error("standard output", e))?;
        }
    }
    Ok(())
}
