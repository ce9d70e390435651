//! The local title heuristic: the first sentence of the first non-empty line, without
//! list markers, headings and labels ("TODO:", "idea:"), without trailing full stops
//! and "!" (they are priority markers, not title), with its first letter capitalised,
//! shortened at a word boundary to [`LOCAL_TITLE_CHARS_MAX`] characters.

use synap_domain::limits::{DERIVED_TITLE_LINE_CHARS_MAX, UNTITLED};

/// Longest local title, in characters: the length the domain derives titles with.
pub const LOCAL_TITLE_CHARS_MAX: usize = DERIVED_TITLE_LINE_CHARS_MAX;
/// Lines looked at for the first non-empty one.
const LINES_SCANNED_MAX: usize = 1_000;
/// Labels dropped from the start of a title (compared lower-cased).
const LABELS: &[&str] = &[
    "todo:",
    "todo",
    "to-do:",
    "to do:",
    "task:",
    "idea:",
    "note:",
    "event:",
    "meeting:",
    "reminder:",
    "fyi:",
];
/// Words ending in "." that do not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "dr", "mr", "mrs", "ms", "st", "vs", "etc", "e.g", "i.e", "approx", "no", "jr", "sr", "prof",
];

pub fn title(text: &str) -> String {
    let line = text
        .lines()
        .take(LINES_SCANNED_MAX)
        .map(clean_line)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let sentence = first_sentence(&line);
    let trimmed = sentence
        .trim_end_matches(['.', ',', ';', ':', '!', ' '])
        .trim();
    let trimmed = if trimmed.is_empty() {
        sentence.trim()
    } else {
        trimmed
    };
    if trimmed.is_empty() {
        return UNTITLED.to_string();
    }
    shorten(&capitalize(trimmed), LOCAL_TITLE_CHARS_MAX)
}

/// Drops control characters, list and heading markers and labels; collapses spaces.
fn clean_line(line: &str) -> String {
    let line: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut rest = line.trim();
    loop {
        let before = rest;
        rest = rest
            .trim_start_matches(['#', '>', '*', '-', '+', '•'])
            .trim_start();
        for checkbox in ["[ ]", "[x]", "[X]"] {
            rest = rest.strip_prefix(checkbox).unwrap_or(rest).trim_start();
        }
        // "1." / "2)" numbered list items.
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && matches!(rest.as_bytes().get(digits), Some(b'.' | b')')) {
            let after = &rest[digits + 1..];
            if after.starts_with(' ') {
                rest = after.trim_start();
            }
        }
        for label in LABELS {
            if let Some(prefix) = rest.get(..label.len())
                && prefix.eq_ignore_ascii_case(label)
            {
                let after = &rest[label.len()..];
                // A label is a word of its own: "todo: x", "TODO x", not "todos".
                if after.is_empty() || label.ends_with(':') || after.starts_with([' ', ':']) {
                    rest = after.trim_start_matches(':').trim_start();
                    break;
                }
            }
        }
        if rest == before {
            break;
        }
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text up to the first ". ", "? " or "! " that ends a sentence ("?" and "!"
/// are kept with it).
fn first_sentence(line: &str) -> &str {
    for (i, c) in line.char_indices() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let end = i + c.len_utf8();
        if !line[end..].starts_with(' ') {
            continue;
        }
        if c == '.' {
            let word = line[..i].rsplit(' ').next().unwrap_or("").to_lowercase();
            if ABBREVIATIONS.contains(&word.as_str()) || word.chars().count() == 1 {
                continue;
            }
            return &line[..i];
        }
        // Keep "?!" runs whole.
        let run_end = end
            + line[end..]
                .chars()
                .take_while(|c| matches!(c, '?' | '!'))
                .map(char::len_utf8)
                .sum::<usize>();
        return &line[..run_end];
    }
    line
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) if first.is_lowercase() => {
            let upper: String = first.to_uppercase().collect();
            // "ß" capitalises to "SS"; keep such rare letters as they are.
            if upper.chars().count() == 1 {
                upper + chars.as_str()
            } else {
                s.to_string()
            }
        }
        _ => s.to_string(),
    }
}

/// At most `max` characters, cut at a word boundary when one is near, ending in "…".
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max - 1).collect();
    let at_word = match cut.rfind(' ') {
        Some(i) if cut[..i].chars().count() >= max / 2 => &cut[..i],
        _ => &cut,
    };
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        let cases = [
            ("Buy milk tomorrow at 3pm", "Buy milk tomorrow at 3pm"),
            ("call Anna", "Call Anna"),
            ("TODO: call Anna!!", "Call Anna"),
            ("idea: a dark mode. It would help at night.", "A dark mode"),
            ("  \n\n# Meeting notes\nWe decided things.", "Meeting notes"),
            ("- [ ] renew passport", "Renew passport"),
            ("What if we used Rust? It is fast.", "What if we used Rust?"),
            (
                "Ask Dr. Smith about it. Then rest.",
                "Ask Dr. Smith about it",
            ),
            ("1. first item", "First item"),
            ("", UNTITLED),
            ("   \n\t", UNTITLED),
            ("!!!", "!!!"),
            ("todos are piling up", "Todos are piling up"),
            ("ßtraße", "ßtraße"),
        ];
        for (text, expected) in cases {
            assert_eq!(title(text), expected, "{text:?}");
        }
    }

    #[test]
    fn long_lines_are_cut_at_a_word() {
        let text = "word ".repeat(60);
        let t = title(&text);
        assert!(t.chars().count() <= LOCAL_TITLE_CHARS_MAX);
        assert!(t.ends_with("word…"), "{t}");
        let no_spaces = "x".repeat(300);
        assert_eq!(title(&no_spaces).chars().count(), LOCAL_TITLE_CHARS_MAX);
    }
}
