//! The export driver: entities (now, or as they were at a moment) → one Markdown
//! file per entity, written to a directory or a ZIP.
//!
//! Reads go through `ReadModel` (entities, bodies, time travel) and the log
//! (relations as of a moment: the fold of `relation.created`/`relation.deleted`
//! recorded up to it). `mentions` relations that the body's links explain are not
//! repeated; every other live relation is written in the frontmatter `relations`
//! as wikilinks, so importing the export restores it. Attachments are written
//! beside their note under their file name (a suffix ` (2)` when another file of
//! that folder has the name) and listed in the note's frontmatter `attachments`,
//! so importing the export attaches them again.

use crate::import::{READ_PAGE, all_entities};
use crate::render::{self, LinkNames};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Seek, Write};
use std::path::Path;
use std::sync::Arc;
use synap_domain::Timestamp;
use synap_domain::entity::Attachment;
use synap_domain::event::{EventPayload, RelationEvent};
use synap_domain::ids::ContentHash;
use synap_domain::ids::{EntityId, RelationId};
use synap_domain::text::{WikiTarget, title_key, wikilinks};
use synap_store::attachments;
use synap_store::{AsOf, EntityView, EventFilter, Scope, Store, StoreResult};

/// Reads in flight at once (bodies, states at a moment).
pub const EXPORT_CONCURRENCY: usize = 16;
/// Most attachment bytes one export holds (it is built in memory).
pub const EXPORT_ATTACHMENT_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;

/// How to export.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Export the knowledge base as it was at this moment (entities that existed
    /// and were not deleted then, at their state then). `None`: now.
    pub at: Option<Timestamp>,
}

/// An exported vault, in memory: `(path, text)` per entity, sorted by path, and
/// `(path, bytes)` per attachment file.
#[derive(Debug, Clone, Default)]
pub struct ExportedVault {
    pub files: Vec<(String, String)>,
    pub attachments: Vec<(String, Vec<u8>)>,
    pub entities: u64,
    pub relations: u64,
}

/// A live relation as of some moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRelation {
    pub source_id: EntityId,
    pub target_id: EntityId,
    pub kind: String,
}

/// The scope's relations that were live at `until` (inclusive; `None`: now),
/// folded from the log.
pub async fn live_relations(
    store: &dyn Store,
    scope: &Scope,
    until: Option<Timestamp>,
) -> StoreResult<HashMap<RelationId, LiveRelation>> {
    let mut live = HashMap::new();
    let mut filter = EventFilter {
        after: 0,
        types: vec!["relation.created".into(), "relation.deleted".into()],
        // `until` is exclusive; "as of T" includes events recorded at T.
        until: until.map(|t| {
            t.checked_add(jiff::SignedDuration::from_micros(1))
                .unwrap_or(t)
        }),
        limit: Some(READ_PAGE),
        ..EventFilter::default()
    };
    loop {
        let events = store.read_events(scope, &filter).await?;
        let Some(last) = events.last() else { break };
        filter.after = last.position;
        for event in &events {
            match &event.payload {
                EventPayload::Relation(RelationEvent::Created(created)) => {
                    live.insert(
                        RelationId(event.aggregate_id),
                        LiveRelation {
                            source_id: created.source_id,
                            target_id: created.target_id,
                            kind: created.kind.clone(),
                        },
                    );
                }
                EventPayload::Relation(RelationEvent::Deleted) => {
                    live.remove(&RelationId(event.aggregate_id));
                }
                _ => {}
            }
        }
    }
    Ok(live)
}

