//! `synap attach ENTITY FILE`: attaches a file to an entity. The file streams to
//! the object store (at most the attachment limit, `SYNAP_ATTACHMENT_LIMIT`,
//! 100 MiB by default); its media type is detected from its bytes. Prints the new
//! attachment's id (`--json`: the attachment).

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use futures_util::StreamExt;
use std::path::PathBuf;
use synap_store::attachments::{self, AttachError, Upload};

/// Bytes read from the file at a time.
const READ_CHUNK_BYTES: usize = 256 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity's id
    pub entity: String,
    /// The file to attach
    pub file: PathBuf,
    /// The name to store (default: the file's name)
    #[arg(long)]
    pub name: Option<String>,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::entity_id(&args.entity)?;
    let filename = match args.name {
        Some(name) => name,
        None => args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| CliError::usage(format!("{} names no file", args.file.display())))?,
    };
    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(|e| CliError::error(format!("cannot read {}: {e}", args.file.display())))?;
    let body = tokio_util_free_stream(file);
    let upload = Upload {
        filename,
        declared_media_type: None,
        limit_bytes: context.attachment_limit_bytes,
        metadata: context.metadata(),
    };
    let (attachment, _) =
        attachments::attach(context.store.as_ref(), context.scope(), id, upload, body)
            .await
            .map_err(|error| match error {
                AttachError::TooLarge { limit_bytes } => CliError::error(format!(
                    "the file is over the attachment limit of {limit_bytes} bytes; raise SYNAP_ATTACHMENT_LIMIT to attach it"
                )),
                AttachError::Upload(message) => CliError::error(format!(
                    "reading {} failed: {message}",
                    args.file.display()
                )),
                AttachError::Store(error) => error.into(),
            })?;
    if context.out.is_json() {
        context.out.document(&attachment)
    } else {
        context.out.line(attachment.id.to_string())
    }
}

/// The file as a stream of chunks (without pulling in `tokio-util`).
fn tokio_util_free_stream(file: tokio::fs::File) -> attachments::ByteStream {
    futures_util::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buffer = vec![0u8; READ_CHUNK_BYTES];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(bytes::Bytes::from(buffer)), Some(file)))
            }
            Err(error) => Some((Err(error), None)),
        }
    })
    .boxed()
}
