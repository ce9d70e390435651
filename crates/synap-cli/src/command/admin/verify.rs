//! `synap admin verify`: folds the whole log off to the side and compares the
//! result with the live projections. Prints each difference; exits 1 if any.

use crate::context::Context;
use crate::error::CliError;

pub async fn run(context: &Context) -> Result<(), CliError> {
    let report = super::verify_with_progress(context.store.as_ref()).await?;
    if context.out.is_json() {
        context.out.document(&report)?;
    } else {
        super::print_verify(&context.out, &report)?;
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(CliError::error(format!(
            "{} differences between the projections and the log; repair them with `synap admin rebuild`",
            report.differences.len()
        )))
    }
}
