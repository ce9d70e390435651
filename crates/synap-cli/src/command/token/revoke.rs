//! `synap token revoke ID`: revokes one of the acting user's tokens (appending
//! `user.token_revoked`). Revoking a revoked token changes nothing and succeeds;
//! an id that is not one of your tokens is "not found" (exit 3).

use crate::context::Context;
use crate::error::CliError;
use crate::input;
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The token's id (see `synap token list`)
    pub id: String,
}

#[derive(Debug, Serialize)]
struct Revoked {
    id: uuid::Uuid,
    /// False when the token was already revoked.
    revoked: bool,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let id = input::uuid(&args.id)?;
    let revoked = context.store.revoke_token(context.user.id, id).await?;
    if !revoked {
        let known = context
            .store
            .list_tokens(context.user.id)
            .await?
            .into_iter()
            .any(|token| token.id == id);
        if !known {
            return Err(CliError::not_found(format!(
                "no token {id}; `synap token list` shows your tokens"
            )));
        }
    }
    if context.out.is_json() {
        context.out.document(&Revoked { id, revoked })
    } else if revoked {
        context.out.line("revoked")
    } else {
        context.out.line("already revoked")
    }
}
