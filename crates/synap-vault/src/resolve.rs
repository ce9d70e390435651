//! Which note a link names, the way Obsidian reads links: a path (`folder/Note`,
//! matched as a suffix of the vault path), else a file name, else a title, else an
//! alias — all case-insensitively. When several notes match, one in the linking
//! note's folder wins, then the one with the shortest path; the link is reported
//! as ambiguous so a folder-qualified link can settle it.

use std::collections::HashMap;
use unicode_normalization::UnicodeNormalization;

/// How a link resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Found(usize),
    /// Several notes matched; the first is the one chosen.
    Ambiguous(usize, usize),
    Missing,
}

/// The names of one note.
#[derive(Debug, Clone)]
pub struct Names<'a> {
    pub path: &'a str,
    pub folder: &'a str,
    pub stem: &'a str,
    pub title: &'a str,
    pub aliases: &'a [String],
}

/// Notes by each of their names (keys are lowercase).
#[derive(Debug, Default)]
pub struct Index {
    paths: Vec<(String, String)>,
    by_stem: HashMap<String, Vec<usize>>,
    by_title: HashMap<String, Vec<usize>>,
    by_alias: HashMap<String, Vec<usize>>,
}

/// The key of a link target or a name: NFC, trimmed, lowercase, `\` as `/`,
/// without a leading `./` or `/` and without `.md`.
pub fn key(text: &str) -> String {
    let text: String = text.trim().nfc().collect::<String>().replace('\\', "/");
    let text = text.trim_start_matches("./").trim_start_matches('/');
    let lower = text.to_lowercase();
    match lower.strip_suffix(".md") {
        Some(stem) if !stem.is_empty() => stem.to_string(),
        _ => lower,
    }
}

impl Index {
    pub fn new<'a>(notes: impl IntoIterator<Item = Names<'a>>) -> Self {
        let mut index = Index::default();
        for (i, names) in notes.into_iter().enumerate() {
            index
                .paths
                .push((key(names.path), names.folder.to_lowercase()));
            index.by_stem.entry(key(names.stem)).or_default().push(i);
            let title = key(names.title);
            if title != key(names.stem) {
                index.by_title.entry(title).or_default().push(i);
            }
            for alias in names.aliases {
                index.by_alias.entry(key(alias)).or_default().push(i);
            }
        }
        index
    }

    /// Resolves `target` as written in a note of `from_folder`.
    pub fn resolve(&self, target: &str, from_folder: &str) -> Resolution {
        let target = key(target);
        if target.is_empty() {
            return Resolution::Missing;
        }
        let candidates: Vec<usize> = if target.contains('/') {
            let suffix = format!("/{target}");
            self.paths
                .iter()
                .enumerate()
                .filter(|(_, (path, _))| *path == target || path.ends_with(&suffix))
                .map(|(i, _)| i)
                .collect()
        } else {
            [&self.by_stem, &self.by_title, &self.by_alias]
                .into_iter()
                .find_map(|map| map.get(&target).filter(|c| !c.is_empty()))
                .cloned()
                .unwrap_or_default()
        };
        self.choose(candidates, &from_folder.to_lowercase())
    }

    fn choose(&self, mut candidates: Vec<usize>, from_folder: &str) -> Resolution {
        candidates.sort_unstable();
        candidates.dedup();
        match candidates.len() {
            0 => Resolution::Missing,
            1 => Resolution::Found(candidates[0]),
            n => {
                let local: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(|i| self.paths[*i].1 == from_folder)
                    .collect();
                if let [only] = local.as_slice() {
                    return Resolution::Found(*only);
                }
                let best = candidates
                    .iter()
                    .copied()
                    .min_by_key(|i| {
                        (
                            self.paths[*i].0.matches('/').count(),
                            self.paths[*i].0.clone(),
                        )
                    })
                    .unwrap_or(candidates[0]);
                Resolution::Ambiguous(best, n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let aliases = vec!["Project A".to_string()];
        let none: Vec<String> = Vec::new();
        Index::new(vec![
            Names {
                path: "Work/Meeting.md",
                folder: "Work",
                stem: "Meeting",
                title: "Meeting",
                aliases: &none,
            },
            Names {
                path: "Home/Meeting.md",
                folder: "Home",
                stem: "Meeting",
                title: "Meeting",
                aliases: &none,
            },
            Names {
                path: "alpha.md",
                folder: "",
                stem: "alpha",
                title: "Alpha Project",
                aliases: &aliases,
            },
            Names {
                path: "Deep/Er/Café.md",
                folder: "Deep/Er",
                stem: "Café",
                title: "Café",
                aliases: &none,
            },
        ])
    }

    #[test]
    fn names_resolve_case_insensitively() {
        let index = index();
        assert_eq!(index.resolve("ALPHA", ""), Resolution::Found(2));
        assert_eq!(index.resolve("alpha project", ""), Resolution::Found(2));
        assert_eq!(index.resolve("project a", ""), Resolution::Found(2));
        assert_eq!(index.resolve("alpha.md", ""), Resolution::Found(2));
        assert_eq!(index.resolve("cafe\u{301}", ""), Resolution::Found(3));
        assert_eq!(index.resolve("Er/Café", ""), Resolution::Found(3));
        assert_eq!(index.resolve("Nowhere", ""), Resolution::Missing);
    }

    #[test]
    fn same_titles_in_two_folders() {
        let index = index();
        assert_eq!(index.resolve("Home/Meeting", "Work"), Resolution::Found(1));
        assert_eq!(index.resolve("work/meeting", "Home"), Resolution::Found(0));
        assert_eq!(index.resolve("Meeting", "Work"), Resolution::Found(0));
        assert_eq!(index.resolve("Meeting", "Home"), Resolution::Found(1));
        assert_eq!(index.resolve("Meeting", ""), Resolution::Ambiguous(1, 2));
    }
}
