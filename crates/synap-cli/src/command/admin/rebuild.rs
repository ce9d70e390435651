//! `synap admin rebuild`: drops every projection and rebuilds it from the log,
//! with a progress bar on standard error when that is a terminal.

use crate::context::Context;
use crate::error::CliError;

pub async fn run(context: &Context) -> Result<(), CliError> {
    let bar = super::progress_bar("rebuilding");
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = context.store.rebuild(&progress).await;
    bar.finish_and_clear();
    let report = report?;
    if context.out.is_json() {
        return context.out.document(&report);
    }
    context.out.line(format!(
        "rebuilt {} entities and {} relations from {} events in {:.2} s",
        report.entities, report.relations, report.events, report.seconds
    ))
}
