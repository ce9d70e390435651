//! Queries over the projections (and the log, for history and time travel), each
//! run inside a transaction scoped to the acting user. Row-level security already
//! confines them to that user; every query still names the user explicitly, as
//! the SQLite backend's do, so the application's scoping stands on its own.
//!
//! Behaviour (validation, limits, cursors, ordering) is the SQLite backend's
//! (`synap-store-sqlite/src/read.rs`); only the SQL differs. Search is the one
//! place where the engines differ in kind; see [`search`].

use crate::codec::{EVENT_COLUMNS, corrupt, event_from_row, micros, timestamp};
use crate::pool::Conn;
use crate::project::{
    ENTITY_COLUMNS, EntityRow, complete_entity, entity_from_row, load_body, load_entity,
    state_at_version,
};
use postgres::types::ToSql;
use std::collections::{HashSet, VecDeque};
use synap_domain::StoredEvent;
use synap_domain::ids::{ContentHash, EntityId, RelationId, UserId};
use synap_domain::limits::{GRAPH_DEPTH_MAX, GRAPH_NODES_MAX, SEARCH_QUERY_CHARS_MAX};
use synap_domain::tags::tag_key;
use synap_domain::text::{QueryTerm, parse_query, preview, snippet};
use synap_store::{
    AsOf, Content, Direction, EntityFilter, EntityView, Graph, GraphEdge, GraphNode, GraphRequest,
    Page, PageRequest, RelationView, SearchHit, SearchRequest, StoreError, StoreResult, TagCount,
    cursor,
};

/// A query parameter owned by a dynamically built statement.
pub(crate) type Param = Box<dyn ToSql + Sync>;

pub(crate) fn param_refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn view(row: EntityRow) -> EntityView {
    EntityView::from_state(&row.state, row.preview)
}

fn live_entity_exists(conn: &mut Conn, user: &UserId, id: EntityId) -> StoreResult<bool> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM entities WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
            &[&id.0, &user.0],
        )?
        .is_some())
}

pub fn entity(conn: &mut Conn, user: &UserId, id: EntityId) -> StoreResult<Option<EntityView>> {
    Ok(load_entity(conn, user, id)?.map(view))
}

pub fn entity_at(
    conn: &mut Conn,
    user: &UserId,
    id: EntityId,
    as_of: AsOf,
) -> StoreResult<Option<EntityView>> {
    let version = match as_of {
        AsOf::Version(version) => version,
        AsOf::Time(at) => conn
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM events \
                 WHERE aggregate_id = $1 AND user_id = $2 AND recorded_at <= $3",
                &[&id.0, &user.0, &micros(at)],
            )?
            .try_get::<_, i64>(0)
            .map_err(corrupt)? as u64,
    };
    let Some(state) = state_at_version(conn, user, id, version)? else {
        return Ok(None);
    };
    let body = match &state.content {
        Some(content) => load_body(conn, user, &content.hash)?.unwrap_or_default(),
        None => String::new(),
    };
    Ok(Some(EntityView::from_state(&state, preview(&body))))
}

pub fn content(conn: &mut Conn, user: &UserId, hash: ContentHash) -> StoreResult<Option<Content>> {
    let Some(row) = conn.query_opt(
        "SELECT size, media_type FROM contents WHERE user_id = $1 AND hash = $2",
        &[&user.0, &hash.as_bytes().as_slice()],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(Content {
        content: synap_domain::ContentRef {
            hash,
            size: row.try_get::<_, i64>(0).map_err(corrupt)? as u64,
            media_type: row.try_get(1).map_err(corrupt)?,
        },
        body: load_body(conn, user, &hash)?.unwrap_or_default(),
    }))
}

