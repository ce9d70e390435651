//! Scanning a Markdown body for what import maps: `[[wikilinks]]` (with their byte
//! ranges, so they can be rewritten), embedded files and inline `#tags`.
//!
//! Code is not text: fenced blocks (```` ``` ```` / `~~~`) and inline code spans are
//! skipped with exactly the rules of `synap_domain::text::wikilinks`, so a link the
//! importer rewrites is a link the store sees, and the other way round.

use std::ops::Range;

/// One `[[wikilink]]` or `![[embed]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WikiLink {
    /// Bytes of the whole link in the body, `!` of an embed included.
    pub range: Range<usize>,
    pub embed: bool,
    /// The note (or file) part, trimmed: `folder/Note` of `[[folder/Note#h|label]]`.
    pub target: String,
    /// After `#`, when present (`^block` references included).
    pub heading: Option<String>,
    /// After `|`, when present.
    pub label: Option<String>,
}

impl WikiLink {
    /// Whether the target names a file other than a note (`image.png`, `doc.pdf`).
    pub fn is_file(&self) -> bool {
        has_file_extension(&self.target)
    }
}

/// What one body contains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub links: Vec<WikiLink>,
    /// Local files of Markdown images `![alt](path)` (URLs excluded), decoded.
    pub images: Vec<String>,
    /// Inline tags without `#`, in order of appearance (duplicates kept).
    pub tags: Vec<String>,
}

/// Scans a body (with `\n` line ends).
pub fn scan(body: &str) -> Scan {
    let mut scan = Scan::default();
    let mut in_fence = false;
    let mut line_start = 0;
    for line in body.split_inclusive('\n') {
        let offset = line_start;
        line_start += line.len();
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        scan_line(line, offset, &mut scan);
    }
    scan
}

fn scan_line(line: &str, offset: usize, scan: &mut Scan) {
    let mut in_code = false;
    let mut i = 0;
    let bytes = line.as_bytes();
    while i < line.len() {
        let rest = &line[i..];
        if rest.starts_with('`') {
            in_code = !in_code;
            i += 1;
            continue;
        }
        if in_code {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        if rest.starts_with("[[")
            && let Some(end) = rest[2..].find("]]")
        {
            let inner = &rest[2..2 + end];
            let embed = i > 0 && bytes[i - 1] == b'!';
            let start = if embed { i - 1 } else { i };
            if let Some(link) = parse_wikilink(inner, offset + start..offset + i + end + 4, embed) {
                scan.links.push(link);
            }
            i += end + 4;
            continue;
        }
        if rest.starts_with("![")
            && !rest.starts_with("![[")
            && let Some((path, used)) = markdown_image(rest)
        {
            if let Some(path) = path {
                scan.images.push(path);
            }
            i += used;
            continue;
        }
        if let Some(after_hash) = rest.strip_prefix('#') {
            let before = line[..i].chars().next_back();
            if before.is_none_or(char::is_whitespace) {
                let (tag, used) = inline_tag(after_hash);
                if let Some(tag) = tag {
                    scan.tags.push(tag);
                }
                i += 1 + used;
                continue;
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
}

fn parse_wikilink(inner: &str, range: Range<usize>, embed: bool) -> Option<WikiLink> {
    if inner.contains('[') || inner.contains('\n') {
        return None;
    }
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(label.trim().to_string())),
        None => (inner, None),
    };
    let (page, heading) = match target.split_once('#') {
        Some((page, heading)) => (page, Some(heading.trim().to_string())),
        None => (target, None),
    };
    let page = page.trim();
    if page.is_empty() {
        return None;
    }
    Some(WikiLink {
        range,
        embed,
        target: page.to_string(),
        heading,
        label,
    })
}

/// `![alt](dest "title")` at the start of `rest`: the local file it names (or
/// `None` for a URL) and the bytes it spans.
fn markdown_image(rest: &str) -> Option<(Option<String>, usize)> {
    let close = rest.find("](")?;
    if rest[2..close].contains(['\n', '[', ']']) {
        return None;
    }
    let after = &rest[close + 2..];
    let (dest, used) = if let Some(inner) = after.strip_prefix('<') {
        let end = inner.find('>')?;
        (&inner[..end], end + 2)
    } else {
        let end = after.find(')')?;
        let dest = after[..end].split_whitespace().next().unwrap_or("");
        (dest, end)
    };
    let end = close + 2 + used + after[used..].find(')').map_or(0, |p| p + 1);
    let local = !dest.is_empty()
        && !dest.contains("://")
        && !dest.starts_with("data:")
        && !dest.starts_with('#');
    Some((local.then(|| percent_decode(dest)), end))
}

/// An inline tag after `#`: letters, digits, `_`, `-` and `/`, not only digits
/// (`#123` is an issue number, not a tag). Returns the tag and the bytes read.
fn inline_tag(text: &str) -> (Option<String>, usize) {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '/')))
        .map_or(text.len(), |(i, _)| i);
    let tag = text[..end].trim_end_matches('/');
    let valid =
        !tag.is_empty() && !tag.starts_with('/') && !tag.chars().all(|c| c.is_ascii_digit());
    (valid.then(|| tag.to_string()), end)
}

