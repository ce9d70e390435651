//! Queries over the projections and the log. Every query is confined to the
//! caller's user id. These functions take a plain connection so the writer (inside
//! its transaction) and the read pool share them.

use crate::codec::{EVENT_COLUMNS, event_from_row, micros, sql_error, uuid};
use crate::project::{
    self, ENTITY_COLUMNS, EntityRow, complete_entity, entity_from_row, load_body,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use std::collections::{HashSet, VecDeque};
use synap_domain::StoredEvent;
use synap_domain::entity::EntityState;
use synap_domain::event::CATALOGUE;
use synap_domain::ids::{EntityId, RelationId, UserId};
use synap_domain::limits::{GRAPH_DEPTH_MAX, GRAPH_NODES_MAX, SEARCH_QUERY_CHARS_MAX};
use synap_domain::tags::tag_key;
use synap_domain::text::{QueryTerm, parse_query, preview, snippet};
use synap_store::fold::fold_entity;
use synap_store::objects::Objects;
use synap_store::{
    AsOf, Content, Direction, EntityFilter, EntityView, EventFilter, Graph, GraphEdge, GraphNode,
    GraphRequest, Page, PageRequest, RelationView, SearchHit, SearchRequest, StoreError,
    StoreResult, TagCount, cursor,
};

pub fn head_position(conn: &Connection) -> StoreResult<u64> {
    conn.prepare_cached("SELECT coalesce(max(position), 0) FROM events")
        .map_err(sql_error)?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(|p| p as u64)
        .map_err(sql_error)
}

pub fn live_entity_exists(conn: &Connection, user: &UserId, id: EntityId) -> StoreResult<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM entities WHERE id = ?1 AND user_id = ?2 AND deleted_at IS NULL",
    )
    .map_err(sql_error)?
    .exists(params![id.as_bytes(), user.as_bytes()])
    .map_err(sql_error)
}

fn view(row: EntityRow) -> EntityView {
    EntityView::from_state(&row.state, row.preview)
}

pub fn entity(conn: &Connection, user: &UserId, id: EntityId) -> StoreResult<Option<EntityView>> {
    Ok(project::load_entity(conn, user, id)?.map(view))
}

/// The state of an entity at `version`: the nearest snapshot at or below it, then
/// the events after the snapshot up to `version`.
pub fn state_at_version(
    conn: &Connection,
    user: &UserId,
    id: EntityId,
    version: u64,
) -> StoreResult<Option<EntityState>> {
    if version == 0 {
        return Ok(None);
    }
    let snapshot: Option<String> = conn
        .prepare_cached(
            "SELECT state FROM snapshots WHERE aggregate_id = ?1 AND version <= ?2 AND schema_version = ?3 \
             ORDER BY version DESC LIMIT 1",
        )
        .map_err(sql_error)?
        .query_row(params![id.as_bytes(), version as i64, crate::schema::SNAPSHOT_SCHEMA_VERSION], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    let start: Option<EntityState> = match snapshot {
        // A snapshot that cannot be read is ignored: it is only a cache.
        Some(json) => serde_json::from_str::<EntityState>(&json)
            .ok()
            .filter(|s| s.user_id == *user),
        None => None,
    };
    let from = start.as_ref().map_or(0, |s| s.version);
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_id = ?1 AND user_id = ?2 AND version > ?3 AND version <= ?4 \
             ORDER BY version"
        ))
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![
            id.as_bytes(),
            user.as_bytes(),
            from as i64,
            version as i64
        ])
        .map_err(sql_error)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        events.push(event_from_row(row)?);
    }
    if start.is_none() && events.is_empty() {
        return Ok(None);
    }
    let state = fold_entity(start, &events)?;
    Ok(state.filter(|s| s.version == version))
}

