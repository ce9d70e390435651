//! One vault file → a [`VaultNote`]: the entity it describes, before links are
//! resolved. Pure: no I/O, no store.
//!
//! Frontmatter keys with a meaning:
//! - `id` (a UUID): the entity to update (what export writes);
//! - `title`: the title, else the file name without `.md`;
//! - `type`: one of Synap's types (else kept as metadata `type`);
//! - `tags` / `tag`: a list, or a string split at commas and spaces; with the
//!   inline `#tags` of the body;
//! - `aliases` / `alias`: other names links may use (kept as metadata `aliases`);
//! - `created`, `updated`: dates in any format of [`crate::dates`], kept as
//!   metadata in RFC 3339;
//! - for tasks, `status`, `priority` (0–3), `due`;
//! - `relations`: `{kind: ["[[Note]]", …]}`, typed links other than `mentions`;
//! - `synap_metadata`: metadata whose keys collide with the keys above;
//! - `created_at`, `updated_at`, `completed_at`, `version`: written by export for
//!   people, read-only (ignored).
//!
//! Every other key is kept as metadata. The importer adds `folder` and `vault_path`.

use crate::dates;
use crate::frontmatter;
use crate::markdown::{self, Scan};
use crate::report::Problem;
use serde_json::{Map, Value};
use synap_domain::Timestamp;
use synap_domain::command::validate_title;
use synap_domain::entity::{EntityType, TaskStatus};
use synap_domain::ids::EntityId;
use synap_domain::limits::{METADATA_BYTES_MAX, TAGS_PER_ENTITY_MAX, TASK_PRIORITY_MAX};
use synap_domain::relation::RelationKind;
use synap_domain::tags::{normalize_tag, tag_key};

/// Metadata key: the vault folder of an entity (`a/b`), absent at the vault root.
pub const FOLDER_KEY: &str = "folder";
/// Metadata key: the path of the file an entity was imported from (`a/b/Note.md`).
pub const VAULT_PATH_KEY: &str = "vault_path";
/// Metadata key for aliases.
pub const ALIASES_KEY: &str = "aliases";
/// Frontmatter key holding metadata whose own keys collide with reserved ones.
pub const SYNAP_METADATA_KEY: &str = "synap_metadata";
/// Frontmatter key of typed relations.
pub const RELATIONS_KEY: &str = "relations";
/// Frontmatter key listing files beside the note to attach (export writes it for
/// attachments the body does not embed).
pub const ATTACHMENTS_KEY: &str = "attachments";

/// Frontmatter keys with a meaning to import or export (see the module docs);
/// metadata under one of these names travels in `synap_metadata`.
pub const RESERVED_KEYS: &[&str] = &[
    "id",
    "type",
    "title",
    "tags",
    "tag",
    "alias",
    "status",
    "priority",
    "due",
    "created_at",
    "updated_at",
    "completed_at",
    "version",
    SYNAP_METADATA_KEY,
    RELATIONS_KEY,
    ATTACHMENTS_KEY,
    FOLDER_KEY,
    VAULT_PATH_KEY,
];

/// Keys written by export for people to read; import ignores them.
const READ_ONLY_KEYS: &[&str] = &["created_at", "updated_at", "completed_at", "version"];

/// Task fields a file states (only for `type: task`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSpec {
    pub status: Option<TaskStatus>,
    pub priority: Option<u8>,
    /// `Some(None)`: the file says there is no due date (`due:` empty).
    pub due: Option<Option<Timestamp>>,
}

/// A vault file as an entity-to-be.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultNote {
    /// `a/b/Note.md`.
    pub path: String,
    /// `a/b`, or empty at the root.
    pub folder: String,
    /// `Note`.
    pub stem: String,
    pub id: Option<EntityId>,
    pub title: String,
    /// `None`: the file does not say (a new entity becomes a note; an existing one
    /// keeps its type).
    pub entity_type: Option<EntityType>,
    pub task: TaskSpec,
    /// Normalised and unique by key, frontmatter tags first.
    pub tags: Vec<String>,
    pub aliases: Vec<String>,
    /// Metadata from the frontmatter, with `folder` and `vault_path`.
    pub metadata: Map<String, Value>,
    /// The body after the frontmatter, `\n` line ends, links not yet rewritten.
    pub body: String,
    pub scan: Scan,
    /// Typed links from frontmatter `relations`: kind and link target text.
    pub relations: Vec<(RelationKind, String)>,
    /// Files named in frontmatter `attachments` (relative to the note's folder).
    pub attachments: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Parses one Markdown file. `Err` when the file cannot become a note at all.
