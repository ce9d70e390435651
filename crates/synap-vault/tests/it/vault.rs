//! The vault tests, generic over the backend. The fixture is
//! `tests/fixtures/vault`: nested folders, frontmatter variants (tags as a list and
//! as a string, dates in five formats), unicode file names, links to missing notes,
//! two notes titled "Meeting" in different folders, a CRLF file, a Latin-1 file, a
//! PNG, a broken frontmatter block and an `.obsidian` folder.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use synap_domain::command::{Change, CreateEntity};
use synap_domain::entity::{EntityType, TaskFields, TaskStatus};
use synap_domain::ids::EntityId;
use synap_domain::{EntityCommand, Source};
use synap_store::conformance::{Harness, StoreFactory};
use synap_store::{EntityFilter, EntityView, EventFilter, PageRequest};
use synap_vault::export::live_relations;
use synap_vault::{
    ExportOptions, ImportOptions, ImportReport, VaultSource, export_vault, import_vault,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault")
}

fn t(text: &str) -> Timestamp {
    text.parse().expect("a test timestamp")
}

async fn import(h: &Harness, source: VaultSource) -> ImportReport {
    import_vault(h.store.clone(), h.owner, source, ImportOptions::default())
        .await
        .expect("the import runs")
}

async fn import_dir(h: &Harness, dir: &Path) -> ImportReport {
    import(
        h,
        VaultSource::read_dir(dir).expect("the vault is readable"),
    )
    .await
}

/// What a user sees of one entity (task completion time aside: it records when
/// the transition happened, which differs between two imports).
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    entity_type: EntityType,
    title: String,
    tags: BTreeSet<String>,
    body: Option<String>,
    task: Option<TaskFields>,
    metadata: serde_json::Map<String, Value>,
    /// Attached files: name, SHA-256 and media type.
    attachments: BTreeSet<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
struct State {
    entities: BTreeMap<EntityId, Seen>,
    relations: BTreeSet<(EntityId, EntityId, String)>,
}

impl State {
    fn by_path(&self, path: &str) -> (EntityId, &Seen) {
        self.entities
            .iter()
            .find(|(_, e)| e.metadata.get("vault_path") == Some(&json!(path)))
            .map(|(id, e)| (*id, e))
            .unwrap_or_else(|| panic!("no entity from {path}"))
    }
    fn linked(&self, from: &str, to: &str, kind: &str) -> bool {
        let (from, _) = self.by_path(from);
        let (to, _) = self.by_path(to);
        self.relations.contains(&(from, to, kind.to_string()))
    }
}

async fn all_live(h: &Harness) -> Vec<EntityView> {
    let mut all = Vec::new();
    let mut page = PageRequest {
        limit: Some(500),
        cursor: None,
    };
    loop {
        let answer = h
            .store
            .list_entities(&h.owner, &EntityFilter::default(), &page)
            .await
            .unwrap();
        all.extend(answer.items);
        match answer.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return all,
        }
    }
}

async fn state(h: &Harness) -> State {
    let mut entities = BTreeMap::new();
    for view in all_live(h).await {
        let body = match &view.content {
            Some(c) => Some(
                h.store
                    .content(&h.owner, c.hash)
                    .await
                    .unwrap()
                    .unwrap()
                    .body,
            ),
            None => None,
        };
        let task = view.task.clone().map(|mut task| {
            task.completed_at = None;
            task
        });
        entities.insert(
            view.id,
            Seen {
                entity_type: view.entity_type,
                title: view.title.clone(),
                tags: view.tags.iter().cloned().collect(),
                body,
                task,
                metadata: view.metadata.clone(),
                attachments: view
                    .attachments
                    .iter()
                    .map(|a| (a.filename.clone(), a.hash.to_hex(), a.media_type.clone()))
                    .collect(),
            },
        );
    }
    let relations = live_relations(h.store.as_ref(), &h.owner, None)
        .await
        .unwrap()
        .into_values()
        .filter(|r| entities.contains_key(&r.source_id) && entities.contains_key(&r.target_id))
        .map(|r| (r.source_id, r.target_id, r.kind))
        .collect();
    State {
        entities,
        relations,
    }
}