/// Reads the scope's knowledge base and renders it as a vault.
pub async fn export_vault(
    store: Arc<dyn Store>,
    scope: Scope,
    options: ExportOptions,
) -> StoreResult<ExportedVault> {
    let store = store.as_ref();
    let mut entities: Vec<EntityView> = match options.at {
        None => all_entities(store, &scope)
            .await?
            .into_iter()
            .filter(|e| e.deleted_at.is_none())
            .collect(),
        Some(at) => {
            let candidates = all_entities(store, &scope).await?;
            stream::iter(candidates)
                .map(|e| async move { store.entity_at(&scope, e.id, AsOf::Time(at)).await })
                .buffered(EXPORT_CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await?
                .into_iter()
                .flatten()
                .filter(|e| e.deleted_at.is_none())
                .collect()
        }
    };
    entities.sort_by_key(|e| (e.created_at, e.id));
    // Owned hashes, not `&EntityView`s: a borrowed item makes the future's
    // closure higher-ranked, which an axum handler's `Send` bound cannot prove.
    let hashes: Vec<_> = entities
        .iter()
        .map(|e| e.content.as_ref().map(|c| c.hash))
        .collect();
    let bodies: Vec<String> = stream::iter(hashes)
        .map(|hash| async move {
            match hash {
                Some(hash) => Ok(store
                    .content(&scope, hash)
                    .await?
                    .map(|c| c.body)
                    .unwrap_or_default()),
                None => Ok::<_, synap_store::StoreError>(String::new()),
            }
        })
        .buffered(EXPORT_CONCURRENCY)
        .try_collect()
        .await?;

    let exported: HashSet<EntityId> = entities.iter().map(|e| e.id).collect();
    let mut outgoing: HashMap<EntityId, Vec<LiveRelation>> = HashMap::new();
    let mut relation_count = 0;
    for relation in live_relations(store, &scope, options.at)
        .await?
        .into_values()
    {
        if exported.contains(&relation.source_id) && exported.contains(&relation.target_id) {
            relation_count += 1;
            outgoing
                .entry(relation.source_id)
                .or_default()
                .push(relation);
        }
    }

    let refs: Vec<&EntityView> = entities.iter().collect();
    let paths = render::assign_paths(&refs);
    let ids: Vec<EntityId> = entities.iter().map(|e| e.id).collect();
    let names: HashMap<EntityId, LinkNames> = render::link_names(&ids, &paths);
    // The store's title rule for `[[Title]]` links: the oldest live entity wins.
    let mut by_title: HashMap<String, EntityId> = HashMap::new();
    for entity in &entities {
        by_title
            .entry(title_key(&entity.title))
            .or_insert(entity.id);
    }
    let placed = place_attachments(&entities, &paths);
    let mut attachments = Vec::new();
    let mut attachment_bytes = 0u64;
    for (path, attachment) in placed.files {
        attachment_bytes += attachment.size;
        if attachment_bytes > EXPORT_ATTACHMENT_BYTES_MAX {
            return Err(synap_store::StoreError::InvalidInput(format!(
                "the attachments are larger than {} MiB in all; export fewer at a time",
                EXPORT_ATTACHMENT_BYTES_MAX / 1024 / 1024
            )));
        }
        let mut stream = attachments::open(store, scope, &attachment, None).await?;
        let mut bytes = Vec::with_capacity(attachment.size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                synap_store::StoreError::Backend(format!(
                    "attachment {} could not be read: {e}",
                    attachment.filename
                ))
            })?;
            bytes.extend_from_slice(&chunk);
        }
        attachments.push((path, bytes));
    }
    let mut files = Vec::with_capacity(entities.len());
    for (((entity, body), path), names_beside) in
        entities.iter().zip(&bodies).zip(&paths).zip(&placed.names)
    {
        let explained: HashSet<EntityId> = wikilinks(body)
            .into_iter()
            .filter_map(|target| match target {
                WikiTarget::Id(id) => Some(id),
                WikiTarget::Title(title) => by_title.get(&title_key(&title)).copied(),
            })
            .collect();
        let mut relations: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for relation in outgoing.get(&entity.id).into_iter().flatten() {
            if relation.kind == "mentions" && explained.contains(&relation.target_id) {
                continue;
            }
            if let Some(target) = names.get(&relation.target_id) {
                relations
                    .entry(relation.kind.clone())
                    .or_default()
                    .push(target.path.clone());
            }
        }
        for targets in relations.values_mut() {
            targets.sort();
        }
        files.push((
            path.clone(),
            render::render_entity(entity, body, &relations, &names, names_beside),
        ));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    attachments.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(ExportedVault {
        entities: files.len() as u64,
        relations: relation_count,
        files,
        attachments,
    })
}

