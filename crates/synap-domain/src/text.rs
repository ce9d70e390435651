//! Text rules that the domain owns: title derivation, the plain-text preview,
//! `[[wikilink]]` extraction, and the search text model shared by every backend —
//! diacritic folding, CJK segmentation, query terms and highlighted snippets.

use crate::ids::EntityId;
use crate::limits::{
    DERIVED_TITLE_LINE_CHARS_MAX, DERIVED_TITLE_TRUNCATED_CHARS, PREVIEW_CHARS, SNIPPET_CHARS,
    UNTITLED, WIKILINKS_PER_ENTITY_MAX,
};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The title an entity gets when none is given: the first non-blank line without
/// leading `#`s if it has 1..=100 characters, else its first 50 characters and "…";
/// "Untitled" for empty content.
pub fn derive_title(body: &str) -> String {
    let Some(line) = body.lines().map(str::trim).find(|line| !line.is_empty()) else {
        return UNTITLED.to_string();
    };
    // A title is one line without control characters: tabs and the like become spaces.
    let line: String = line
        .trim_start_matches('#')
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    let chars = line.chars().count();
    if chars == 0 {
        UNTITLED.to_string()
    } else if chars <= DERIVED_TITLE_LINE_CHARS_MAX {
        line.to_string()
    } else {
        let head: String = line.chars().take(DERIVED_TITLE_TRUNCATED_CHARS).collect();
        format!("{}…", head.trim_end())
    }
}

/// The first 200 characters of the content as plain text: markdown markers dropped,
/// `[[links]]` and `[text](url)` reduced to their text, whitespace collapsed.
pub fn preview(body: &str) -> String {
    // Enough raw text for 200 characters after collapsing; stop reading there.
    let budget_bytes = PREVIEW_CHARS * 8;
    let mut out = String::new();
    let mut in_fence = false;
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        let stripped = if in_fence {
            trimmed
        } else {
            trimmed
                .trim_start_matches(['#', '>', '-', '*', '+', ' '])
                .trim_start()
        };
        let stripped = stripped
            .strip_prefix("[ ] ")
            .or_else(|| stripped.strip_prefix("[x] "))
            .unwrap_or(stripped);
        push_plain(&mut out, stripped, budget_bytes);
        if out.len() >= budget_bytes {
            break;
        }
    }
    let mut collapsed = String::with_capacity(PREVIEW_CHARS * 2);
    for (count, word) in out.split_whitespace().enumerate() {
        if count > 0 {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
        if collapsed.len() >= PREVIEW_CHARS * 4 {
            break;
        }
    }
    collapsed.chars().take(PREVIEW_CHARS).collect()
}

fn push_plain(out: &mut String, line: &str, budget_bytes: usize) {
    let mut rest = line;
    out.push(' ');
    while !rest.is_empty() && out.len() < budget_bytes {
        if let Some(after) = rest.strip_prefix("[[")
            && let Some(end) = after.find("]]")
        {
            let inner = &after[..end];
            let shown = inner.split_once('|').map_or(inner, |(_, alias)| alias);
            out.push_str(shown);
            rest = &after[end + 2..];
            continue;
        }
        if let Some(after) = rest.strip_prefix('[')
            && let Some(close) = after.find("](")
            && let Some(end) = after[close + 2..].find(')')
        {
            out.push_str(&after[..close]);
            rest = &after[close + 2 + end + 1..];
            continue;
        }
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or(' ');
        if !matches!(c, '*' | '_' | '`') {
            out.push(c);
        }
        rest = chars.as_str();
    }
}

/// What a `[[wikilink]]` points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WikiTarget {
    /// `[[0192…]]`: an entity id.
    Id(EntityId),
    /// `[[Title]]` or `[[Title|alias]]`: a title, matched case-insensitively.
    Title(String),
}

/// The key a title is matched by: trimmed, lowercase.
pub fn title_key(title: &str) -> String {
    title.trim().to_lowercase()
}