/// Compares two states entity by entity, so a failure names what differs.
fn assert_same(got: &State, expected: &State) {
    for (id, want) in &expected.entities {
        assert_eq!(got.entities.get(id), Some(want), "entity {id}");
    }
    assert_eq!(got.entities.len(), expected.entities.len());
    assert_eq!(got.relations, expected.relations);
}

fn has_problem(report: &ImportReport, path: &str, kind: &str) -> bool {
    report
        .problems
        .iter()
        .any(|p| p.path == path && p.kind == kind)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub async fn a_realistic_vault_maps_to_entities_links_and_a_report<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let report = import_dir(&h, &fixture()).await;

    assert_eq!(report.notes, 10, "{report:#?}");
    assert_eq!(report.created, 9, "{report:#?}");
    assert_eq!(
        report.skipped, 1,
        "only the Latin-1 file is skipped: {report:#?}"
    );
    for (path, kind) in [
        ("Archive/legacy-latin1.md", "not_utf8"),
        ("Welcome.md", "broken_link"),
        ("Welcome.md", "ambiguous_link"),
        ("Inbox/No Frontmatter.md", "broken_link"),
        ("Inbox/bad-yaml.md", "bad_frontmatter"),
    ] {
        assert!(
            has_problem(&report, path, kind),
            "{path} {kind}: {report:#?}"
        );
    }
    assert!(
        report
            .problems
            .iter()
            .all(|p| !p.path.starts_with(".obsidian"))
    );
    assert!(
        report.problems.iter().all(|p| p.kind != "rejected"),
        "{report:#?}"
    );
    let missing = report
        .problems
        .iter()
        .find(|p| p.kind == "broken_link" && p.path == "Welcome.md")
        .unwrap();
    assert!(missing.message.contains("Missing Note"), "{missing:?}");

    let s = state(&h).await;
    assert_eq!(s.entities.len(), 9);

    let (_, welcome) = s.by_path("Welcome.md");
    assert_eq!(welcome.title, "Welcome");
    // The embedded PNG is attached to the note that embeds it, byte for byte.
    assert_eq!(report.attachments_added, 1, "{report:#?}");
    let png = std::fs::read(fixture().join("attachments/diagram.png")).unwrap();
    let expected: BTreeSet<(String, String, String)> = [(
        "diagram.png".to_string(),
        synap_domain::ids::ContentHash::of(&png).to_hex(),
        "image/png".to_string(),
    )]
    .into();
    assert_eq!(welcome.attachments, expected);
    let tags: BTreeSet<String> = ["start", "Guide", "inbox"].map(String::from).into();
    assert_eq!(welcome.tags, tags, "code blocks and URLs hold no tags");
    assert_eq!(welcome.metadata["aliases"], json!(["Start", "Home page"]));
    assert_eq!(welcome.metadata["created"], json!("2024-01-15T00:00:00Z"));
    assert!(
        !welcome.metadata.contains_key("folder"),
        "the root has no folder"
    );

    let (_, alpha) = s.by_path("Projects/Alpha.md");
    assert_eq!(alpha.title, "Alpha Project");
    assert_eq!(alpha.tags, ["cli", "rust"].map(String::from).into());
    assert_eq!(alpha.metadata["created"], json!("2024-02-01T09:30:00Z"));
    assert_eq!(alpha.metadata["updated"], json!("2024-03-01T14:10:00Z"));
    assert_eq!(alpha.metadata["rating"], json!(4));
    assert_eq!(alpha.metadata["reviewers"], json!(["ann", "bob"]));
    assert_eq!(alpha.metadata["folder"], json!("Projects"));

    let (_, beta) = s.by_path("Projects/Beta.md");
    assert_eq!(beta.entity_type, EntityType::Task);
    let task = beta.task.clone().unwrap();
    assert_eq!(task.status, TaskStatus::InProgress);
    assert_eq!(task.priority, 2);
    assert_eq!(task.due_at, Some(t("2024-06-30T00:00:00Z")));

    let (_, trip) = s.by_path("Journal/2024/Été à Zürich.md");
    assert_eq!(trip.title, "Été à Zürich");
    assert_eq!(trip.metadata["folder"], json!("Journal/2024"));
    assert_eq!(trip.metadata["created"], json!("2024-03-01T00:00:00Z"));
    assert_eq!(trip.tags, ["été", "travel"].map(String::from).into());
    let body = trip.body.as_deref().unwrap();
    assert!(!body.contains('\r'), "CRLF becomes LF: {body:?}");
    assert_eq!(body, "A trip. Back to [[Welcome]].\nSecond line #travel\n");

    let (_, japanese) = s.by_path("日本語/ノート.md");
    assert_eq!(japanese.title, "ノート");
    assert!(japanese.tags.contains("タグ"));

    let (_, bad) = s.by_path("Inbox/bad-yaml.md");
    assert_eq!(
        bad.body.as_deref(),
        Some("---\ntitle: [unclosed\n---\nThe body survives.\n"),
        "nothing of a file with broken frontmatter is lost"
    );

    // Two notes titled "Meeting": folder-qualified links reach the right one.
    let (work, work_meeting) = s.by_path("Work/Meeting.md");
    let (home, home_meeting) = s.by_path("Home/Meeting.md");
    assert_ne!(work, home);
    assert_eq!(work_meeting.title, "Meeting");
    assert_eq!(home_meeting.title, "Meeting");
    assert!(s.linked("Home/Meeting.md", "Work/Meeting.md", "mentions"));
    assert!(s.linked("Projects/Alpha.md", "Work/Meeting.md", "mentions"));
    assert!(!s.linked("Projects/Alpha.md", "Home/Meeting.md", "mentions"));
    // Other links: by path, title, alias, file name with a heading, unicode.
    assert!(s.linked("Welcome.md", "Projects/Alpha.md", "mentions"));
    assert!(s.linked("Work/Meeting.md", "Projects/Alpha.md", "mentions"));
    assert!(s.linked("Projects/Alpha.md", "Welcome.md", "mentions"));
    assert!(s.linked("Projects/Alpha.md", "Projects/Beta.md", "mentions"));
    assert!(
        s.linked("Projects/Beta.md", "Welcome.md", "mentions"),
        "[[Start]] is an alias"
    );
    assert!(s.linked("Journal/2024/Été à Zürich.md", "Welcome.md", "mentions"));
    assert!(s.linked(
        "日本語/ノート.md",
        "Journal/2024/Été à Zürich.md",
        "mentions"
    ));
    // The ambiguous [[Meeting]] of the root note took the shorter, first path.
    assert!(s.linked("Welcome.md", "Home/Meeting.md", "mentions"));
    assert_eq!(s.relations.len(), 10, "{:#?}", s.relations);

    // Every event is a migration, all of one import.
    let events = h
        .me()
        .events(EventFilter {
            limit: Some(500),
            ..EventFilter::default()
        })
        .await;
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| e.aggregate_type().as_str() != "user")
        .collect();
    assert!(!events.is_empty());
    let correlation = events[0].metadata.correlation_id;
    assert!(correlation.is_some());
    for event in events
        .iter()
        .filter(|e| e.aggregate_type().as_str() != "user")
    {
        assert_eq!(event.metadata.source, Source::Migration, "{event:?}");
        assert_eq!(event.metadata.correlation_id, correlation);
    }
}