pub fn entity_at(
    conn: &Connection,
    objects: Option<&Objects>,
    user: &UserId,
    id: EntityId,
    as_of: AsOf,
) -> StoreResult<Option<EntityView>> {
    let version = match as_of {
        AsOf::Version(version) => version,
        AsOf::Time(at) => conn
            .prepare_cached(
                "SELECT coalesce(max(version), 0) FROM events WHERE aggregate_id = ?1 AND user_id = ?2 AND recorded_at <= ?3",
            )
            .map_err(sql_error)?
            .query_row(params![id.as_bytes(), user.as_bytes(), micros(at)], |r| r.get::<_, i64>(0))
            .map_err(sql_error)? as u64,
    };
    let Some(state) = state_at_version(conn, user, id, version)? else {
        return Ok(None);
    };
    let body = match &state.content {
        Some(content) => load_body(conn, objects, user, &content.hash)?.unwrap_or_default(),
        None => String::new(),
    };
    Ok(Some(EntityView::from_state(&state, preview(&body))))
}

pub fn content(
    conn: &Connection,
    objects: Option<&Objects>,
    user: &UserId,
    hash: synap_domain::ContentHash,
) -> StoreResult<Option<Content>> {
    let found = conn
        .prepare_cached("SELECT size, media_type FROM contents WHERE user_id = ?1 AND hash = ?2")
        .map_err(sql_error)?
        .query_row(params![user.as_bytes(), hash.as_bytes()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .optional()
        .map_err(sql_error)?;
    let Some((size, media_type)) = found else {
        return Ok(None);
    };
    let body = load_body(conn, objects, user, &hash)?.unwrap_or_default();
    Ok(Some(Content {
        content: synap_domain::ContentRef {
            hash,
            size: size as u64,
            media_type,
        },
        body,
    }))
}

pub fn history(
    conn: &Connection,
    user: &UserId,
    id: EntityId,
    page: &PageRequest,
) -> StoreResult<Page<StoredEvent>> {
    let limit = page.limit()?;
    let after: u64 = match &page.cursor {
        Some(c) => cursor::decode(c)?,
        None => 0,
    };
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_id = ?1 AND user_id = ?2 AND version > ?3 \
             ORDER BY version LIMIT ?4"
        ))
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![
            id.as_bytes(),
            user.as_bytes(),
            after as i64,
            i64::from(limit) + 1
        ])
        .map_err(sql_error)?;
    let mut items = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        items.push(event_from_row(row)?);
    }
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| cursor::encode(&e.version))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub fn list_entities(
    conn: &Connection,
    user: &UserId,
    filter: &EntityFilter,
    page: &PageRequest,
) -> StoreResult<Page<EntityView>> {
    let limit = page.limit()?;
    let mut sql = format!("SELECT {ENTITY_COLUMNS} FROM entities e");
    let mut args: Vec<SqlValue> = vec![SqlValue::Blob(user.as_bytes().to_vec())];
    let mut conditions = vec!["e.user_id = ?1".to_string()];
    if let Some(tag) = &filter.tag {
        sql.push_str(" JOIN entity_tags et ON et.entity_rowid = e.rowid JOIN tags t ON t.rowid = et.tag_rowid");
        args.push(SqlValue::Text(tag_key(tag.trim().trim_start_matches('#'))));
        conditions.push(format!("t.user_id = ?1 AND t.key = ?{}", args.len()));
    }
    if let Some(status) = filter.status {
        sql.push_str(" JOIN task_details td ON td.entity_rowid = e.rowid");
        args.push(SqlValue::Text(status.as_str().into()));
        conditions.push(format!("e.type = 'task' AND td.status = ?{}", args.len()));
    }
    if let Some(entity_type) = filter.entity_type {
        args.push(SqlValue::Text(entity_type.as_str().into()));
        conditions.push(format!("e.type = ?{}", args.len()));
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
        args.push(SqlValue::Integer(micros(since)));
        conditions.push(format!("e.updated_at >= ?{}", args.len()));
    }
    if let Some(c) = &page.cursor {
        let (updated_at, id): (i64, String) = cursor::decode(c)?;
        let id: uuid::Uuid = id
            .parse()
            .map_err(|_| StoreError::InvalidInput("the cursor is malformed".into()))?;
        args.push(SqlValue::Integer(updated_at));
        let at = args.len();
        args.push(SqlValue::Blob(id.as_bytes().to_vec()));
        conditions.push(format!(
            "(e.updated_at < ?{at} OR (e.updated_at = ?{at} AND e.id < ?{}))",
            args.len()
        ));
    }
    args.push(SqlValue::Integer(i64::from(limit) + 1));
    sql.push_str(&format!(
        " WHERE {} ORDER BY e.updated_at DESC, e.id DESC LIMIT ?{}",
        conditions.join(" AND "),
        args.len()
    ));
    let mut statement = conn.prepare(&sql).map_err(sql_error)?;
    let mut rows = statement.query(params_from_iter(args)).map_err(sql_error)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        found.push(entity_from_row(row)?);
    }
    drop(rows);
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
    conn: &Connection,
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
        Direction::Out => "r.source_id = ?2",
        Direction::In => "r.target_id = ?2",
        Direction::Both => "(r.source_id = ?2 OR r.target_id = ?2)",
    };
    let sql = format!(
        "SELECT r.id, r.source_id, s.title, r.target_id, t.title, r.kind, r.created_at FROM relations r \
         JOIN entities s ON s.id = r.source_id JOIN entities t ON t.id = r.target_id \
         WHERE r.user_id = ?1 AND {side} AND s.deleted_at IS NULL AND t.deleted_at IS NULL \
         ORDER BY r.created_at, r.id"
    );
    let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement
        .query(params![user.as_bytes(), id.as_bytes()])
        .map_err(sql_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let get = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
        out.push(RelationView {
            id: RelationId(uuid(&row.get::<_, Vec<u8>>(0).map_err(get)?)?),
            source_id: EntityId(uuid(&row.get::<_, Vec<u8>>(1).map_err(get)?)?),
            source_title: row.get(2).map_err(get)?,
            target_id: EntityId(uuid(&row.get::<_, Vec<u8>>(3).map_err(get)?)?),
            target_title: row.get(4).map_err(get)?,
            kind: row.get(5).map_err(get)?,
            created_at: crate::codec::timestamp(row.get(6).map_err(get)?)?,
        });
    }
    Ok(out)
}

