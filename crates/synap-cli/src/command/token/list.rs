//! `synap token list`: the acting user's tokens, newest first, revoked ones
//! included. Shows each token's public prefix, never its secret. `--json` prints
//! `{"items": [...]}`.

use crate::context::Context;
use crate::credentials::TOKEN_MARKER;
use crate::error::CliError;
use crate::output;
use synap_store::{Page, TokenInfo};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(context: &Context, _args: Args) -> Result<(), CliError> {
    let tokens = context.store.list_tokens(context.user.id).await?;
    if context.out.is_json() {
        return context.out.document(&Page {
            items: tokens,
            next_cursor: None,
        });
    }
    let now = jiff::Timestamp::now();
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|token| {
            vec![
                token.id.to_string(),
                format!("{TOKEN_MARKER}{}…", token.prefix),
                token.scopes.join(","),
                output::time_short(token.created_at),
                token
                    .last_used_at
                    .map_or_else(|| "never".into(), output::time_short),
                state(token, now),
                output::truncate(&token.name, output::TITLE_CELL_CHARS_MAX),
            ]
        })
        .collect();
    context.out.table(
        &[
            "ID",
            "TOKEN",
            "SCOPES",
            "CREATED",
            "LAST USED",
            "STATE",
            "NAME",
        ],
        &rows,
        "no tokens yet; create one with `synap token create`",
    )
}

/// `active`, `active until …`, `expired …` or `revoked …`.
fn state(token: &TokenInfo, now: jiff::Timestamp) -> String {
    match (token.revoked_at, token.expires_at) {
        (Some(at), _) => format!("revoked {}", output::time_short(at)),
        (None, Some(at)) if at <= now => format!("expired {}", output::time_short(at)),
        (None, Some(at)) => format!("active until {}", output::time_short(at)),
        (None, None) => "active".into(),
    }
}
