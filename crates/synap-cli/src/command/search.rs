//! `synap search QUERY [--limit N] [--mode fulltext|semantic|hybrid] [--type T]
//! [--tag T]`: search over titles and content, best first — by words, by meaning
//! or both (`synap_flows::search`). Semantic and hybrid load the configured
//! embedding model (`SYNAP_EMBEDDING_*`) to embed the query.

use crate::cli::GlobalArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::input::TypeArg;
use crate::output::{self, TITLE_CELL_CHARS_MAX};
use crate::settings::{Overrides, Settings};
use synap_flows::{SearchError, SearchMode};
use synap_store::{Page, SearchRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Fulltext,
    Semantic,
    Hybrid,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to find (accents and case do not matter)
    pub query: String,
    /// At most this many hits (1 to 500) [default: 50]
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// How to match
    #[arg(long, value_name = "MODE", default_value = "fulltext")]
    pub mode: Mode,
    /// Only entities of this type
    #[arg(long = "type", value_name = "T")]
    pub entity_type: Option<TypeArg>,
    /// Only entities with this tag
    #[arg(long, value_name = "T")]
    pub tag: Option<String>,
}

pub async fn run(context: &Context, global: &GlobalArgs, args: Args) -> Result<(), CliError> {
    let (mode, embedder) = match args.mode {
        Mode::Fulltext => (SearchMode::Fulltext, None),
        mode => {
            let settings = Settings::load(Overrides {
                data_dir: global.data_dir.clone(),
                database_url: global.database_url.clone(),
            })?;
            let flows = settings.workflows(&|name| std::env::var(name).ok())?;
            let embedder = crate::workers::embedder(&flows)?;
            let mode = if mode == Mode::Semantic {
                SearchMode::Semantic
            } else {
                SearchMode::Hybrid
            };
            (mode, embedder)
        }
    };
    let request = SearchRequest {
        query: args.query,
        entity_type: args.entity_type.map(Into::into),
        tag: args.tag,
        limit: args.limit,
    };
    let hits = synap_flows::search(
        context.store.as_ref(),
        embedder.as_deref(),
        &context.scope(),
        &request,
        mode,
    )
    .await
    .map_err(|error| match error {
        SearchError::Store(error) => CliError::from(error),
        SearchError::Unavailable => CliError::error(
            "semantic and hybrid search need an embedding model; set SYNAP_EMBEDDING_PROVIDER              (see the README) or use --mode fulltext",
        ),
        SearchError::Embedding(error) => {
            CliError::error(format!("{error}; --mode fulltext still works"))
        }
    })?;
    if context.out.is_json() {
        return context.out.document(&Page {
            items: hits,
            next_cursor: None,
        });
    }
    if hits.is_empty() {
        return context.out.line("no matches");
    }
    let highlight = output::stdout_is_terminal();
    let mut text = String::new();
    for hit in &hits {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "{}  {}  {:.2}  {}\n    {}",
            hit.id,
            hit.entity_type,
            hit.score,
            output::truncate(&hit.title, TITLE_CELL_CHARS_MAX),
            snippet_for_terminal(&hit.snippet, highlight)
        ));
    }
    context.out.line(text)
}

/// The snippet is HTML-escaped text with matches in `<mark>`: shown in bold on a
/// terminal, plain otherwise, with the entities decoded.
fn snippet_for_terminal(snippet: &str, highlight: bool) -> String {
    let (open, close) = if highlight {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    snippet
        .replace("<mark>", open)
        .replace("</mark>", close)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_lose_their_markup_off_a_terminal() {
        let shown = snippet_for_terminal("a <mark>caf&eacute;</mark> &amp; &lt;b&gt;", false);
        assert_eq!(shown, "a caf&eacute; & <b>");
    }
}