pub async fn importing_the_same_vault_again_appends_nothing<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    import_dir(&h, &fixture()).await;
    let before = state(&h).await;
    let head = h.head().await;

    let again = import_dir(&h, &fixture()).await;
    assert_eq!(h.head().await, head, "no event: {again:#?}");
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 9));
    assert_eq!(
        (
            again.events,
            again.relations_created,
            again.attachments_added
        ),
        (0, 0, 0)
    );
    assert_eq!(state(&h).await, before);
}

pub async fn an_edited_vault_appends_only_its_changes<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), dir.path());
    import_dir(&h, dir.path()).await;
    let before = state(&h).await;
    let head = h.head().await;

    let alpha_path = dir.path().join("Projects/Alpha.md");
    let alpha = std::fs::read_to_string(&alpha_path)
        .unwrap()
        .replace("tags: \"rust, cli\"", "tags: \"rust, tui\"")
        .replace("rating: 4\n", "")
        + "A new line.\n";
    std::fs::write(&alpha_path, alpha).unwrap();
    std::fs::write(
        dir.path().join("Inbox/New.md"),
        "Fresh, about [[Alpha Project]].\n",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("Inbox/No Frontmatter.md")).unwrap();

    let report = import_dir(&h, dir.path()).await;
    assert_eq!(
        (report.created, report.updated, report.unchanged),
        (1, 1, 7),
        "{report:#?}"
    );

    let after = state(&h).await;
    let (alpha_id, alpha) = after.by_path("Projects/Alpha.md");
    let (new_id, _) = after.by_path("Inbox/New.md");
    assert_eq!(alpha.tags, ["rust", "tui"].map(String::from).into());
    assert!(alpha.body.as_deref().unwrap().ends_with("A new line.\n"));
    assert_eq!(
        alpha.metadata.get("rating"),
        Some(&json!(4)),
        "keys a file no longer has are kept unless import owns them"
    );
    assert!(after.linked("Inbox/New.md", "Projects/Alpha.md", "mentions"));
    // A file gone from the vault leaves its entity.
    let (gone, _) = before.by_path("Inbox/No Frontmatter.md");
    assert!(after.entities.contains_key(&gone));

    let events = h
        .me()
        .events(EventFilter {
            after: head,
            limit: Some(500),
            ..EventFilter::default()
        })
        .await;
    let new_relations: BTreeSet<_> = after.relations.difference(&before.relations).collect();
    assert_eq!(new_relations.len(), 1, "{new_relations:?}");
    for event in &events {
        assert_eq!(event.metadata.source, Source::Migration);
        let entity = EntityId(event.aggregate_id);
        assert!(
            entity == alpha_id || entity == new_id || event.aggregate_type().as_str() == "relation",
            "only the edited and the new file changed: {event:?}"
        );
    }
    // Content, tags removed and added: three events on Alpha; one create; one link.
    let on_alpha = events
        .iter()
        .filter(|e| e.aggregate_id == alpha_id.0)
        .count();
    assert_eq!(on_alpha, 3, "{events:#?}");
    assert_eq!(events.len(), 5, "{events:#?}");
}

