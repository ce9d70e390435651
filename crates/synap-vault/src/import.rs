//! The import driver: a [`VaultSource`] → commands through the store traits.
//!
//! 1. parse every Markdown file ([`crate::note`]); a bad file is a [`Problem`];
//! 2. map each file to an entity: the frontmatter `id`, else the entity whose
//!    metadata `vault_path` is the file's path, else a new entity;
//! 3. resolve links ([`crate::resolve`]); a link the store's own title rule would
//!    resolve the same way stays as written, any other is stored as
//!    `[[<entity id>…]]` (so two notes titled alike stay apart);
//! 4. diff each file against its entity and send only what differs: a `Create`, a
//!    `Change` with the changed fields (at the version read, so a concurrent edit is
//!    a reported conflict, not an overwrite), or nothing;
//! 5. add the `mentions` relations the store could not make while a link's target
//!    did not exist yet, and the typed `relations` of the frontmatter;
//! 6. attach the files each note embeds (`![[file.png]]`, `![](file.png)`) or names
//!    in its frontmatter `attachments` ([`plan_attachments`]), unless the entity
//!    already has the same file under the same name.
//!
//! Every event carries `source: migration` and one `correlation_id` per import.
//! Commands run [`IMPORT_CONCURRENCY`] at a time so the SQLite writer commits them
//! in groups. Import never deletes: a file removed from the vault leaves its
//! entity; a deleted entity is not restored (reported). Metadata keys a file no
//! longer has are unset only for the keys import owns (`aliases`, `created`,
//! `updated`, `folder`); others (set by people or automation in Synap) are kept.

use crate::markdown::WikiLink;
use crate::note::{self, ALIASES_KEY, FOLDER_KEY, VAULT_PATH_KEY, VaultNote};
use crate::render::wikilink;
use crate::report::{ImportReport, Problem};
use crate::resolve::{self, Index, Names, Resolution};
use crate::source::{FileBytes, FileKind, VaultSource};
use futures_util::stream::{self, StreamExt};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use synap_domain::command::{Change, CreateEntity, EntityCommand, NewContent, TaskInput};
use synap_domain::entity::EntityType;
use synap_domain::ids::{ContentHash, EntityId, RelationId};
use synap_domain::relation::RelationKind;
use synap_domain::tags::tag_key;
use synap_domain::text::title_key;
use synap_domain::{DomainError, EventMetadata, Source};
use synap_store::attachments::{self, AttachError};
use synap_store::{
    CommandRequest, EntityFilter, EntityView, PageRequest, Scope, Store, StoreError, StoreResult,
    Target,
};
use uuid::Uuid;

/// Commands in flight at once: enough for the SQLite writer to fill its commit
/// groups, few enough to keep memory and PostgreSQL connections bounded.
pub const IMPORT_CONCURRENCY: usize = 64;
/// Page size for reading entities and the relation log.
pub(crate) const READ_PAGE: u32 = 500;
/// Attachments read and stored at once (each may be large).
pub const ATTACH_CONCURRENCY: usize = 8;

/// Metadata keys import owns: unset when a file no longer has them.
const OWNED_KEYS: &[&str] = &[ALIASES_KEY, "created", "updated", FOLDER_KEY];