pub fn graph(conn: &Connection, user: &UserId, request: &GraphRequest) -> StoreResult<Graph> {
    if request.depth > GRAPH_DEPTH_MAX {
        return Err(StoreError::InvalidInput(format!(
            "depth {} is too deep; use 0 to {GRAPH_DEPTH_MAX}",
            request.depth
        )));
    }
    let Some(root) =
        project::load_entity(conn, user, request.root)?.filter(|r| !r.state.is_deleted())
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
                let Some(row) = project::load_entity(conn, user, other)? else {
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

pub fn tags(conn: &Connection, user: &UserId) -> StoreResult<Vec<TagCount>> {
    let mut statement = conn
        .prepare_cached("SELECT name, count FROM tags WHERE user_id = ?1 AND count > 0 ORDER BY count DESC, key")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([user.as_bytes()], |r| {
            Ok(TagCount {
                name: r.get(0)?,
                count: r.get::<_, i64>(1)? as u64,
            })
        })
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

/// The FTS5 expression for parsed query terms (all must match). Terms contain only
/// letters and digits, so quoting them is enough to keep FTS5 syntax out.
pub fn fts_expression(terms: &[QueryTerm]) -> String {
    let parts: Vec<String> = terms
        .iter()
        .map(|term| match term {
            QueryTerm::Prefix(word) => format!("\"{word}\"*"),
            QueryTerm::Phrase(words) => format!("\"{}\"", words.join(" ")),
            QueryTerm::Cjk(chars) if chars.len() == 1 => format!("\"{}\"*", chars[0]),
            QueryTerm::Cjk(chars) => {
                let bigrams: Vec<String> = chars.windows(2).map(|w| w.iter().collect()).collect();
                format!("\"{}\"", bigrams.join(" "))
            }
        })
        .collect();
    parts.join(" ")
}

pub fn search(
    conn: &Connection,
    objects: Option<&Objects>,
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
    let mut sql = format!(
        "SELECT {ENTITY_COLUMNS}, bm25(search, 10.0, 1.0) AS rank FROM search JOIN entities e ON e.rowid = search.rowid"
    );
    let mut args: Vec<SqlValue> = vec![
        SqlValue::Text(fts_expression(&terms)),
        SqlValue::Blob(user.as_bytes().to_vec()),
    ];
    let mut conditions = vec![
        "search MATCH ?1".to_string(),
        "e.user_id = ?2".into(),
        "e.deleted_at IS NULL".into(),
    ];
    push_type_and_tag(
        request.entity_type,
        request.tag.as_deref(),
        "?2",
        &mut args,
        &mut conditions,
    );
    args.push(SqlValue::Integer(i64::from(limit)));
    sql.push_str(&format!(
        " WHERE {} ORDER BY rank LIMIT ?{}",
        conditions.join(" AND "),
        args.len()
    ));
    let mut statement = conn.prepare(&sql).map_err(sql_error)?;
    let mut rows = statement.query(params_from_iter(args)).map_err(sql_error)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let rank: f64 = row
            .get(14)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        found.push((entity_from_row(row)?, rank));
    }
    drop(rows);
    let mut hits = Vec::with_capacity(found.len());
    for (mut row, rank) in found {
        complete_entity(conn, &mut row)?;
        let body = match &row.state.content {
            Some(content) => load_body(conn, objects, user, &content.hash)?.unwrap_or_default(),
            None => String::new(),
        };
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
            score: -rank,
            snippet: snippet(&text, &terms),
            updated_at: row.state.updated_at,
        });
    }
    Ok(hits)
}