pub async fn import_export_import_gives_the_same_state<F: StoreFactory>() {
    let first = Harness::new::<F>().await;
    import_dir(&first, &fixture()).await;
    // Things only Synap has: a typed relation and a note whose title needs escaping.
    let s = state(&first).await;
    let (beta, _) = s.by_path("Projects/Beta.md");
    let (alpha, _) = s.by_path("Projects/Alpha.md");
    first.me().link(beta, alpha, "blocks").await.unwrap();
    let odd = first
        .me()
        .create(CreateEntity {
            title: Some("Plan: a/b? #1".into()),
            tags: vec!["Guide".into()],
            ..CreateEntity::note("Links to [[Welcome]] and [[alpha project]] by title.\n")
        })
        .await;
    let expected = state(&first).await;

    let out = tempfile::tempdir().unwrap();
    let exported = export_vault(first.store.clone(), first.owner, ExportOptions::default())
        .await
        .unwrap();
    assert_eq!(exported.entities, 10);
    exported.write_dir(&out.path().join("vault")).unwrap();
    let paths: BTreeSet<String> = exported.files.iter().map(|(p, _)| p.clone()).collect();
    for path in [
        "Welcome.md",
        "Journal/2024/Été à Zürich.md",
        "日本語/ノート.md",
        "Home/Meeting.md",
        "Work/Meeting.md",
        "Plan%3A a%2Fb%3F %231.md",
    ] {
        assert!(paths.contains(path), "{path} in {paths:#?}");
    }

    // Into a fresh store: the same entities (ids included), tags, relations, bodies.
    let second = Harness::new::<F>().await;
    let report = import_dir(&second, &out.path().join("vault")).await;
    assert_eq!(report.created, 10, "{report:#?}");
    let mut got = state(&second).await;
    let escaped = got.entities.get_mut(&odd).unwrap();
    assert_eq!(
        escaped.metadata.remove("vault_path"),
        Some(json!("Plan%3A a%2Fb%3F %231.md")),
        "an entity made in Synap gets the path it was exported to"
    );
    assert_same(&got, &expected);

    // Back into the store it came from: only the note made in Synap learns its
    // vault path (one metadata event); after that nothing changes.
    let report = import_dir(&first, &out.path().join("vault")).await;
    assert_eq!((report.updated, report.events), (1, 1), "{report:#?}");
    let odd_view = first.me().view(odd).await;
    assert_eq!(
        odd_view.metadata["vault_path"],
        json!("Plan%3A a%2Fb%3F %231.md")
    );
    let head = first.head().await;
    let report = import_dir(&first, &out.path().join("vault")).await;
    assert_eq!(first.head().await, head, "{report:#?}");

    // A ZIP of the export imports the same way.
    let mut zip = Cursor::new(Vec::new());
    exported.write_zip(&mut zip).unwrap();
    let third = Harness::new::<F>().await;
    import(
        &third,
        VaultSource::read_zip(Cursor::new(zip.into_inner())).unwrap(),
    )
    .await;
    let mut got = state(&third).await;
    got.entities
        .get_mut(&odd)
        .unwrap()
        .metadata
        .remove("vault_path");
    assert_eq!(got, expected);
}