pub fn parse(path: &str, bytes: &[u8]) -> Result<VaultNote, Problem> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        Problem::new(
            path,
            "not_utf8",
            format!(
                "the file is not UTF-8 (invalid byte at offset {}); convert it to UTF-8 and import again",
                error.valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = if text.contains('\r') {
        text.replace("\r\n", "\n")
    } else {
        text.to_string()
    };
    let (folder, file) = path.rsplit_once('/').unwrap_or(("", path));
    let stem = file
        .rsplit_once('.')
        .map_or(file, |(stem, _)| stem)
        .to_string();
    let mut note = VaultNote {
        path: path.to_string(),
        folder: folder.to_string(),
        stem: stem.clone(),
        id: None,
        title: stem,
        entity_type: None,
        task: TaskSpec::default(),
        tags: Vec::new(),
        aliases: Vec::new(),
        metadata: Map::new(),
        body: String::new(),
        scan: Scan::default(),
        relations: Vec::new(),
        attachments: Vec::new(),
        problems: Vec::new(),
    };
    let (yaml, body) = frontmatter::split(&text);
    let fields = match yaml.map(frontmatter::parse) {
        None => Map::new(),
        Some(Ok(fields)) => {
            note.body = body.to_string();
            fields
        }
        Some(Err(message)) => {
            // Nothing is lost: the whole text becomes the body.
            note.problems.push(Problem::new(
                path,
                "bad_frontmatter",
                format!("{message}; the file was imported with its frontmatter as text"),
            ));
            note.body = text.clone();
            Map::new()
        }
    };
    if yaml.is_none() {
        note.body = text.clone();
    }
    apply_fields(&mut note, fields);
    note.scan = markdown::scan(&note.body);
    let inline: Vec<String> = note.scan.tags.clone();
    for tag in inline {
        add_tag(&mut note, &tag);
    }
    if !note.folder.is_empty() {
        note.metadata
            .insert(FOLDER_KEY.into(), Value::String(note.folder.clone()));
    }
    note.metadata
        .insert(VAULT_PATH_KEY.into(), Value::String(note.path.clone()));
    fit_metadata(&mut note);
    Ok(note)
}

fn apply_fields(note: &mut VaultNote, fields: Map<String, Value>) {
    let path = note.path.clone();
    let mut task_fields: Vec<(String, Value)> = Vec::new();
    for (key, value) in fields {
        match key.as_str() {
            "id" => match value
                .as_str()
                .and_then(|s| s.trim().parse::<EntityId>().ok())
            {
                Some(id) => note.id = Some(id),
                None => {
                    note.metadata.insert(key, value);
                }
            },
            "title" => match value.as_str().map(str::trim).filter(|t| !t.is_empty()) {
                Some(title) => match validate_title(title) {
                    Ok(title) => note.title = title,
                    Err(error) => note.problems.push(Problem::new(
                        &path,
                        "invalid_value",
                        format!("title: {error}; the file name is the title"),
                    )),
                },
                None if value.is_null() => {}
                None => {
                    note.title = scalar_text(&value).unwrap_or_else(|| note.stem.clone());
                }
            },
            "type" => match value
                .as_str()
                .and_then(|s| s.trim().parse::<EntityType>().ok())
            {
                Some(entity_type) => note.entity_type = Some(entity_type),
                None => {
                    note.metadata.insert(key, value);
                }
            },
            "tags" | "tag" => {
                for tag in list_of_text(&value, true) {
                    add_tag(note, &tag);
                }
            }
            "aliases" | "alias" => {
                for alias in list_of_text(&value, false) {
                    if !note.aliases.contains(&alias) {
                        note.aliases.push(alias);
                    }
                }
            }
            "created" | "updated" => match dates::parse(&value) {
                Some(at) => {
                    note.metadata.insert(key, Value::String(at.to_string()));
                }
                None => {
                    if !value.is_null() {
                        note.problems.push(Problem::new(
                            &path,
                            "invalid_value",
                            format!("{key}: {value} is not a date; kept as text"),
                        ));
                    }
                    note.metadata.insert(key, value);
                }
            },
            "status" | "priority" | "due" => task_fields.push((key, value)),
            RELATIONS_KEY => relations(note, value),
            ATTACHMENTS_KEY => note.attachments.extend(list_of_text(&value, false)),
            SYNAP_METADATA_KEY => match value {
                Value::Object(map) => note.metadata.extend(map),
                other => {
                    note.metadata.insert(key, other);
                }
            },
            FOLDER_KEY | VAULT_PATH_KEY => note.problems.push(Problem::new(
                &path,
                "invalid_value",
                format!("{key}: the key is set from the file's place in the vault; ignored"),
            )),
            key if READ_ONLY_KEYS.contains(&key) => {}
            _ => {
                note.metadata.insert(key, value);
            }
        }
    }
    if !note.aliases.is_empty() {
        let aliases = note.aliases.iter().cloned().map(Value::String).collect();
        note.metadata
            .insert(ALIASES_KEY.into(), Value::Array(aliases));
    }
    for (key, value) in task_fields {
        if note.entity_type != Some(EntityType::Task) {
            note.metadata.insert(key, value);
            continue;
        }
        let problem = match key.as_str() {
            "status" => {
                let parsed = value
                    .as_str()
                    .map(|s| s.trim().to_lowercase().replace([' ', '-'], "_"))
                    .and_then(|s| s.parse::<TaskStatus>().ok());
                note.task.status = parsed;
                parsed.is_none().then(|| {
                    format!("status: {value} is not one of todo, in_progress, done, cancelled")
                })
            }
            "priority" => {
                let parsed = value
                    .as_u64()
                    .filter(|p| *p <= u64::from(TASK_PRIORITY_MAX))
                    .map(|p| p as u8);
                note.task.priority = parsed;
                parsed
                    .is_none()
                    .then(|| format!("priority: {value} is not 0 to {TASK_PRIORITY_MAX}"))
            }
            _ => {
                if value.is_null() {
                    note.task.due = Some(None);
                    None
                } else {
                    let parsed = dates::parse(&value);
                    note.task.due = parsed.map(Some);
                    parsed
                        .is_none()
                        .then(|| format!("due: {value} is not a date"))
                }
            }
        };
        if let Some(message) = problem {
            note.problems.push(Problem::new(
                &path,
                "invalid_value",
                format!("{message}; ignored"),
            ));
        }
    }
}

fn relations(note: &mut VaultNote, value: Value) {
    let Value::Object(kinds) = value else {
        note.metadata.insert(RELATIONS_KEY.into(), value);
        return;
    };
    for (kind, targets) in kinds {
        let kind = match RelationKind::parse(&kind) {
            Ok(kind) => kind,
            Err(error) => {
                note.problems.push(Problem::new(
                    &note.path,
                    "invalid_value",
                    format!("relations: {error}; ignored"),
                ));
                continue;
            }
        };
        for target in list_of_text(&targets, false) {
            let target = target
                .strip_prefix("[[")
                .and_then(|t| t.strip_suffix("]]"))
                .unwrap_or(&target);
            let target = target.split('|').next().unwrap_or(target);
            let target = target.split('#').next().unwrap_or(target).trim();
            if !target.is_empty() {
                note.relations.push((kind.clone(), target.to_string()));
            }
        }
    }
}

fn add_tag(note: &mut VaultNote, raw: &str) {
    let tag = match normalize_tag(raw) {
        Ok(tag) => tag,
        Err(error) => {
            note.problems.push(Problem::new(
                &note.path,
                "invalid_value",
                format!("{error}; the tag was skipped"),
            ));
            return;
        }
    };
    let key = tag_key(&tag);
    if note.tags.iter().any(|t| tag_key(t) == key) {
        return;
    }
    if note.tags.len() == TAGS_PER_ENTITY_MAX {
        note.problems.push(Problem::new(
            &note.path,
            "invalid_value",
            format!("tag {tag:?} was skipped: an entity has at most {TAGS_PER_ENTITY_MAX} tags"),
        ));
        return;
    }
    note.tags.push(tag);
}

/// A list of strings from a list, or from one string split at commas (and, for
/// tags, spaces).
fn list_of_text(value: &Value, split_spaces: bool) -> Vec<String> {
    let items: Vec<String> = match value {
        Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
        Value::Null => Vec::new(),
        other => scalar_text(other)
            .map(|text| {
                text.split(|c: char| c == ',' || (split_spaces && c.is_whitespace()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    };
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Drops the largest frontmatter keys until the metadata fits the domain's limit,
/// reporting each one (the note itself is still imported).
fn fit_metadata(note: &mut VaultNote) {
    let size = |m: &Map<String, Value>| serde_json::to_vec(m).map_or(usize::MAX, |v| v.len());
    while size(&note.metadata) > METADATA_BYTES_MAX {
        let largest = note
            .metadata
            .iter()
            .filter(|(k, _)| *k != VAULT_PATH_KEY && *k != FOLDER_KEY)
            .max_by_key(|(_, v)| serde_json::to_vec(v).map_or(0, |v| v.len()))
            .map(|(k, _)| k.clone());
        let Some(key) = largest else { break };
        note.metadata.remove(&key);
        note.problems.push(Problem::new(
            &note.path,
            "invalid_value",
            format!(
                "frontmatter key {key:?} was dropped: metadata holds at most {METADATA_BYTES_MAX} bytes"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frontmatter_fields_map_to_the_entity() {
        let text = "---\r\ntitle: Alpha\r\ntags: [one, \"#Two\"]\r\naliases: A1, A2\r\ncreated: 2024-03-01\r\nupdated: 2024-03-02 10:00\r\nrating: 5\r\n---\r\nBody #three\r\n";
        let note = parse("Projects/alpha.md", text.as_bytes()).unwrap();
        assert_eq!(note.title, "Alpha");
        assert_eq!(note.folder, "Projects");
        assert_eq!(note.tags, vec!["one", "Two", "three"]);
        assert_eq!(note.aliases, vec!["A1", "A2"]);
        assert_eq!(note.body, "Body #three\n");
        assert_eq!(note.metadata["created"], json!("2024-03-01T00:00:00Z"));
        assert_eq!(note.metadata["updated"], json!("2024-03-02T10:00:00Z"));
        assert_eq!(note.metadata["rating"], json!(5));
        assert_eq!(note.metadata["aliases"], json!(["A1", "A2"]));
        assert_eq!(note.metadata["folder"], json!("Projects"));
        assert_eq!(note.metadata["vault_path"], json!("Projects/alpha.md"));
        assert!(note.problems.is_empty(), "{:?}", note.problems);
    }

    #[test]
    fn tags_as_a_string_and_task_fields() {
        let text = "---\ntype: task\ntags: \"#a, b c\"\nstatus: in progress\npriority: 2\ndue: 2024/05/01\n---\n";
        let note = parse("t.md", text.as_bytes()).unwrap();
        assert_eq!(note.tags, vec!["a", "b", "c"]);
        assert_eq!(note.entity_type, Some(EntityType::Task));
        assert_eq!(note.task.status, Some(TaskStatus::InProgress));
        assert_eq!(note.task.priority, Some(2));
        assert_eq!(
            note.task.due,
            Some(Some("2024-05-01T00:00:00Z".parse().unwrap()))
        );
    }

    #[test]
    fn status_of_a_note_is_metadata_and_bad_values_are_reported() {
        let text = "---\nstatus: draft\ncreated: someday\ntype: book\n---\nx";
        let note = parse("n.md", text.as_bytes()).unwrap();
        assert_eq!(note.entity_type, None);
        assert_eq!(note.metadata["status"], json!("draft"));
        assert_eq!(note.metadata["type"], json!("book"));
        assert_eq!(note.metadata["created"], json!("someday"));
        assert_eq!(note.problems.len(), 1);
        assert_eq!(note.problems[0].kind, "invalid_value");
    }

    #[test]
    fn broken_frontmatter_keeps_the_text() {
        let text = "---\ntitle: [unclosed\n---\nbody";
        let note = parse("x.md", text.as_bytes()).unwrap();
        assert_eq!(note.body, text);
        assert_eq!(note.problems[0].kind, "bad_frontmatter");
    }

    #[test]
    fn non_utf8_is_refused() {
        let problem = parse("latin1.md", b"caf\xe9").unwrap_err();
        assert_eq!(problem.kind, "not_utf8");
    }

    #[test]
    fn typed_relations_come_from_frontmatter() {
        let text = "---\nrelations:\n  blocks: [\"[[B]]\", \"[[f/C|c]]\"]\n---\n";
        let note = parse("a.md", text.as_bytes()).unwrap();
        let relations: Vec<(String, String)> = note
            .relations
            .iter()
            .map(|(k, t)| (k.as_str().to_string(), t.clone()))
            .collect();
        assert_eq!(
            relations,
            vec![
                ("blocks".into(), "B".into()),
                ("blocks".into(), "f/C".into())
            ]
        );
    }
}