/// Progress callback: `(done, total)` commands.
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How to import.
#[derive(Clone, Default)]
pub struct ImportOptions {
    /// Provenance of the events (`actor`, `request_id`, …); `source` is always
    /// `migration`, and a `correlation_id` is added when absent.
    pub metadata: EventMetadata,
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// A vault note bound to its entity.
struct Planned {
    note: VaultNote,
    id: EntityId,
    existing: Option<EntityView>,
    /// The body with links rewritten.
    body: String,
    mentions: BTreeSet<EntityId>,
    typed: Vec<(RelationKind, EntityId)>,
}

/// Imports a vault into the scope's account. `Err` only when the store fails as a
/// whole (closed, unreachable); everything file-specific ends up in the report.
pub async fn import_vault(
    store: Arc<dyn Store>,
    scope: Scope,
    source: VaultSource,
    options: ImportOptions,
) -> StoreResult<ImportReport> {
    let mut report = ImportReport {
        problems: source.problems,
        ..ImportReport::default()
    };
    report.skipped = report.problems.len() as u64;
    let mut metadata = options.metadata.clone();
    metadata.source = Source::Migration;
    metadata.correlation_id.get_or_insert_with(Uuid::now_v7);

    // 1. Parse.
    let mut notes = Vec::new();
    let mut other_files: Vec<(String, u64)> = Vec::new();
    let mut other_bytes: Vec<FileBytes> = Vec::new();
    for file in source.files {
        match file.kind {
            FileKind::Markdown(bytes) => {
                report.notes += 1;
                match note::parse(&file.path, &bytes) {
                    Ok(note) => notes.push(note),
                    Err(problem) => {
                        report.skipped += 1;
                        report.problems.push(problem);
                    }
                }
            }
            FileKind::Other { size, bytes } => {
                other_files.push((file.path, size));
                other_bytes.push(bytes);
            }
        }
    }
    let (attaching, problems) = plan_attachments(&notes, &other_files);
    report.problems.extend(problems);

    // 2. Map files to entities.
    let existing = all_entities(store.as_ref(), &scope).await?;
    let by_id: HashMap<EntityId, &EntityView> = existing.iter().map(|e| (e.id, e)).collect();
    let by_path: HashMap<&str, &EntityView> = existing
        .iter()
        .filter_map(|e| Some((e.metadata.get(VAULT_PATH_KEY)?.as_str()?, e)))
        .collect();
    let mut claimed: HashSet<EntityId> = HashSet::new();
    let mut planned: Vec<Planned> = Vec::new();
    for mut note in notes {
        let by_frontmatter = note.id.filter(|id| !claimed.contains(id));
        if note.id.is_some() && by_frontmatter.is_none() {
            note.problems.push(Problem::new(
                &note.path,
                "invalid_value",
                "another file of this vault has the same id; imported as a separate note",
            ));
        }
        let found = by_frontmatter
            .and_then(|id| by_id.get(&id))
            .or_else(|| {
                by_path
                    .get(note.path.as_str())
                    .filter(|e| !claimed.contains(&e.id))
            })
            .copied();
        let id = match found {
            Some(entity) => entity.id,
            None => by_frontmatter.unwrap_or_else(EntityId::new_v7),
        };
        claimed.insert(id);
        if let Some(entity) = found
            && entity.deleted_at.is_some()
        {
            report.skipped += 1;
            report.problems.push(Problem::new(
                &note.path,
                "deleted_entity",
                format!("entity {id} was deleted in Synap; restore it (`synap restore {id}`) to import this file again"),
            ));
            continue;
        }
        planned.push(Planned {
            body: String::new(),
            mentions: BTreeSet::new(),
            typed: Vec::new(),
            existing: found.cloned(),
            id,
            note,
        });
    }

    // 3. Resolve links.
    resolve_links(&mut planned, &existing);
    for plan in &mut planned {
        report.problems.append(&mut plan.note.problems);
    }

    // 4. Diff and write, in waves: a note is created after the new notes it links
    //    to (the store links `[[…]]` only to entities that exist when the content
    //    is written, and refuses explicit `mentions`). Notes in a cycle of new
    //    notes are created without content first and get it in the last wave.
    //    Changes to existing entities come last, when every target exists.
    let (levels, deferred) = creation_waves(&planned);
    let mut waves: Vec<Vec<(usize, Step, CommandRequest)>> =
        vec![Vec::new(); levels.len().max(1) + 1];
    let request = |plan: &Planned, command: EntityCommand, version: u64| {
        CommandRequest::new(
            scope,
            Target::Entity {
                id: plan.id,
                command,
            },
            metadata.clone(),
        )
        .expecting(Some(version))
    };
    for (level, members) in levels.iter().enumerate() {
        for &i in members {
            let plan = &planned[i];
            let mut create = create_of(plan);
            if deferred.contains(&i) {
                create.content = None;
                let fill = EntityCommand::Change(vec![
                    Change::Content(create_of(plan).content),
                    Change::Title(plan.note.title.clone()),
                ]);
                let last = waves.len() - 1;
                waves[last].push((i, Step::Fill, request(plan, fill, 1)));
            }
            waves[level].push((
                i,
                Step::Create,
                request(plan, EntityCommand::Create(create), 0),
            ));
        }
    }
    for (i, plan) in planned.iter().enumerate() {
        let Some(entity) = &plan.existing else {
            continue;
        };
        let changes = changes_of(plan, entity);
        if changes.is_empty() {
            report.unchanged += 1;
        } else {
            let last = waves.len() - 1;
            waves[last].push((
                i,
                Step::Change,
                request(plan, EntityCommand::Change(changes), entity.version),
            ));
        }
    }
    let total = waves.iter().map(Vec::len).sum::<usize>() as u64;
    let progress = options.progress.clone();
    let mut done = 0u64;
    let mut failed: HashSet<EntityId> = HashSet::new();
    for wave in waves {
        let wave: Vec<_> = wave
            .into_iter()
            .filter(|(i, _, _)| !failed.contains(&planned[*i].id))
            .collect();
        let mut results = stream::iter(wave)
            .map(|(i, step, request)| {
                let store = store.clone();
                async move { (i, step, store.execute(request).await) }
            })
            .buffer_unordered(IMPORT_CONCURRENCY);
        while let Some((i, step, result)) = results.next().await {
            let plan = &planned[i];
            match result {
                Ok(outcome) => {
                    report.events += outcome.events.len() as u64;
                    match step {
                        Step::Create => report.created += 1,
                        Step::Change => report.updated += 1,
                        Step::Fill => {}
                    }
                }
                Err(error) => {
                    fatal(&error)?;
                    if failed.insert(plan.id) {
                        report.skipped += 1;
                    }
                    report
                        .problems
                        .push(rejected(&plan.note.path, plan.id, &error));
                }
            }
            done += 1;
            if let Some(progress) = &progress {
                progress(done, total);
            }
        }
    }

    // 5. Typed relations from the frontmatter (`mentions` come from the content).
    let live = crate::export::live_relations(store.as_ref(), &scope, None).await?;
    let have: HashSet<(EntityId, EntityId, String)> = live
        .into_values()
        .map(|r| (r.source_id, r.target_id, r.kind))
        .collect();
    let mut links = Vec::new();
    for plan in planned.iter().filter(|p| !failed.contains(&p.id)) {
        let mut seen = HashSet::new();
        for (kind, target) in plan.typed.iter().cloned() {
            if failed.contains(&target)
                || target == plan.id
                || !seen.insert((target, kind.clone()))
                || have.contains(&(plan.id, target, kind.as_str().to_string()))
            {
                continue;
            }
            let link = Target::Link {
                id: RelationId::new_v7(),
                source_id: plan.id,
                target_id: target,
                kind,
            };
            links.push((
                plan.note.path.clone(),
                CommandRequest::new(scope, link, metadata.clone()),
            ));
        }
    }
    let mut results = stream::iter(links)
        .map(|(path, request)| {
            let store = store.clone();
            async move { (path, store.execute(request).await) }
        })
        .buffer_unordered(IMPORT_CONCURRENCY);
    while let Some((path, result)) = results.next().await {
        match result {
            Ok(outcome) => {
                report.relations_created += 1;
                report.events += outcome.events.len() as u64;
            }
            Err(error) => {
                fatal(&error)?;
                report.problems.push(Problem::new(
                    path,
                    "rejected",
                    format!("a link could not be made: {error}"),
                ));
            }
        }
    }

    // 6. Attachments: each embedded file once per note, unless already attached.
    let mut uploads = Vec::new();
    for plan in planned.iter().filter(|p| !failed.contains(&p.id)) {
        let Some(indices) = attaching.get(plan.note.path.as_str()) else {
            continue;
        };
        let have: Vec<(String, ContentHash)> = plan
            .existing
            .iter()
            .flat_map(|e| &e.attachments)
            .map(|a| (a.filename.clone(), a.hash))
            .collect();
        for &index in indices {
            let (path, _) = &other_files[index];
            uploads.push((
                plan.note.path.clone(),
                plan.id,
                path.clone(),
                other_bytes[index].clone(),
                have.clone(),
            ));
        }
    }
    let mut results = stream::iter(uploads)
        .map(|(note_path, entity, file_path, bytes, have)| {
            let store = store.clone();
            let metadata = metadata.clone();
            async move {
                let result = attach_file(
                    store.as_ref(),
                    scope,
                    entity,
                    &file_path,
                    &bytes,
                    &have,
                    metadata,
                )
                .await;
                (note_path, file_path, result)
            }
        })
        .buffer_unordered(ATTACH_CONCURRENCY);
    while let Some((note_path, file_path, result)) = results.next().await {
        match result {
            Ok(Some(events)) => {
                report.attachments_added += 1;
                report.events += events;
            }
            Ok(None) => {}
            Err(AttachFailure::Store(error)) => {
                fatal(&error)?;
                report.problems.push(Problem::new(
                    note_path,
                    "rejected",
                    format!("{file_path} could not be attached: {error}"),
                ));
            }
            Err(AttachFailure::File(message)) => report.problems.push(Problem::new(
                file_path,
                "unreadable",
                format!("not attached to {note_path}: {message}"),
            )),
        }
    }
    Ok(report)
}

/// Why one file could not be attached.
enum AttachFailure {
    Store(StoreError),
    /// The file itself (unreadable, too large): reported, the import goes on.
    File(String),
}

/// Attaches one vault file to `entity` under its file name, unless the entity
/// already has those bytes under that name. `Some(events)` when it attached.
async fn attach_file(
    store: &dyn Store,
    scope: Scope,
    entity: EntityId,
    path: &str,
    bytes: &FileBytes,
    have: &[(String, ContentHash)],
    metadata: EventMetadata,
) -> Result<Option<u64>, AttachFailure> {
    let filename = path.rsplit('/').next().unwrap_or(path).to_string();
    let bytes = bytes
        .read()
        .await
        .map_err(|e| AttachFailure::File(e.to_string()))?;
    let hash = ContentHash::of(&bytes);
    if have.iter().any(|(name, h)| *name == filename && *h == hash) {
        return Ok(None);
    }
    let upload = attachments::Upload {
        filename,
        declared_media_type: None,
        limit_bytes: attachments::ATTACHMENT_BYTES_MAX_DEFAULT,
        metadata,
    };
    match attachments::attach_bytes(store, scope, entity, upload, bytes).await {
        Ok((_, outcome)) => Ok(Some(outcome.events.len() as u64)),
        Err(AttachError::Store(error)) => Err(AttachFailure::Store(error)),
        Err(other) => Err(AttachFailure::File(other.to_string())),
    }
}

/// Errors that stop the whole import: the store itself is gone.
fn fatal(error: &StoreError) -> StoreResult<()> {
    match error {
        StoreError::Closed => Err(StoreError::Closed),
        StoreError::Unavailable(message) => Err(StoreError::Unavailable(message.clone())),
        _ => Ok(()),
    }
}

fn rejected(path: &str, id: EntityId, error: &StoreError) -> Problem {
    let message = match error {
        StoreError::Domain(DomainError::Validation { field: "id", .. }) => format!(
            "the id {id} in its frontmatter belongs to another account; remove the id line to import it as a new note"
        ),
        StoreError::Conflict { .. } => {
            format!("entity {id} changed while importing; import again to apply this file")
        }
        other => format!("the file could not be imported: {other}"),
    };
    Problem::new(path, "rejected", message)
}

/// Which files each note attaches, by note path (indices into `files`): the files
/// its body embeds (`![[file.png]]`, `![](file.png)`) and those its frontmatter
/// `attachments` names. A target is found by its path in the vault, then beside
/// the note, then by file name anywhere (the way Obsidian resolves embeds). Also
/// the problems: embeds that name no file of the vault, and files no note uses
/// (not imported: an attachment belongs to a note).
pub fn plan_attachments(
    notes: &[VaultNote],
    files: &[(String, u64)],
) -> (HashMap<String, Vec<usize>>, Vec<Problem>) {
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (index, (path, _)) in files.iter().enumerate() {
        by_path.entry(path.to_lowercase()).or_insert(index);
        let name = path.rsplit('/').next().unwrap_or(path).to_lowercase();
        by_name.entry(name).or_insert(index);
    }
    let mut problems = Vec::new();
    let mut plan: HashMap<String, Vec<usize>> = HashMap::new();
    let mut used = vec![false; files.len()];
    for note in notes {
        let targets = note
            .scan
            .links
            .iter()
            .filter(|l| l.is_file())
            .map(|l| l.target.as_str())
            .chain(note.scan.images.iter().map(String::as_str))
            .chain(note.attachments.iter().map(String::as_str));
        let mut chosen: Vec<usize> = Vec::new();
        for target in targets {
            let key = resolve::key(target);
            let beside = if note.folder.is_empty() {
                key.clone()
            } else {
                format!("{}/{key}", note.folder.to_lowercase())
            };
            let name = key.rsplit('/').next().unwrap_or(&key).to_string();
            let found = by_path
                .get(&key)
                .or_else(|| by_path.get(&beside))
                .or_else(|| by_name.get(&name))
                .copied();
            match found {
                Some(index) => {
                    used[index] = true;
                    if !chosen.contains(&index) {
                        chosen.push(index);
                    }
                }
                None => problems.push(Problem::new(
                    &note.path,
                    "broken_link",
                    format!("the embedded file {target:?} is not in the vault"),
                )),
            }
        }
        if !chosen.is_empty() {
            plan.insert(note.path.clone(), chosen);
        }
    }
    for ((path, size), used) in files.iter().zip(used) {
        if !used {
            problems.push(Problem::new(
                path,
                "unused_file",
                format!("not imported ({size} bytes): no note embeds it, and an attachment belongs to a note"),
            ));
        }
    }
    (plan, problems)
}

/// Every entity of the scope, live and deleted.
pub(crate) async fn all_entities(store: &dyn Store, scope: &Scope) -> StoreResult<Vec<EntityView>> {
    let mut all = Vec::new();
    for deleted in [false, true] {
        let filter = EntityFilter {
            deleted,
            ..EntityFilter::default()
        };
        let mut page = PageRequest {
            limit: Some(READ_PAGE),
            cursor: None,
        };
        loop {
            let answer = store.list_entities(scope, &filter, &page).await?;
            all.extend(answer.items);
            match answer.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => break,
            }
        }
    }
    Ok(all)
}

