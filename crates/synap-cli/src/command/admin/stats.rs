//! `synap admin stats`: sizes of the log, the projections and the content store,
//! bytes on disk and the amplification (bytes on disk per content byte).

use crate::context::Context;
use crate::error::CliError;
use crate::output;

pub async fn run(context: &Context) -> Result<(), CliError> {
    let stats = context.store.stats().await?;
    if context.out.is_json() {
        return context.out.document(&stats);
    }
    let rows = [
        ("events", stats.events.to_string()),
        ("entities", stats.entities.to_string()),
        ("relations", stats.relations.to_string()),
        ("users", stats.users.to_string()),
        ("content versions", stats.content_versions.to_string()),
        ("content bytes", output::bytes(stats.content_bytes)),
        ("bytes on disk", output::bytes(stats.bytes_on_disk)),
        ("amplification", format!("{:.2}", stats.amplification)),
    ];
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let text = rows
        .iter()
        .map(|(name, value)| format!("{name:width$}  {value}"))
        .collect::<Vec<_>>()
        .join("\n");
    context.out.line(text)
}