/// Whether a link target ends in a file extension other than `.md`.
pub fn has_file_extension(target: &str) -> bool {
    let name = target.rsplit('/').next().unwrap_or(target);
    match name.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 5
                && ext.chars().all(|c| c.is_ascii_alphanumeric())
                && !ext.eq_ignore_ascii_case("md")
        }
        None => false,
    }
}

/// Decodes `%XX` escapes (`My%20File.png`); invalid escapes stay as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(body: &str) -> Vec<(String, Option<String>, Option<String>, bool)> {
        scan(body)
            .links
            .into_iter()
            .map(|l| (l.target, l.heading, l.label, l.embed))
            .collect()
    }

    #[test]
    fn wikilinks_with_headings_labels_folders_and_embeds() {
        let body = "See [[Note]], [[Other|shown]], [[Deep#Intro]], [[a/b/Note]] and ![[pic.png]].";
        assert_eq!(
            targets(body),
            vec![
                ("Note".into(), None, None, false),
                ("Other".into(), None, Some("shown".into()), false),
                ("Deep".into(), Some("Intro".into()), None, false),
                ("a/b/Note".into(), None, None, false),
                ("pic.png".into(), None, None, true),
            ]
        );
        let scan = scan(body);
        assert_eq!(&body[scan.links[4].range.clone()], "![[pic.png]]");
        assert!(scan.links[4].is_file());
        assert!(!scan.links[3].is_file());
    }

    #[test]
    fn code_hides_links_and_tags() {
        let body = "```\n[[InFence]] #fenced\n```\n`[[Inline]] #inline` [[Real]] #real\n";
        assert_eq!(targets(body), vec![("Real".into(), None, None, false)]);
        assert_eq!(scan(body).tags, vec!["real"]);
    }

    #[test]
    fn tags_are_words_after_a_hash_at_a_word_start() {
        let body = "# Heading\n## Sub #inheading\n#start, mid #two/levels and #tag-x_y.\n\
                    url http://x.org/#frag, [l](#anchor), a#b, #123, &#35; #日本語\n";
        assert_eq!(
            scan(body).tags,
            vec!["inheading", "start", "two/levels", "tag-x_y", "日本語"]
        );
    }

    #[test]
    fn markdown_images_name_local_files() {
        let body = "![a](img/one%20two.png) ![b](https://x.org/p.png) ![c](<with space.jpg>)";
        assert_eq!(scan(body).images, vec!["img/one two.png", "with space.jpg"]);
    }

    #[test]
    fn crlf_free_offsets_point_at_links() {
        let body = "é [[Ünï]]\nx ![[Ünï#h|l]]";
        let scan = scan(body);
        assert_eq!(&body[scan.links[0].range.clone()], "[[Ünï]]");
        assert_eq!(&body[scan.links[1].range.clone()], "![[Ünï#h|l]]");
    }
}
