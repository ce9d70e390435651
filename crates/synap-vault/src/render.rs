//! Entities back to Markdown: safe, unique file paths, the frontmatter, and stored
//! `[[<id>]]` links written back as vault links. Pure: the caller reads the store.

use crate::frontmatter;
use crate::markdown;
use crate::note::{
    ATTACHMENTS_KEY, FOLDER_KEY, RELATIONS_KEY, RESERVED_KEYS, SYNAP_METADATA_KEY, VAULT_PATH_KEY,
};
use crate::source::normalize_path;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use synap_domain::ids::EntityId;
use synap_store::EntityView;

/// Longest file name stem written, in bytes (file systems allow 255 bytes per name;
/// the rest is room for ` (12)` and `.md`).
pub const FILE_STEM_BYTES_MAX: usize = 200;

/// Characters escaped as `%XX` in file and folder names: path separators, the
/// characters Windows forbids, the ones that break wikilinks (`# [ ] ^ |`), and `%`.
const ESCAPED: &[char] = &[
    '/', '\\', ':', '*', '?', '"', '<', '>', '|', '#', '[', ']', '^', '%',
];

/// Names Windows reserves, with or without an extension.
const WINDOWS_RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// A file or folder name for `name`: Unicode kept, reserved characters and control
/// characters escaped as `%XX`, no leading dot (hidden), no trailing dot or space,
/// no Windows device name, at most [`FILE_STEM_BYTES_MAX`] bytes.
pub fn safe_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if c.is_control() || ESCAPED.contains(&c) {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.starts_with('.') {
        out.replace_range(0..1, "%2E");
    }
    // One escaped character is enough: the name no longer ends in a dot or space.
    if out.ends_with('.') || out.ends_with(' ') {
        let last = out.pop().unwrap_or(' ');
        out.push_str(&format!("%{:02X}", last as u32));
    }
    if out.len() > FILE_STEM_BYTES_MAX {
        let mut end = FILE_STEM_BYTES_MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        // Never end inside an escape sequence.
        if let Some(pos) = out.rfind('%').filter(|p| out.len() - p < 3) {
            out.truncate(pos);
        }
    }
    let base = out.split('.').next().unwrap_or("").to_lowercase();
    if WINDOWS_RESERVED.contains(&base.as_str()) {
        out.push('_');
    }
    if out.is_empty() {
        out.push_str("Untitled");
    }
    out
}

/// Chooses one unique `.md` path per entity: its `vault_path` when that is still a
/// clean path in its `folder`, else `folder/<safe title>.md`; clashes (compared
/// case-insensitively, as on macOS and Windows) get ` (2)`, ` (3)`, ….
pub fn assign_paths(entities: &[&EntityView]) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut paths = vec![String::new(); entities.len()];
    // Entities that keep their own vault path go first, so a new title never takes
    // the place of a file that exists in the vault.
    let mut order: Vec<(bool, usize)> = entities
        .iter()
        .enumerate()
        .map(|(i, e)| (own_vault_path(e).is_none(), i))
        .collect();
    order.sort();
    for (_, i) in order {
        let entity = entities[i];
        let wanted = own_vault_path(entity).unwrap_or_else(|| {
            let folder = folder_of(entity);
            let stem = safe_name(&entity.title);
            if folder.is_empty() {
                format!("{stem}.md")
            } else {
                format!("{folder}/{stem}.md")
            }
        });
        let (base, ext) = wanted.rsplit_once('.').unwrap_or((&wanted, "md"));
        let mut path = wanted.clone();
        let mut n = 2;
        while !taken.insert(path.to_lowercase()) {
            path = format!("{base} ({n}).{ext}");
            n += 1;
        }
        paths[i] = path;
    }
    paths
}

