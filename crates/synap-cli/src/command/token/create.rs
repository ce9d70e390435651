//! `synap token create [--name N] [--scope S]... [--expires-in DAYS]`: mints an API
//! token for the acting user and prints it once — on standard output alone, so
//! `TOKEN=$(synap token create)` works; `--json` prints the token with its details.
//! Only its prefix and the SHA-256 of the whole token are stored.

use super::ScopeArg;
use crate::context::Context;
use crate::credentials;
use crate::error::CliError;
use crate::output;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use std::io::Write;
use synap_store::{NewToken, TokenInfo};
use uuid::Uuid;

/// Longest lifetime `--expires-in` accepts, in days (ten years).
const EXPIRES_IN_DAYS_MAX: u32 = 3650;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A name that says where the token is used
    #[arg(long, value_name = "N", default_value = "cli")]
    pub name: String,
    /// What the token may do; repeat or separate with commas [default: read,write]
    #[arg(long = "scope", value_name = "S", value_delimiter = ',')]
    pub scopes: Vec<ScopeArg>,
    /// Let the token expire after this many days (1 to 3650) [default: never]
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=EXPIRES_IN_DAYS_MAX as i64))]
    pub expires_in: Option<u32>,
}

/// The JSON answer: the token (shown this once) and what is stored about it.
#[derive(Debug, Serialize)]
struct Created<'a> {
    token: &'a str,
    #[serde(flatten)]
    info: &'a TokenInfo,
}

pub async fn run(context: &Context, args: Args) -> Result<(), CliError> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in &args.scopes {
        let scope = scope.as_str().to_string();
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        scopes = vec!["read".into(), "write".into()];
    }
    let expires_at = args
        .expires_in
        .map(|days| {
            Timestamp::now()
                .checked_add(SignedDuration::from_hours(i64::from(days) * 24))
                .map_err(|_| CliError::usage("--expires-in: the expiry is out of range"))
        })
        .transpose()?;
    let (token, prefix) = credentials::mint_token();
    let info = context
        .store
        .create_token(NewToken {
            id: Uuid::now_v7(),
            user_id: context.user.id,
            name: args.name,
            prefix,
            secret_hash: credentials::hash_secret(&token),
            scopes,
            expires_at,
        })
        .await?;
    if context.out.is_json() {
        return context.out.document(&Created {
            token: &token,
            info: &info,
        });
    }
    context.out.line(&token)?;
    let expiry = info.expires_at.map_or_else(
        || "does not expire".to_string(),
        |at| format!("expires {}", output::time_short(at)),
    );
    // The note goes to standard error so standard output holds only the token.
    let _ = writeln!(
        std::io::stderr().lock(),
        "token {} \"{}\" for {} ({}; {expiry}); store it now: it is not shown again",
        info.id,
        info.name,
        context.user.email,
        info.scopes.join(","),
    );
    Ok(())
}