/// Where each attachment goes: beside its note, under its (file-system safe)
/// name; the same bytes under the same name in one folder are written once.
struct Placed {
    /// `(path, attachment)` of every file to write.
    files: Vec<(String, Attachment)>,
    /// Per entity, the names its attachments were written under.
    names: Vec<Vec<String>>,
}

fn place_attachments(entities: &[EntityView], paths: &[String]) -> Placed {
    let mut taken: HashMap<String, ContentHash> = HashMap::new();
    let notes: HashSet<String> = paths.iter().map(|p| p.to_lowercase()).collect();
    let mut placed = Placed {
        files: Vec::new(),
        names: Vec::with_capacity(entities.len()),
    };
    for (entity, path) in entities.iter().zip(paths) {
        let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
        let mut names = Vec::new();
        for attachment in &entity.attachments {
            let safe = render::safe_name(&attachment.filename);
            let (stem, extension) = match safe.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => (stem.to_string(), format!(".{ext}")),
                _ => (safe.clone(), String::new()),
            };
            let mut n = 1;
            loop {
                let name = if n == 1 {
                    safe.clone()
                } else {
                    format!("{stem} ({n}){extension}")
                };
                let full = if folder.is_empty() {
                    name.clone()
                } else {
                    format!("{folder}/{name}")
                };
                let key = full.to_lowercase();
                match taken.get(&key) {
                    Some(hash) if *hash == attachment.hash => {}
                    Some(_) => {
                        n += 1;
                        continue;
                    }
                    None if notes.contains(&key) => {
                        n += 1;
                        continue;
                    }
                    None => {
                        taken.insert(key, attachment.hash);
                        placed.files.push((full, attachment.clone()));
                    }
                }
                names.push(name);
                break;
            }
        }
        placed.names.push(names);
    }
    placed
}

/// Why writing an export failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0} exists and is not empty; export into a new or empty directory")]
    NotEmpty(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Zip(#[from] zip::result::ZipError),
}

impl ExportedVault {
    /// Writes the files under `dir`, which must not exist or be empty (so no stale
    /// file of an earlier export is mistaken for part of this one).
    pub fn write_dir(&self, dir: &Path) -> Result<(), WriteError> {
        if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
            return Err(WriteError::NotEmpty(dir.display().to_string()));
        }
        std::fs::create_dir_all(dir)?;
        let notes = self.files.iter().map(|(p, t)| (p, t.as_bytes()));
        let attachments = self.attachments.iter().map(|(p, b)| (p, b.as_slice()));
        for (path, bytes) in notes.chain(attachments) {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, bytes)?;
        }
        Ok(())
    }

    /// Writes a ZIP archive (deflated) to a seekable writer.
    pub fn write_zip<W: Write + Seek>(&self, writer: W) -> Result<W, WriteError> {
        let mut zip = zip::ZipWriter::new(writer);
        self.write_entries(&mut zip)?;
        Ok(zip.finish()?)
    }

    /// Writes a ZIP archive to a writer that cannot seek (a network stream).
    pub fn write_zip_stream<W: Write>(&self, writer: W) -> Result<(), WriteError> {
        let mut zip = zip::ZipWriter::new_stream(writer);
        self.write_entries(&mut zip)?;
        zip.finish()?;
        Ok(())
    }

    fn write_entries<W: Write + Seek>(
        &self,
        zip: &mut zip::ZipWriter<W>,
    ) -> Result<(), WriteError> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (path, text) in &self.files {
            zip.start_file(path.as_str(), options)?;
            zip.write_all(text.as_bytes())?;
        }
        // Media files are mostly compressed already: stored as they are.
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        for (path, bytes) in &self.attachments {
            zip.start_file(path.as_str(), stored)?;
            zip.write_all(bytes)?;
        }
        Ok(())
    }
}