/// The distinct wikilink targets of a markdown body, in order of first appearance.
/// Links inside code (fenced blocks and inline spans) are not links. `[[T#heading]]`
/// and `![[embeds]]` point at `T`. At most `WIKILINKS_PER_ENTITY_MAX` are returned.
pub fn wikilinks(body: &str) -> Vec<WikiTarget> {
    let mut targets: Vec<WikiTarget> = Vec::new();
    let mut in_fence = false;
    for line in body.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut in_code = false;
        let mut rest = line;
        while !rest.is_empty() {
            if rest.starts_with('`') {
                in_code = !in_code;
                rest = &rest[1..];
                continue;
            }
            if !in_code
                && rest.starts_with("[[")
                && let Some(end) = rest[2..].find("]]")
            {
                let inner = &rest[2..2 + end];
                rest = &rest[2 + end + 2..];
                if let Some(target) = parse_wikilink(inner)
                    && !targets.contains(&target)
                {
                    targets.push(target);
                    if targets.len() == WIKILINKS_PER_ENTITY_MAX {
                        return targets;
                    }
                }
                continue;
            }
            let mut chars = rest.chars();
            chars.next();
            rest = chars.as_str();
        }
    }
    targets
}

fn parse_wikilink(inner: &str) -> Option<WikiTarget> {
    if inner.contains('[') || inner.contains('\n') {
        return None;
    }
    let target = inner.split_once('|').map_or(inner, |(target, _)| target);
    let target = target
        .split_once('#')
        .map_or(target, |(page, _)| page)
        .trim();
    if target.is_empty() {
        return None;
    }
    match target.parse::<EntityId>() {
        Ok(id) if target.len() == 36 => Some(WikiTarget::Id(id)),
        _ => Some(WikiTarget::Title(target.to_string())),
    }
}

// ---------------------------------------------------------------------------------
// Search text model
// ---------------------------------------------------------------------------------

/// Whether `c` belongs to a script written without spaces between words (Han, kana,
/// Hangul), whose runs the index splits into overlapping bigrams.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF     // Hiragana, Katakana
        | 0x3400..=0x4DBF   // CJK Extension A
        | 0x4E00..=0x9FFF   // CJK Unified Ideographs
        | 0xF900..=0xFAFF   // CJK Compatibility Ideographs
        | 0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF // Hangul
        | 0x20000..=0x2FA1F // CJK Extensions B..
    )
}

/// Lowercase with diacritics removed (`Café` → `cafe`), character by character.
/// Returns the folded text of one character (usually one character, sometimes none
/// or several — `ß` stays `ß`, `İ` folds to `i`).
fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    for decomposed in c.nfd() {
        if is_combining_mark(decomposed) {
            continue;
        }
        for lower in decomposed.to_lowercase() {
            out.push(lower);
        }
    }
}

/// Folds a whole string (lowercase, no diacritics).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// The text handed to a full-text index for `text`: folded, with every CJK run
/// rewritten as its overlapping bigrams plus its last character, separated by spaces
/// (`菠萝包` → `菠萝 萝包 包`), so that any CJK substring of two or more characters is
/// a phrase of adjacent bigrams and a single character is a prefix.
pub fn index_text(text: &str) -> String {
    let folded = fold(text);
    let mut out = String::with_capacity(folded.len() + folded.len() / 2);
    let mut run: Vec<char> = Vec::new();
    for c in folded.chars() {
        if is_cjk(c) {
            run.push(c);
        } else {
            flush_cjk_run(&mut run, &mut out);
            out.push(c);
        }
    }
    flush_cjk_run(&mut run, &mut out);
    out
}

fn flush_cjk_run(run: &mut Vec<char>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    out.push(' ');
    for pair in run.windows(2) {
        out.push(pair[0]);
        out.push(pair[1]);
        out.push(' ');
    }
    out.push(run[run.len() - 1]);
    out.push(' ');
    run.clear();
}

/// One term of a parsed search query. All text is folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryTerm {
    /// A word; matches words that start with it (`synch` finds `synchronise`).
    Prefix(String),
    /// A quoted phrase of words, matched exactly and in order.
    Phrase(Vec<String>),
    /// A run of CJK characters, matched as a substring (as bigrams in order).
    Cjk(Vec<char>),
}

