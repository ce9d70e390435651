//! YAML frontmatter: finding the block at the top of a note and reading it into a
//! JSON object (the shape metadata has), and writing one back.

use serde_json::{Map, Value};

/// Splits `text` (with `\n` line ends) into its frontmatter block, if any, and the
/// body after it. A block starts with a first line of exactly `---` and ends at the
/// next line that is `---` or `...`; without a closing line there is no block.
pub fn split(text: &str) -> (Option<&str>, &str) {
    let Some(rest) = text.strip_prefix("---\n") else {
        return (None, text);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line).trim_end();
        if bare == "---" || bare == "..." {
            let yaml = &rest[..offset];
            let body = &rest[offset + line.len()..];
            return (Some(yaml), body);
        }
        offset += line.len();
    }
    (None, text)
}

/// Reads a frontmatter block into an object. An empty block is an empty object; a
/// block that is not a mapping is an error.
pub fn parse(yaml: &str) -> Result<Map<String, Value>, String> {
    if yaml.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_saphyr::from_str::<Value>(yaml) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err("the frontmatter is not a mapping of keys to values".into()),
        Err(error) => Err(format!(
            "the frontmatter is not valid YAML: {}",
            first_line(&error.to_string())
        )),
    }
}

/// Writes an object as a frontmatter block (with its `---` lines).
pub fn render(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return String::new();
    }
    // Serialising a JSON object cannot fail; an empty block is the fallback.
    let yaml = serde_saphyr::to_string(&Value::Object(map.clone())).unwrap_or_default();
    let mut out = String::with_capacity(yaml.len() + 8);
    out.push_str("---\n");
    out.push_str(&yaml);
    if !yaml.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("---\n");
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_block_needs_both_delimiters() {
        assert_eq!(split("---\na: 1\n---\nbody"), (Some("a: 1\n"), "body"));
        assert_eq!(split("---\na: 1\n...\nbody"), (Some("a: 1\n"), "body"));
        assert_eq!(split("---\na: 1\nbody"), (None, "---\na: 1\nbody"));
        assert_eq!(split("text\n---\n"), (None, "text\n---\n"));
        assert_eq!(split("---\n---\n"), (Some(""), ""));
    }

    #[test]
    fn values_survive_a_render_and_parse() {
        let map = json!({
            "title": "Yes: a title # with \"quotes\"",
            "tags": ["a", "b/c"],
            "number_like": "0123",
            "bool_like": "true",
            "empty": "",
            "multi": "line one\nline two",
            "nested": {"k": [1, 2.5, null, false]},
            "unicode": "日本語 — ü",
        });
        let map = map.as_object().unwrap().clone();
        let text = render(&map);
        let (yaml, body) = split(&text);
        assert_eq!(body, "");
        assert_eq!(parse(yaml.unwrap()).unwrap(), map);
    }

    #[test]
    fn a_scalar_is_not_frontmatter() {
        assert!(parse("just text").is_err());
        assert!(parse("a: [unclosed").is_err());
    }
}