fn resolve_links(planned: &mut [Planned], existing: &[EntityView]) {
    let index = Index::new(planned.iter().map(|p| Names {
        path: &p.note.path,
        folder: &p.note.folder,
        stem: &p.note.stem,
        title: &p.note.title,
        aliases: &p.note.aliases,
    }));
    // The store resolves `[[Title]]` among all live entities (oldest first); a link
    // may stay as written only when that finds the same note.
    let mut vault_titles: HashMap<String, usize> = HashMap::new();
    for plan in planned.iter() {
        *vault_titles.entry(title_key(&plan.note.title)).or_default() += 1;
    }
    let mapped: HashSet<EntityId> = planned.iter().map(|p| p.id).collect();
    let other_titles: HashSet<String> = existing
        .iter()
        .filter(|e| e.deleted_at.is_none() && !mapped.contains(&e.id))
        .map(|e| title_key(&e.title))
        .collect();
    let ids: Vec<EntityId> = planned.iter().map(|p| p.id).collect();
    let titles: Vec<String> = planned.iter().map(|p| title_key(&p.note.title)).collect();
    let paths: Vec<String> = planned.iter().map(|p| p.note.path.clone()).collect();
    for plan in planned.iter_mut() {
        let note = &mut plan.note;
        let mut body = String::with_capacity(note.body.len());
        let mut last = 0;
        for link in note.scan.links.iter().filter(|l| !l.is_file()) {
            if link.target.len() == 36 && link.target.parse::<EntityId>().is_ok() {
                continue;
            }
            let (chosen, count) = match index.resolve(&link.target, &note.folder) {
                Resolution::Found(i) => (i, 1),
                Resolution::Ambiguous(i, n) => (i, n),
                Resolution::Missing => {
                    if !other_titles.contains(&title_key(&link.target)) {
                        note.problems.push(Problem::new(
                            &note.path,
                            "broken_link",
                            format!("[[{}]]: no note of that name in the vault", link.target),
                        ));
                    }
                    continue;
                }
            };
            if count > 1 {
                note.problems.push(Problem::new(
                    &note.path,
                    "ambiguous_link",
                    format!(
                        "[[{}]] matches {count} notes; linked to {} (write the folder, [[folder/{}]], to choose)",
                        link.target, paths[chosen], link.target
                    ),
                ));
            }
            let target_id = ids[chosen];
            if target_id != plan.id {
                plan.mentions.insert(target_id);
            }
            let key = title_key(&link.target);
            let store_agrees = count == 1
                && key == titles[chosen]
                && vault_titles.get(&key) == Some(&1)
                && !other_titles.contains(&key);
            if !store_agrees {
                body.push_str(&note.body[last..link.range.start]);
                body.push_str(&id_link(link, target_id));
                last = link.range.end;
            }
        }
        body.push_str(&note.body[last..]);
        plan.body = body;
        for (kind, target) in &note.relations {
            match index.resolve(target, &note.folder) {
                Resolution::Found(i) | Resolution::Ambiguous(i, _) => {
                    plan.typed.push((kind.clone(), ids[i]))
                }
                Resolution::Missing => note.problems.push(Problem::new(
                    &note.path,
                    "broken_link",
                    format!(
                        "relations.{}: [[{target}]] is not a note of the vault",
                        kind.as_str()
                    ),
                )),
            }
        }
    }
}