pub async fn export_at_an_earlier_time_matches_the_state_then<F: StoreFactory>() {
    let h = Harness::with_clock::<F>(t("2026-01-01T00:00:00Z")).await;
    h.set_time(t("2026-01-02T00:00:00Z"));
    import_dir(&h, &fixture()).await;
    let s = state(&h).await;
    let (alpha, _) = s.by_path("Projects/Alpha.md");
    let (home, _) = s.by_path("Home/Meeting.md");
    let (trip, _) = s.by_path("Journal/2024/Été à Zürich.md");
    let related = h.me().link(trip, home, "relates_to").await.unwrap();
    let then = t("2026-01-02T00:00:00Z");
    let at_then = export_vault(h.store.clone(), h.owner, ExportOptions::default())
        .await
        .unwrap();

    // Later: edits, a deletion, a new note, a removed link.
    h.set_time(t("2026-01-03T00:00:00Z"));
    h.me().unlink(related).await.unwrap();
    h.me()
        .must_change(
            alpha,
            vec![
                Change::Title("Alpha, renamed".into()),
                Change::AddTags(vec!["later".into()]),
            ],
        )
        .await;
    h.me()
        .must_change(
            trip,
            vec![Change::Content(Some(synap_domain::NewContent::markdown(
                "Rewritten.\n",
            )))],
        )
        .await;
    h.me().command(home, EntityCommand::Delete).await.unwrap();
    h.me().note("Created later, links [[Welcome]]").await;

    let now = export_vault(h.store.clone(), h.owner, ExportOptions::default())
        .await
        .unwrap();
    assert_ne!(now.files, at_then.files, "the knowledge base did change");

    let past = export_vault(h.store.clone(), h.owner, ExportOptions { at: Some(then) })
        .await
        .unwrap();
    assert_eq!(past.files, at_then.files);
    let trip_file = &past
        .files
        .iter()
        .find(|(p, _)| p.starts_with("Journal/"))
        .unwrap()
        .1;
    assert!(trip_file.contains("relates_to"), "{trip_file}");
    assert_eq!(past.relations, at_then.relations);

    let before_anything = export_vault(
        h.store.clone(),
        h.owner,
        ExportOptions {
            at: Some(then.checked_sub(SignedDuration::from_hours(1)).unwrap()),
        },
    )
    .await
    .unwrap();
    assert!(before_anything.files.is_empty());
}

pub async fn a_zip_imports_like_its_folder<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, text) in [
        ("My Vault/a.md", "---\ntags: [x]\n---\nA links [[b]]\n"),
        ("My Vault/sub/b.md", "B\r\n"),
        ("My Vault/../evil.md", "outside"),
        ("My Vault/.trash/old.md", "hidden"),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let source = VaultSource::read_zip(Cursor::new(bytes)).unwrap();
    let report = import(&h, source).await;
    assert_eq!(report.created, 2, "{report:#?}");
    assert!(
        has_problem(&report, "My Vault/../evil.md", "unsafe_path"),
        "{report:#?}"
    );
    let s = state(&h).await;
    let (_, a) = s.by_path("a.md");
    assert_eq!(a.tags, ["x".to_string()].into());
    let (_, b) = s.by_path("sub/b.md");
    assert_eq!(b.body.as_deref(), Some("B\n"));
    assert!(s.linked("a.md", "sub/b.md", "mentions"));
}