/// Adds a search's filters on the entity row `e`: its type, and a tag of the user
/// bound at `user_param` (`?1`, `?2`, …).
pub(crate) fn push_type_and_tag(
    entity_type: Option<synap_domain::entity::EntityType>,
    tag: Option<&str>,
    user_param: &str,
    args: &mut Vec<SqlValue>,
    conditions: &mut Vec<String>,
) {
    if let Some(entity_type) = entity_type {
        args.push(SqlValue::Text(entity_type.as_str().into()));
        conditions.push(format!("e.type = ?{}", args.len()));
    }
    if let Some(tag) = tag {
        args.push(SqlValue::Text(tag_key(tag.trim().trim_start_matches('#'))));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM entity_tags et JOIN tags t ON t.rowid = et.tag_rowid \
             WHERE et.entity_rowid = e.rowid AND t.user_id = {user_param} AND t.key = ?{})",
            args.len()
        ));
    }
}

pub fn read_events(
    conn: &Connection,
    user: &UserId,
    filter: &EventFilter,
) -> StoreResult<Vec<StoredEvent>> {
    let limit = PageRequest {
        limit: filter.limit,
        cursor: None,
    }
    .limit()?;
    let mut args: Vec<SqlValue> = vec![
        SqlValue::Blob(user.as_bytes().to_vec()),
        SqlValue::Integer(filter.after.min(i64::MAX as u64) as i64),
    ];
    let mut conditions = vec!["user_id = ?1".to_string(), "position > ?2".into()];
    if !filter.types.is_empty() {
        let mut placeholders = Vec::new();
        for event_type in &filter.types {
            if !CATALOGUE.iter().any(|(name, _)| name == event_type) {
                return Err(StoreError::InvalidInput(format!(
                    "unknown event type {event_type:?}; types look like entity.created"
                )));
            }
            args.push(SqlValue::Text(event_type.clone()));
            placeholders.push(format!("?{}", args.len()));
        }
        conditions.push(format!("type IN ({})", placeholders.join(", ")));
    }
    if let Some(aggregate) = filter.aggregate_id {
        args.push(SqlValue::Blob(aggregate.as_bytes().to_vec()));
        conditions.push(format!("aggregate_id = ?{}", args.len()));
    }
    if let Some(since) = filter.since {
        args.push(SqlValue::Integer(micros(since)));
        conditions.push(format!("recorded_at >= ?{}", args.len()));
    }
    if let Some(until) = filter.until {
        args.push(SqlValue::Integer(micros(until)));
        conditions.push(format!("recorded_at < ?{}", args.len()));
    }
    args.push(SqlValue::Integer(i64::from(limit)));
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE {} ORDER BY position LIMIT ?{}",
        conditions.join(" AND "),
        args.len()
    );
    let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement.query(params_from_iter(args)).map_err(sql_error)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        events.push(event_from_row(row)?);
    }
    Ok(events)
}