/// Splits a user's query into terms; every term must match (AND). Characters that
/// are neither letters nor digits separate words, so no query syntax can leak into
/// a backend's own query language.
pub fn parse_query(query: &str) -> Vec<QueryTerm> {
    let mut terms = Vec::new();
    for (index, part) in query.split('"').enumerate() {
        let quoted = index % 2 == 1;
        let words = split_words(&fold(part));
        if quoted && words.len() > 1 && words.iter().all(|w| !w.chars().any(is_cjk)) {
            terms.push(QueryTerm::Phrase(words));
            continue;
        }
        for word in words {
            if word.chars().any(is_cjk) {
                terms.push(QueryTerm::Cjk(word.chars().collect()));
            } else {
                terms.push(QueryTerm::Prefix(word));
            }
        }
    }
    terms.dedup();
    terms
}

/// Splits folded text into words: runs of alphanumerics; a CJK run is its own word.
fn split_words(folded: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut current_cjk = false;
    for c in folded.chars() {
        let cjk = is_cjk(c);
        if c.is_alphanumeric() || cjk {
            if !current.is_empty() && cjk != current_cjk {
                words.push(std::mem::take(&mut current));
            }
            current_cjk = cjk;
            current.push(c);
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Text folded for matching, remembering which original character each folded
/// character came from, so matches can be highlighted in the original text.
struct FoldedText {
    folded: Vec<char>,
    origin: Vec<usize>,
}

fn fold_with_origin(chars: &[char]) -> FoldedText {
    let mut folded = Vec::with_capacity(chars.len());
    let mut origin = Vec::with_capacity(chars.len());
    let mut buffer = String::new();
    for (index, c) in chars.iter().enumerate() {
        buffer.clear();
        fold_char(*c, &mut buffer);
        for f in buffer.chars() {
            folded.push(f);
            origin.push(index);
        }
    }
    FoldedText { folded, origin }
}

/// Finds the spans (in original character indexes, end exclusive) where `terms`
/// match `chars`, in order of position.
fn match_spans(chars: &[char], terms: &[QueryTerm]) -> Vec<(usize, usize)> {
    let text = fold_with_origin(chars);
    let folded = &text.folded;
    let mut spans = Vec::new();
    let word_start = |i: usize| i == 0 || !folded[i - 1].is_alphanumeric() || is_cjk(folded[i - 1]);
    for term in terms {
        let needles: Vec<(Vec<char>, bool)> = match term {
            QueryTerm::Prefix(word) => vec![(word.chars().collect(), true)],
            QueryTerm::Phrase(words) => vec![(words.join(" ").chars().collect(), true)],
            QueryTerm::Cjk(run) => vec![(run.clone(), false)],
        };
        for (needle, at_word_start) in needles {
            if needle.is_empty() || needle.len() > folded.len() {
                continue;
            }
            let mut i = 0;
            while i + needle.len() <= folded.len() {
                if folded[i..i + needle.len()] == needle[..] && (!at_word_start || word_start(i)) {
                    let mut end = i + needle.len();
                    if at_word_start {
                        // Highlight the whole word the prefix starts.
                        while end < folded.len()
                            && folded[end].is_alphanumeric()
                            && !is_cjk(folded[end])
                        {
                            end += 1;
                        }
                    }
                    let start_original = text.origin[i];
                    let end_original = text.origin[end - 1] + 1;
                    spans.push((start_original, end_original));
                    i = end;
                } else {
                    i += 1;
                }
            }
        }
    }
    spans.sort();
    // Merge overlapping spans.
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.0 <= last.1 => last.1 = last.1.max(span.1),
            _ => merged.push(span),
        }
    }
    merged
}

/// Whether every term of `terms` occurs in `text` (title or body).
pub fn matches_all(text: &str, terms: &[QueryTerm]) -> bool {
    let chars: Vec<char> = text.chars().collect();
    terms
        .iter()
        .all(|term| !match_spans(&chars, std::slice::from_ref(term)).is_empty())
}

/// A snippet of `text` around the first match of `terms`, about `SNIPPET_CHARS`
/// characters long, with matches wrapped in `<mark>`…`</mark>`. The text is
/// HTML-escaped, so the snippet can be shown as HTML as it is. `…` marks a cut.
/// Without a match, the start of the text.
pub fn snippet(text: &str, terms: &[QueryTerm]) -> String {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let spans = match_spans(&chars, terms);
    let first = spans.first().map_or(0, |span| span.0);
    let mut start = first.saturating_sub(SNIPPET_CHARS / 4);
    // Start at a word boundary when one is near.
    if start > 0
        && let Some(offset) = chars[start..first].iter().position(|c| *c == ' ')
    {
        start += offset + 1;
    }
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut span_iter = spans.iter().peekable();
    let mut index = start;
    while index < end {
        while span_iter.peek().is_some_and(|span| span.1 <= index) {
            span_iter.next();
        }
        if let Some(&&(span_start, span_end)) = span_iter.peek() {
            if span_start <= index {
                let stop = span_end.min(end);
                out.push_str("<mark>");
                push_escaped(&mut out, &chars[index..stop]);
                out.push_str("</mark>");
                index = stop;
                continue;
            }
            let stop = span_start.min(end);
            push_escaped(&mut out, &chars[index..stop]);
            index = stop;
        } else {
            push_escaped(&mut out, &chars[index..end]);
            index = end;
        }
    }
    if end < chars.len() {
        out.push('…');
    }
    collapse_spaces(&out)
}

fn push_escaped(out: &mut String, chars: &[char]) {
    for c in chars {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(*c),
        }
    }
}

