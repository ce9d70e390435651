//! `synap webhook add|list|show|rm`: the acting user's webhook subscriptions, as
//! `/v1/webhooks` serves them. `add` checks the target like the server does
//! (private, loopback and link-local addresses are refused unless
//! `SYNAP_WEBHOOK_ALLOW_PRIVATE=1`) and prints the signing secret once.
//! `--json` prints the HTTP API's shapes. Deliveries are `webhook.deliver` runs
//! (`synap workflow runs`).

use crate::context::Context;
use crate::error::CliError;
use synap_server::routes::webhooks::{CreatedWebhook, Webhook, fresh_subscription};
use uuid::Uuid;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Subscribe a URL to event types; prints the signing secret once
    Add(AddArgs),
    /// List your subscriptions and how their deliveries go
    List,
    /// Show one subscription (why it was disabled, if it was)
    Show(IdArgs),
    /// Delete a subscription
    Rm(IdArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Where deliveries are POSTed (http or https)
    #[arg(value_name = "URL")]
    pub url: String,
    /// An event type to deliver (`entity.created`, …; `*` for all); repeat for more
    #[arg(long = "event", value_name = "TYPE", required = true)]
    pub events: Vec<String>,
    /// A note for yourself
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct IdArgs {
    /// The subscription's id
    #[arg(value_name = "ID")]
    pub id: Uuid,
}

pub async fn run(context: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Add(args) => add(context, args).await,
        Command::List => list(context).await,
        Command::Show(args) => {
            let webhook = context
                .store
                .webhook(&context.scope(), args.id)
                .await?
                .ok_or_else(|| missing(args.id))?;
            show(context, &webhook.into())
        }
        Command::Rm(args) => {
            if !context
                .store
                .delete_webhook(&context.scope(), args.id)
                .await?
            {
                return Err(missing(args.id));
            }
            if context.out.is_json() {
                return context
                    .out
                    .document(&serde_json::json!({ "deleted": args.id }));
            }
            context.out.line(format!("deleted webhook {}", args.id))
        }
    }
}

async fn add(context: &Context, args: AddArgs) -> Result<(), CliError> {
    let url = args.url.clone();
    let new = fresh_subscription(
        args.url,
        args.events,
        args.description,
        context.webhook_allow_private,
    )
    .map_err(|reason| CliError::usage(format!("{url}: {reason}")))?;
    let made = context.store.create_webhook(&context.scope(), new).await?;
    let created = CreatedWebhook {
        secret: made.secret.clone(),
        webhook: made.into(),
    };
    if context.out.is_json() {
        return context.out.document(&created);
    }
    let webhook = &created.webhook;
    context.out.line(format!(
        "webhook {} delivers {} to {}",
        webhook.id,
        webhook.event_types.join(", "),
        webhook.url
    ))?;
    context.out.line(format!(
        "signing secret (shown once; verify webhook-signature with it): {}",
        created.secret
    ))
}

async fn list(context: &Context) -> Result<(), CliError> {
    let all: Vec<Webhook> = context
        .store
        .webhooks(&context.scope())
        .await?
        .into_iter()
        .map(Webhook::from)
        .collect();
    if context.out.is_json() {
        return context.out.document(&serde_json::json!({ "items": all }));
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|w| {
            vec![
                w.id.to_string(),
                w.status.to_string(),
                w.event_types.join(","),
                w.url.clone(),
                w.consecutive_failures.to_string(),
            ]
        })
        .collect();
    context.out.table(
        &["ID", "STATUS", "EVENTS", "URL", "FAILURES"],
        &rows,
        "no webhooks; add one with `synap webhook add URL --event entity.created`",
    )
}

fn show(context: &Context, webhook: &Webhook) -> Result<(), CliError> {
    if context.out.is_json() {
        return context.out.document(webhook);
    }
    let mut lines = vec![
        format!("id:       {}", webhook.id),
        format!("url:      {}", webhook.url),
        format!("events:   {}", webhook.event_types.join(", ")),
        format!("status:   {}", webhook.status),
        format!("failures: {} in a row", webhook.consecutive_failures),
    ];
    if let Some(description) = &webhook.description {
        lines.push(format!("note:     {description}"));
    }
    if let Some(reason) = &webhook.disabled_reason {
        lines.push(format!("disabled: {reason}"));
    }
    if let Some(error) = &webhook.last_error {
        lines.push(format!("last error: {error}"));
    }
    for line in lines {
        context.out.line(line)?;
    }
    Ok(())
}

fn missing(id: Uuid) -> CliError {
    CliError::not_found(format!(
        "there is no webhook {id}; `synap webhook list` shows yours"
    ))
}
