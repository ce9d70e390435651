//! `synap workflow show RUN_ID`: a run and its steps — status, attempts, the last
//! duration and error of each step. `--json` prints the run with its steps.

use crate::context::Context;
use crate::error::CliError;
use crate::output;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run's id
    #[arg(value_name = "RUN_ID")]
    pub id: Uuid,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let detail = context
        .store
        .run_detail(&context.scope(), args.id)
        .await?
        .ok_or_else(|| super::no_such_run(args.id))?;
    if context.out.is_json() {
        return context.out.document(&detail);
    }
    let run = &detail.run;
    context.out.line(format!(
        "{} {} — {} (claims: {}, created {})",
        run.workflow,
        run.id,
        run.status.as_str(),
        run.attempt,
        output::time(run.created_at)
    ))?;
    if let Some(error) = &run.error {
        context.out.line(format!("error: {error}"))?;
    }
    let rows: Vec<Vec<String>> = detail
        .steps
        .iter()
        .map(|step| {
            vec![
                step.name.clone(),
                step.status.as_str().to_string(),
                step.attempts.to_string(),
                format!("{:.1} ms", step.last_duration_us as f64 / 1_000.0),
                step.last_error
                    .as_deref()
                    .map_or_else(String::new, |e| output::truncate(e, 80)),
            ]
        })
        .collect();
    context.out.table(
        &["STEP", "STATUS", "ATTEMPTS", "LAST DURATION", "LAST ERROR"],
        &rows,
        "no step has run yet",
    )
}