pub fn history(
    conn: &mut Conn,
    user: &UserId,
    id: EntityId,
    page: &PageRequest,
) -> StoreResult<Page<StoredEvent>> {
    let limit = page.limit()?;
    let after: u64 = match &page.cursor {
        Some(c) => cursor::decode(c)?,
        None => 0,
    };
    let mut items = conn
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_id = $1 AND user_id = $2 AND version > $3::bigint \
                 ORDER BY version LIMIT $4"
            ),
            &[
                &id.0,
                &user.0,
                &(after.min(i64::MAX as u64) as i64),
                &(i64::from(limit) + 1),
            ],
        )?
        .iter()
        .map(event_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    // One row more than asked says whether another page follows.
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| cursor::encode(&e.version))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub fn list_entities(
    conn: &mut Conn,
    user: &UserId,
    filter: &EntityFilter,
    page: &PageRequest,
) -> StoreResult<Page<EntityView>> {
    let limit = page.limit()?;
    let mut sql = format!("SELECT {ENTITY_COLUMNS} FROM entities e");
    let mut params: Vec<Param> = vec![Box::new(user.0)];
    let mut conditions = vec!["e.user_id = $1".to_string()];
    if let Some(tag) = &filter.tag {
        params.push(Box::new(tag_key(tag.trim().trim_start_matches('#'))));
        sql.push_str(&format!(
            " JOIN entity_tags et ON et.entity_id = e.id AND et.user_id = $1 AND et.tag_key = ${}",
            params.len()
        ));
    }
    if let Some(status) = filter.status {
        sql.push_str(" JOIN task_details td ON td.entity_id = e.id");
        params.push(Box::new(status.as_str().to_string()));
        conditions.push(format!("e.type = 'task' AND td.status = ${}", params.len()));
    }
    if let Some(entity_type) = filter.entity_type {
        params.push(Box::new(entity_type.as_str().to_string()));
        conditions.push(format!("e.type = ${}", params.len()));
    }
    conditions.push(
        if filter.deleted {
            "e.deleted_at IS NOT NULL"
        } else {
            "e.deleted_at IS NULL"
        }
        .into(),
    );
    if let Some(since) = filter.updated_since {
        params.push(Box::new(micros(since)));
        conditions.push(format!("e.updated_at >= ${}", params.len()));
    }
    if let Some(c) = &page.cursor {
        // The same cursor as SQLite's: (updated_at in micros, id as text).
        let (updated_at, id): (i64, String) = cursor::decode(c)?;
        let id: uuid::Uuid = id
            .parse()
            .map_err(|_| StoreError::InvalidInput("the cursor is malformed".into()))?;
        params.push(Box::new(updated_at));
        let at = params.len();
        params.push(Box::new(id));
        conditions.push(format!(
            "(e.updated_at < ${at} OR (e.updated_at = ${at} AND e.id < ${}))",
            params.len()
        ));
    }
    params.push(Box::new(i64::from(limit) + 1));
    sql.push_str(&format!(
        " WHERE {} ORDER BY e.updated_at DESC, e.id DESC LIMIT ${}",
        conditions.join(" AND "),
        params.len()
    ));
    let mut found = conn
        .query(&sql, &param_refs(&params))?
        .iter()
        .map(entity_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let next_cursor = if found.len() > limit as usize {
        found.truncate(limit as usize);
        found
            .last()
            .map(|r| cursor::encode(&(micros(r.state.updated_at), r.state.id.to_string())))
    } else {
        None
    };
    let mut items = Vec::with_capacity(found.len());
    for mut row in found {
        complete_entity(conn, &mut row)?;
        items.push(view(row));
    }
    Ok(Page { items, next_cursor })
}

pub fn relations(
    conn: &mut Conn,
    user: &UserId,
    id: EntityId,
    direction: Direction,
) -> StoreResult<Vec<RelationView>> {
    if !live_entity_exists(conn, user, id)? {
        return Err(StoreError::Domain(
            synap_domain::DomainError::EntityNotFound(id),
        ));
    }
    let side = match direction {
        Direction::Out => "r.source_id = $2",
        Direction::In => "r.target_id = $2",
        Direction::Both => "(r.source_id = $2 OR r.target_id = $2)",
    };
    let sql = format!(
        "SELECT r.id, r.source_id, s.title, r.target_id, t.title, r.kind, r.created_at FROM relations r \
         JOIN entities s ON s.id = r.source_id JOIN entities t ON t.id = r.target_id \
         WHERE r.user_id = $1 AND {side} AND s.deleted_at IS NULL AND t.deleted_at IS NULL \
         ORDER BY r.created_at, r.id"
    );
    conn.query(&sql, &[&user.0, &id.0])?
        .iter()
        .map(|row| {
            Ok(RelationView {
                id: RelationId(row.try_get(0).map_err(corrupt)?),
                source_id: EntityId(row.try_get(1).map_err(corrupt)?),
                source_title: row.try_get(2).map_err(corrupt)?,
                target_id: EntityId(row.try_get(3).map_err(corrupt)?),
                target_title: row.try_get(4).map_err(corrupt)?,
                kind: row.try_get(5).map_err(corrupt)?,
                created_at: timestamp(row.try_get(6).map_err(corrupt)?)?,
            })
        })
        .collect()
}

pub fn graph(conn: &mut Conn, user: &UserId, request: &GraphRequest) -> StoreResult<Graph> {
    if request.depth > GRAPH_DEPTH_MAX {
        return Err(StoreError::InvalidInput(format!(
            "depth {} is too deep; use 0 to {GRAPH_DEPTH_MAX}",
            request.depth
        )));
    }
    let Some(root) = load_entity(conn, user, request.root)?.filter(|r| !r.state.is_deleted())
    else {
        return Err(StoreError::Domain(
            synap_domain::DomainError::EntityNotFound(request.root),
        ));
    };
    let mut nodes = vec![GraphNode {
        id: root.state.id,
        entity_type: root.state.entity_type,
        title: root.state.title.clone(),
        depth: 0,
    }];
    let mut seen: HashSet<EntityId> = HashSet::from([root.state.id]);
    let mut edges: Vec<GraphEdge> = Vec::new();
    let mut edge_ids: HashSet<RelationId> = HashSet::new();
    let mut queue: VecDeque<(EntityId, u32)> = VecDeque::from([(root.state.id, 0)]);
    let mut truncated = false;
    while let Some((id, depth)) = queue.pop_front() {
        if depth >= request.depth {
            continue;
        }
        for relation in relations(conn, user, id, Direction::Both)? {
            if !request.kinds.is_empty() && !request.kinds.contains(&relation.kind) {
                continue;
            }
            let other = if relation.source_id == id {
                relation.target_id
            } else {
                relation.source_id
            };
            if !seen.contains(&other) {
                if nodes.len() >= GRAPH_NODES_MAX {
                    truncated = true;
                    continue;
                }
                let Some(row) = load_entity(conn, user, other)? else {
                    continue;
                };
                seen.insert(other);
                nodes.push(GraphNode {
                    id: other,
                    entity_type: row.state.entity_type,
                    title: row.state.title,
                    depth: depth + 1,
                });
                queue.push_back((other, depth + 1));
            }
            if edge_ids.insert(relation.id) {
                edges.push(GraphEdge {
                    id: relation.id,
                    source_id: relation.source_id,
                    target_id: relation.target_id,
                    kind: relation.kind,
                });
            }
        }
    }
    // Every edge between reached nodes, also those between nodes at the last depth,
    // which the walk itself does not follow.
    for node in &nodes {
        if node.depth < request.depth {
            continue;
        }
        for relation in relations(conn, user, node.id, Direction::Out)? {
            let wanted = request.kinds.is_empty() || request.kinds.contains(&relation.kind);
            if wanted && seen.contains(&relation.target_id) && edge_ids.insert(relation.id) {
                edges.push(GraphEdge {
                    id: relation.id,
                    source_id: relation.source_id,
                    target_id: relation.target_id,
                    kind: relation.kind,
                });
            }
        }
    }
    edges.retain(|e| seen.contains(&e.source_id) && seen.contains(&e.target_id));
    Ok(Graph {
        nodes,
        edges,
        truncated,
    })
}

pub fn tags(conn: &mut Conn, user: &UserId) -> StoreResult<Vec<TagCount>> {
    conn.query(
        "SELECT name, count FROM tags WHERE user_id = $1 AND count > 0 ORDER BY count DESC, key",
        &[&user.0],
    )?
    .iter()
    .map(|r| {
        Ok(TagCount {
            name: r.try_get(0).map_err(corrupt)?,
            count: r.try_get::<_, i64>(1).map_err(corrupt)? as u64,
        })
    })
    .collect()
}

// ---------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------

/// `ts_rank_cd` weights for the labels D, C, B, A: the title (A) counts ten times
/// the body (D), as SQLite's `bm25(search, 10.0, 1.0)` weighs its columns.
const RANK_WEIGHTS: &str = "{0.1, 0.2, 0.4, 1.0}";
/// `ts_rank_cd` normalisation: 1 divides by 1 + log(document length), so a word in
/// a short note outranks the same word in a long one (as bm25 does); 32 maps the
/// rank into [0, 1), leaving room above it for the tier of whole-word matches.
const RANK_NORMALISATION: i32 = 1 | 32;
/// Shortest literal a trigram index can look up; shorter terms are matched by the
/// word index alone (a pattern without a trigram would scan every row).
const TRIGRAM_CHARS_MIN: usize = 3;
/// What precedes a word in the indexed text: its start, or a character that is
/// neither a letter nor a digit (the word boundary of `parse_query`).
const WORD_START: &str = "(^|[^[:alnum:]])";
/// What separates the words of a phrase, and what ends its last word.
const WORD_GAP: &str = "[^[:alnum:]]+";
const WORD_END: &str = "([^[:alnum:]]|$)";

/// One lexeme of a `tsquery`, quoted so that nothing in it is operator syntax.
/// (Terms hold only letters and digits already; the quoting makes that no longer
/// matter.)
fn lexeme(word: &str) -> String {
    format!("'{}'", word.replace('\\', "\\\\").replace('\'', "''"))
}

/// The `tsquery` text of one term, for `to_tsquery('simple', …)`: a word prefix,
/// a phrase of adjacent words, or a CJK run as the phrase of its bigrams (the index
/// holds CJK runs as overlapping bigrams, so any substring of two or more characters
/// is such a phrase, and a single character is a prefix) — the same as the SQLite
/// backend's `fts_expression`.
fn term_tsquery(term: &QueryTerm) -> String {
    match term {
        QueryTerm::Prefix(word) => format!("{}:*", lexeme(word)),
        QueryTerm::Phrase(words) => words
            .iter()
            .map(|w| lexeme(w))
            .collect::<Vec<_>>()
            .join(" <-> "),
        QueryTerm::Cjk(chars) if chars.len() == 1 => format!("{}:*", lexeme(&chars[0].to_string())),
        QueryTerm::Cjk(chars) => chars
            .windows(2)
            .map(|pair| lexeme(&pair.iter().collect::<String>()))
            .collect::<Vec<_>>()
            .join(" <-> "),
    }
}

/// Escapes a literal for a PostgreSQL regular expression: every ASCII character
/// that is not a letter or digit gets a backslash (a backslash before one of them
/// is always the literal character).
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The regular expression one term must match in `title || ' ' || body` when the
/// word index misses it, or `None` when the term is too short for the trigram
/// index.
///
/// The PostgreSQL parser keeps some things whole that SQLite's tokenizer splits
/// (host names such as `docs.synap.dev`, numbers such as `3.14`, words joined by
/// characters it takes for letters), and `tsvector` positions stop at 16,383 so
/// phrases late in a long text are not found by position. This pattern finds the
/// term where a word starts in the folded text, however PostgreSQL tokenised it —
/// a prefix, not an infix (`chron` does not find `synchronise`), as on SQLite.
fn term_pattern(term: &QueryTerm) -> Option<String> {
    match term {
        QueryTerm::Prefix(word) if word.chars().count() >= TRIGRAM_CHARS_MIN => {
            Some(format!("{WORD_START}{}", regex_literal(word)))
        }
        QueryTerm::Prefix(_) => None,
        QueryTerm::Phrase(words) => {
            let longest = words.iter().map(|w| w.chars().count()).max().unwrap_or(0);
            (longest >= TRIGRAM_CHARS_MIN).then(|| {
                let words: Vec<String> = words.iter().map(|w| regex_literal(w)).collect();
                format!("{WORD_START}{}{WORD_END}", words.join(WORD_GAP))
            })
        }
        // A CJK run is indexed as its bigrams separated by spaces, and that text
        // occurs only inside one run, so the substring is the term.
        QueryTerm::Cjk(chars) if chars.len() >= TRIGRAM_CHARS_MIN => {
            let bigrams: Vec<String> = chars
                .windows(2)
                .map(|w| regex_literal(&w.iter().collect::<String>()))
                .collect();
            Some(bigrams.join(" "))
        }
        QueryTerm::Cjk(_) => None,
    }
}

/// Full-text search over the caller's live entities, best first.
///
/// Every term must match (AND). A term matches through the word index
/// (`words @@ tsquery`: prefixes, phrases, CJK bigram phrases) or, for terms of
/// [`TRIGRAM_CHARS_MIN`] characters or more, through the trigram index
/// ([`term_pattern`]: the term at the start of a word of the folded text).
/// Entities whose every term the word index found rank above the others; within
/// each tier `ts_rank_cd` orders them, the title weighing ten times the body.
/// Scores: 1 + rank for the first tier, rank for the second (rank in [0, 1)).
///
/// The best `limit` are chosen inside `search` before `entities` is joined, so
/// the ranking never reads rows it will not return.
pub fn search(
    conn: &mut Conn,
    user: &UserId,
    request: &SearchRequest,
) -> StoreResult<Vec<SearchHit>> {
    if request.query.chars().count() > SEARCH_QUERY_CHARS_MAX {
        return Err(StoreError::InvalidInput(format!(
            "the query is longer than {SEARCH_QUERY_CHARS_MAX} characters"
        )));
    }
    let limit = PageRequest {
        limit: request.limit,
        cursor: None,
    }
    .limit()?;
    let terms = parse_query(&request.query);
    if terms.is_empty() {
        return Err(StoreError::InvalidInput(
            "the query has no words to search for".into(),
        ));
    }
    let queries: Vec<String> = terms.iter().map(term_tsquery).collect();
    let every = queries
        .iter()
        .map(|q| format!("({q})"))
        .collect::<Vec<_>>()
        .join(" & ");
    let any = queries
        .iter()
        .map(|q| format!("({q})"))
        .collect::<Vec<_>>()
        .join(" | ");
    let mut params: Vec<Param> = vec![Box::new(user.0), Box::new(every), Box::new(any)];
    let mut conditions = vec!["s.user_id = $1".to_string()];
    for (term, query) in terms.iter().zip(queries) {
        params.push(Box::new(query));
        let words = format!("s.words @@ to_tsquery('simple', ${})", params.len());
        match term_pattern(term) {
            Some(pattern) => {
                params.push(Box::new(pattern));
                // The very expression of the `search_trigrams` index.
                conditions.push(format!(
                    "({words} OR (s.title || ' ' || s.body) ~ ${})",
                    params.len()
                ));
            }
            None => conditions.push(words),
        }
    }
    if let Some(entity_type) = request.entity_type {
        params.push(Box::new(entity_type.as_str().to_string()));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM entities te WHERE te.id = s.entity_id AND te.user_id = $1 \
             AND te.type = ${})",
            params.len()
        ));
    }
    if let Some(tag) = &request.tag {
        params.push(Box::new(tag_key(tag.trim().trim_start_matches('#'))));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM entity_tags et WHERE et.entity_id = s.entity_id \
             AND et.user_id = $1 AND et.tag_key = ${})",
            params.len()
        ));
    }
    params.push(Box::new(i64::from(limit)));
    // `search` holds live entities only; the outer filter on `deleted_at` only
    // guards against a projection that disagrees.
    let sql = format!(
        "SELECT {ENTITY_COLUMNS}, hit.whole, hit.rank FROM ( \
           SELECT s.entity_id, \
                  s.words @@ to_tsquery('simple', $2) AS whole, \
                  ts_rank_cd('{RANK_WEIGHTS}', s.words, to_tsquery('simple', $3), {RANK_NORMALISATION}) AS rank \
           FROM search s WHERE {conditions} \
           ORDER BY whole DESC, rank DESC, s.entity_id LIMIT ${limit_param} \
         ) hit JOIN entities e ON e.id = hit.entity_id \
         WHERE e.user_id = $1 AND e.deleted_at IS NULL \
         ORDER BY hit.whole DESC, hit.rank DESC, hit.entity_id",
        conditions = conditions.join(" AND "),
        limit_param = params.len()
    );
    let mut found = Vec::new();
    for row in conn.query(&sql, &param_refs(&params))? {
        let whole: bool = row.try_get(13).map_err(corrupt)?;
        let rank: f32 = row.try_get(14).map_err(corrupt)?;
        found.push((
            entity_from_row(&row)?,
            f64::from(rank) + f64::from(u8::from(whole)),
        ));
    }
    let mut hits = Vec::with_capacity(found.len());
    for (mut row, score) in found {
        complete_entity(conn, &mut row)?;
        let body = match &row.state.content {
            Some(content) => load_body(conn, user, &content.hash)?.unwrap_or_default(),
            None => String::new(),
        };
        // The snippet comes from the original text (not the folded index), so
        // matches are marked in the spelling the user wrote.
        let text = if body.is_empty() {
            row.state.title.clone()
        } else {
            body
        };
        hits.push(SearchHit {
            id: row.state.id,
            entity_type: row.state.entity_type,
            title: row.state.title.clone(),
            tags: row.state.tags.to_vec(),
            score,
            snippet: snippet(&text, &terms),
            updated_at: row.state.updated_at,
        });
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsquery_text_quotes_every_lexeme() {
        let terms = parse_query("Synch \"deep work\" 菠萝包 包 o'brien");
        let queries: Vec<String> = terms.iter().map(term_tsquery).collect();
        assert_eq!(
            queries,
            [
                "'synch':*",
                "'deep' <-> 'work'",
                "'菠萝' <-> '萝包'",
                "'包':*",
                "'o':*",
                "'brien':*",
            ]
        );
        assert_eq!(lexeme("a'b\\c"), "'a''b\\\\c'");
    }

    #[test]
    fn patterns_find_word_starts_and_skip_short_terms() {
        let pattern = |q: &str| parse_query(q).iter().map(term_pattern).collect::<Vec<_>>();
        assert_eq!(
            pattern("synch ab"),
            [Some(format!("{WORD_START}synch")), None]
        );
        assert_eq!(
            pattern("\"deep work\""),
            [Some(format!("{WORD_START}deep{WORD_GAP}work{WORD_END}"))]
        );
        assert_eq!(
            pattern("菠萝包 菠萝"),
            [Some("菠萝 萝包".to_string()), None]
        );
        assert_eq!(regex_literal("a.b*c"), "a\\.b\\*c");
    }
}
