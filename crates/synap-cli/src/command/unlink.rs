//! `synap unlink RELATION_ID`: removes a link (not a `mentions` link, which follows
//! the `[[wikilinks]]` in the content).

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use synap_store::Target;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The relation's id (`synap links ID` shows it)
    pub relation_id: String,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::relation_id(&args.relation_id)?;
    let outcome = context.execute(Target::Unlink { id }).await?;
    let done = format!("removed link {id}");
    crate::command::print_outcome(context, &outcome, &done, &done)
}