fn collapse_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        if c == ' ' {
            if !last_space {
                out.push(c);
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_titles() {
        assert_eq!(derive_title("# Meeting notes\nbody"), "Meeting notes");
        assert_eq!(derive_title("\n\n  ## Plan  \n"), "Plan");
        assert_eq!(derive_title(""), "Untitled");
        assert_eq!(derive_title("   \n  "), "Untitled");
        assert_eq!(derive_title("###"), "Untitled");
        let long = "x".repeat(101);
        assert_eq!(derive_title(&long), format!("{}…", "x".repeat(50)));
        let exact = "y".repeat(100);
        assert_eq!(derive_title(&exact), exact);
    }

    #[test]
    fn previews_are_plain_text() {
        let body =
            "# Title\n\nSee [[Other note|the other]] and [a link](http://x).\n- **bold** item";
        assert_eq!(preview(body), "Title See the other and a link. bold item");
        assert_eq!(preview(&"é".repeat(300)).chars().count(), 200);
    }

    #[test]
    fn wikilinks_by_title_alias_and_id() {
        let id = "0192f0c1-0000-7000-8000-000000000001";
        let body = format!(
            "Links: [[Alpha]], [[Beta|shown]], [[{id}]], [[Alpha]] again, ![[Gamma#Part]]\n`[[in code]]`\n```\n[[fenced]]\n```\n[[]]"
        );
        assert_eq!(
            wikilinks(&body),
            vec![
                WikiTarget::Title("Alpha".into()),
                WikiTarget::Title("Beta".into()),
                WikiTarget::Id(id.parse().unwrap()),
                WikiTarget::Title("Gamma".into()),
            ]
        );
    }

    #[test]
    fn folding_and_cjk_segmentation() {
        assert_eq!(fold("Café ÉLAN naïve"), "cafe elan naive");
        assert_eq!(index_text("我爱菠萝包!"), " 我爱 爱菠 菠萝 萝包 包 !");
        assert_eq!(
            parse_query("Café \"big data\" 菠萝包 x-ray"),
            vec![
                QueryTerm::Prefix("cafe".into()),
                QueryTerm::Phrase(vec!["big".into(), "data".into()]),
                QueryTerm::Cjk("菠萝包".chars().collect()),
                QueryTerm::Prefix("x".into()),
                QueryTerm::Prefix("ray".into()),
            ]
        );
        assert_eq!(parse_query("  ;;  "), vec![]);
    }

    #[test]
    fn snippets_highlight_matches_in_the_original_text() {
        let terms = parse_query("cafe");
        assert_eq!(
            snippet("A <café> in Paris", &terms),
            "A &lt;<mark>café</mark>&gt; in Paris"
        );
        let terms = parse_query("菠萝包");
        assert_eq!(
            snippet("我今天买了菠萝包。", &terms),
            "我今天买了<mark>菠萝包</mark>。"
        );
        let long = format!("{} needle {}", "word ".repeat(100), "tail ".repeat(100));
        let cut = snippet(&long, &parse_query("needle"));
        assert!(cut.starts_with('…') && cut.ends_with('…') && cut.contains("<mark>needle</mark>"));
        assert!(matches_all(
            "Synchronisation of café",
            &parse_query("synch CAFE")
        ));
        assert!(!matches_all("Synchronisation", &parse_query("chron")));
    }
}