fn id_link(link: &WikiLink, id: EntityId) -> String {
    wikilink(
        link.embed,
        &id.to_string(),
        link.heading.as_deref(),
        link.label.as_deref(),
    )
}

/// What a write in the import does, for the report.
#[derive(Debug, Clone, Copy)]
enum Step {
    Create,
    Change,
    /// The content of a note created without it (a link cycle).
    Fill,
}

/// New notes in waves: each after the new notes it links to (Kahn's algorithm).
/// Notes left in cycles are returned as `deferred` and put in the first wave: they
/// are created without content, which they get in a last wave.
fn creation_waves(planned: &[Planned]) -> (Vec<Vec<usize>>, HashSet<usize>) {
    let position: HashMap<EntityId, usize> = planned
        .iter()
        .enumerate()
        .filter(|(_, p)| p.existing.is_none())
        .map(|(i, p)| (p.id, i))
        .collect();
    let targets = |i: usize| -> Vec<usize> {
        planned[i]
            .mentions
            .iter()
            .filter_map(|t| position.get(t).copied())
            .filter(|t| *t != i)
            .collect()
    };
    let mut waiting: HashMap<usize, usize> = HashMap::new();
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    for &i in position.values() {
        let deps = targets(i);
        waiting.insert(i, deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(i);
        }
    }
    let mut levels: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(i, _)| *i)
        .collect();
    let mut placed: HashSet<usize> = HashSet::new();
    let mut deferred: HashSet<usize> = HashSet::new();
    loop {
        if current.is_empty() {
            // What is left waits on a cycle: defer the lowest-numbered one.
            match waiting
                .iter()
                .filter(|(i, _)| !placed.contains(*i))
                .map(|(i, _)| *i)
                .min()
            {
                Some(i) => {
                    deferred.insert(i);
                    current.push(i);
                }
                None => break,
            }
        }
        current.sort_unstable();
        let mut next = Vec::new();
        for &i in &current {
            placed.insert(i);
            for &d in dependents.get(&i).into_iter().flatten() {
                if let Some(n) = waiting.get_mut(&d) {
                    *n = n.saturating_sub(1);
                    if *n == 0 && !placed.contains(&d) {
                        next.push(d);
                    }
                }
            }
        }
        let level = if current.iter().all(|i| deferred.contains(i)) {
            0
        } else {
            levels.len()
        };
        if levels.len() <= level {
            levels.push(Vec::new());
        }
        levels[level].append(&mut current);
        next.retain(|d| !placed.contains(d));
        next.dedup();
        current = next;
    }
    (levels, deferred)
}