fn folder_of(entity: &EntityView) -> String {
    entity
        .metadata
        .get(FOLDER_KEY)
        .and_then(Value::as_str)
        .map(|folder| {
            folder
                .split(['/', '\\'])
                .filter(|part| !part.trim().is_empty())
                .map(safe_name)
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

fn own_vault_path(entity: &EntityView) -> Option<String> {
    let path = entity.metadata.get(VAULT_PATH_KEY)?.as_str()?;
    let clean = normalize_path(path).filter(|p| p == path && p.to_lowercase().ends_with(".md"))?;
    let dir = clean.rsplit_once('/').map_or("", |(dir, _)| dir);
    (dir == folder_of(entity) && !clean.split('/').any(|part| part.starts_with('.')))
        .then_some(clean)
}

/// How to write links to one exported entity.
#[derive(Debug, Clone)]
pub struct LinkNames {
    /// Vault path without `.md`.
    pub path: String,
    /// File name without `.md`, when no other exported file has it (then it is
    /// the shortest link that resolves).
    pub unique_stem: Option<String>,
}

impl LinkNames {
    pub fn link(&self) -> &str {
        self.unique_stem.as_deref().unwrap_or(&self.path)
    }
}

/// Link names for every exported entity, by id.
pub fn link_names(ids: &[EntityId], paths: &[String]) -> HashMap<EntityId, LinkNames> {
    let stem = |path: &str| -> String {
        let file = path.rsplit('/').next().unwrap_or(path);
        file.strip_suffix(".md").unwrap_or(file).to_string()
    };
    let mut stem_count: HashMap<String, usize> = HashMap::new();
    for path in paths {
        *stem_count.entry(stem(path).to_lowercase()).or_default() += 1;
    }
    ids.iter()
        .zip(paths)
        .map(|(id, path)| {
            let s = stem(path);
            let unique = stem_count.get(&s.to_lowercase()) == Some(&1);
            let names = LinkNames {
                path: path.strip_suffix(".md").unwrap_or(path).to_string(),
                unique_stem: unique.then_some(s),
            };
            (*id, names)
        })
        .collect()
}

/// Rewrites `[[<id>#h|label]]` links to exported entities as vault links; other
/// links stay as they are.
pub fn rewrite_links(body: &str, names: &HashMap<EntityId, LinkNames>) -> String {
    let scan = markdown::scan(body);
    let mut out = String::with_capacity(body.len());
    let mut last = 0;
    for link in &scan.links {
        let Some(target) = link
            .target
            .parse::<EntityId>()
            .ok()
            .filter(|_| link.target.len() == 36)
            .and_then(|id| names.get(&id))
        else {
            continue;
        };
        out.push_str(&body[last..link.range.start]);
        // With `.md`: a link import always stores as `[[<id>]]` again (a bare
        // title would be kept as written), so a round trip keeps the text.
        let name = format!("{}.md", target.link());
        out.push_str(&wikilink(
            link.embed,
            &name,
            link.heading.as_deref(),
            link.label.as_deref(),
        ));
        last = link.range.end;
    }
    out.push_str(&body[last..]);
    out
}

/// `[[target#heading|label]]`, `!` first for an embed.
pub fn wikilink(embed: bool, target: &str, heading: Option<&str>, label: Option<&str>) -> String {
    let mut out = String::new();
    if embed {
        out.push('!');
    }
    out.push_str("[[");
    out.push_str(target);
    if let Some(heading) = heading {
        out.push('#');
        out.push_str(heading);
    }
    if let Some(label) = label {
        out.push('|');
        out.push_str(label);
    }
    out.push_str("]]");
    out
}

/// The Markdown file of one entity: frontmatter, then the body (links rewritten).
/// `relations`: typed links to write in the frontmatter, kind → link targets.
pub fn render_entity(
    entity: &EntityView,
    body: &str,
    relations: &BTreeMap<String, Vec<String>>,
    names: &HashMap<EntityId, LinkNames>,
    attachments: &[String],
) -> String {
    let mut fm = Map::new();
    fm.insert("id".into(), Value::String(entity.id.to_string()));
    fm.insert("type".into(), Value::String(entity.entity_type.to_string()));
    fm.insert("title".into(), Value::String(entity.title.clone()));
    if !entity.tags.is_empty() {
        let tags = entity.tags.iter().cloned().map(Value::String).collect();
        fm.insert("tags".into(), Value::Array(tags));
    }
    if let Some(task) = &entity.task {
        fm.insert("status".into(), Value::String(task.status.to_string()));
        fm.insert("priority".into(), Value::from(task.priority));
        if let Some(due) = task.due_at {
            fm.insert("due".into(), Value::String(due.to_string()));
        }
        if let Some(completed) = task.completed_at {
            fm.insert("completed_at".into(), Value::String(completed.to_string()));
        }
    }
    let mut collided = Map::new();
    // Sorted: a backend may keep metadata keys in another order (PostgreSQL's
    // jsonb does), and the same state must render the same file.
    let mut metadata: Vec<(&String, &Value)> = entity.metadata.iter().collect();
    metadata.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in metadata {
        if key == FOLDER_KEY || key == VAULT_PATH_KEY {
            continue;
        }
        if RESERVED_KEYS.contains(&key.as_str()) {
            collided.insert(key.clone(), value.clone());
        } else {
            fm.insert(key.clone(), value.clone());
        }
    }
    if !relations.is_empty() {
        let relations: Map<String, Value> = relations
            .iter()
            .map(|(kind, targets)| {
                let links = targets
                    .iter()
                    .map(|t| Value::String(wikilink(false, t, None, None)))
                    .collect();
                (kind.clone(), Value::Array(links))
            })
            .collect();
        fm.insert(RELATIONS_KEY.into(), Value::Object(relations));
    }
    if !attachments.is_empty() {
        let names = attachments.iter().cloned().map(Value::String).collect();
        fm.insert(ATTACHMENTS_KEY.into(), Value::Array(names));
    }
    if !collided.is_empty() {
        fm.insert(SYNAP_METADATA_KEY.into(), Value::Object(collided));
    }
    fm.insert(
        "created_at".into(),
        Value::String(entity.created_at.to_string()),
    );
    fm.insert(
        "updated_at".into(),
        Value::String(entity.updated_at.to_string()),
    );
    let mut out = frontmatter::render(&fm);
    out.push_str(&rewrite_links(body, names));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_what_file_systems_and_links_refuse() {
        assert_eq!(safe_name("a/b\\c: d?"), "a%2Fb%5Cc%3A d%3F");
        assert_eq!(safe_name("Notes #1 [draft]"), "Notes %231 %5Bdraft%5D");
        assert_eq!(safe_name("日本語のノート"), "日本語のノート");
        assert_eq!(safe_name(".hidden"), "%2Ehidden");
        assert_eq!(safe_name("ends."), "ends%2E");
        assert_eq!(safe_name("CON"), "CON_");
        assert_eq!(safe_name("   "), "Untitled");
        assert!(safe_name(&"é".repeat(300)).len() <= FILE_STEM_BYTES_MAX);
    }
}