fn create_of(plan: &Planned) -> CreateEntity {
    let note = &plan.note;
    let entity_type = note.entity_type.unwrap_or(EntityType::Note);
    CreateEntity {
        entity_type,
        title: Some(note.title.clone()),
        content: (!plan.body.is_empty()).then(|| NewContent::markdown(plan.body.clone())),
        tags: note.tags.clone(),
        task: (entity_type == EntityType::Task).then(|| TaskInput {
            status: note.task.status,
            priority: note.task.priority,
            due_at: note.task.due.flatten(),
        }),
        metadata: note.metadata.clone(),
    }
}

fn changes_of(plan: &Planned, entity: &EntityView) -> Vec<Change> {
    let note = &plan.note;
    let mut changes = Vec::new();
    let wanted_hash = (!plan.body.is_empty()).then(|| ContentHash::of(plan.body.as_bytes()));
    if wanted_hash != entity.content.as_ref().map(|c| c.hash) {
        changes.push(Change::Content(
            (!plan.body.is_empty()).then(|| NewContent::markdown(plan.body.clone())),
        ));
    }
    // After the content: a title derived from the old content follows the new one,
    // and the file's title must win.
    if note.title != entity.title || !changes.is_empty() {
        changes.push(Change::Title(note.title.clone()));
    }
    let entity_type = note.entity_type.unwrap_or(entity.entity_type);
    if entity_type != entity.entity_type {
        changes.push(Change::Type(entity_type));
    }
    if entity_type == EntityType::Task {
        let current = entity.task.clone().unwrap_or_default();
        if let Some(status) = note.task.status.filter(|s| *s != current.status) {
            changes.push(Change::TaskStatus(status));
        }
        if let Some(priority) = note.task.priority.filter(|p| *p != current.priority) {
            changes.push(Change::TaskPriority(priority));
        }
        if let Some(due) = note.task.due.filter(|d| *d != current.due_at) {
            changes.push(Change::TaskDue(due));
        }
    }
    let wanted: HashSet<String> = note.tags.iter().map(|t| tag_key(t)).collect();
    let have: HashSet<String> = entity.tags.iter().map(|t| tag_key(t)).collect();
    let removed: Vec<String> = entity
        .tags
        .iter()
        .filter(|t| !wanted.contains(&tag_key(t)))
        .cloned()
        .collect();
    let added: Vec<String> = note
        .tags
        .iter()
        .filter(|t| !have.contains(&tag_key(t)))
        .cloned()
        .collect();
    if !removed.is_empty() {
        changes.push(Change::RemoveTags(removed));
    }
    if !added.is_empty() {
        changes.push(Change::AddTags(added));
    }
    let set: Map<String, Value> = note
        .metadata
        .iter()
        .filter(|(k, v)| entity.metadata.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let unset: Vec<String> = OWNED_KEYS
        .iter()
        .filter(|k| entity.metadata.contains_key(**k) && !note.metadata.contains_key(**k))
        .map(|k| k.to_string())
        .collect();
    if !unset.is_empty() {
        changes.push(Change::UnsetMetadata(unset));
    }
    if !set.is_empty() {
        changes.push(Change::SetMetadata(set));
    }
    // The title change above is only needed when something else changed or the
    // title itself differs; drop it when it would be the only, empty change.
    if changes.len() == 1 && matches!(&changes[0], Change::Title(t) if *t == entity.title) {
        changes.clear();
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markdown::has_file_extension;

    #[test]
    fn embedded_files_are_found_by_path_beside_the_note_or_by_name() {
        let note = note::parse(
            "notes/n.md",
            b"---\nattachments: [scan.pdf]\n---\n![[pic.png]] ![x](img/other.jpg) ![[gone.pdf]] ![[pic.png]]",
        )
        .unwrap();
        let files = vec![
            ("assets/pic.png".to_string(), 10),
            ("img/other.jpg".to_string(), 5),
            ("notes/scan.pdf".to_string(), 7),
            ("unused.bin".to_string(), 3),
        ];
        let (plan, problems) = plan_attachments(&[note], &files);
        assert_eq!(plan["notes/n.md"], vec![0, 1, 2], "each file once");
        let kinds: Vec<(&str, &str)> = problems.iter().map(|p| (p.path.as_str(), p.kind)).collect();
        assert_eq!(
            kinds,
            vec![("notes/n.md", "broken_link"), ("unused.bin", "unused_file")]
        );
        assert!(has_file_extension("pic.png"));
    }
}
