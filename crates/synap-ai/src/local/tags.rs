//! Local keyword tags: YAKE key phrases (English stop words), lower-cased, 3–5 of them.
//!
//! Candidates are YAKE's best one- and two-word phrases; a phrase is skipped when it
//! is not a valid tag, longer than [`LOCAL_TAG_CHARS_MAX`], made of dates, times or
//! to-do words ("tomorrow", "3pm", "urgent"), or adds no word the chosen tags do not
//! already have. When the text has fewer than three such words, the list is padded —
//! first with the remaining content words of the text, then with the intent's name
//! ("task", "idea", …), then with [`PAD_TAGS`] — never with words the text does not
//! justify. So a one-word thought "Milk" gets `milk`, `note`, `inbox`, and an empty
//! one `note`, `inbox`, `quick-thought`.

use std::collections::HashSet;
use std::sync::OnceLock;
use synap_domain::EntityType;
use synap_domain::tags::normalize_tag;
use yake_rust::{Config, StopWords};

use crate::analysis::{ANALYSIS_TAGS_MAX, ANALYSIS_TAGS_MIN};

/// Longest local tag, in characters (shorter than the domain's limit: a tag is a
/// label, not a phrase).
pub const LOCAL_TAG_CHARS_MAX: usize = 32;
/// Characters of the text given to YAKE; key phrases of a long body show up early.
pub const KEYWORD_INPUT_CHARS_MAX: usize = 20_000;
/// Longest key phrase, in words.
const KEYWORD_WORDS_MAX: usize = 2;
/// Candidates asked of YAKE before filtering.
const KEYWORD_CANDIDATES: usize = 30;
/// The last resort padding, in order, after the intent's name.
pub const PAD_TAGS: [&str; 2] = ["inbox", "quick-thought"];

/// Words that never make a tag on their own: dates, times, and the words the intent
/// and priority rules read.
const EXTRA_STOP_WORDS: &[&str] = &[
    "today",
    "tonight",
    "tomorrow",
    "tmrw",
    "yesterday",
    "morning",
    "afternoon",
    "evening",
    "noon",
    "midnight",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "week",
    "weeks",
    "day",
    "days",
    "month",
    "months",
    "hour",
    "hours",
    "minute",
    "minutes",
    "next",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "todo",
    "to-do",
    "task",
    "idea",
    "note",
    "remember",
    "forget",
    "don't",
    "dont",
    "need",
    "urgent",
    "urgently",
    "asap",
    "important",
    "priority",
    "maybe",
    "pm",
    "am",
    "buy",
    "call",
    "get",
    "make",
    "send",
    "pick",
    "check",
    "finish",
    "fix",
    "write",
    "pay",
    "book",
    "ask",
];

fn stop_words() -> &'static StopWords {
    static STOP_WORDS: OnceLock<StopWords> = OnceLock::new();
    STOP_WORDS.get_or_init(|| {
        let mut set: HashSet<String> = StopWords::predefined("en")
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        set.extend(EXTRA_STOP_WORDS.iter().map(|w| (*w).to_string()));
        StopWords::custom(set)
    })
}

fn is_stop_word(word: &str) -> bool {
    stop_words().contains(word)
}

/// Whether a word is a number, a time or a date ("3", "3pm", "15:00", "2026-12-01").
fn is_numberish(word: &str) -> bool {
    word.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// 3–5 lower-cased, valid, distinct tags for `text` (see the module docs).
pub fn tags(text: &str, intent: EntityType) -> Vec<String> {
    let input: String = text.chars().take(KEYWORD_INPUT_CHARS_MAX).collect();
    let mut chosen: Vec<String> = Vec::new();

    for phrase in keywords(&input) {
        if chosen.len() == ANALYSIS_TAGS_MAX {
            break;
        }
        consider(&mut chosen, &phrase, false);
    }
    if chosen.len() < ANALYSIS_TAGS_MIN {
        for word in input.split_whitespace() {
            if chosen.len() == ANALYSIS_TAGS_MIN {
                break;
            }
            let word = word
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            consider(&mut chosen, &word, true);
        }
    }
    let pads = std::iter::once(intent.as_str()).chain(PAD_TAGS);
    for pad in pads {
        if chosen.len() >= ANALYSIS_TAGS_MIN {
            break;
        }
        if !chosen.iter().any(|t| t == pad) {
            chosen.push(pad.to_string());
        }
    }
    chosen
}

/// Adds `phrase` when it is a good tag that brings a new word.
fn consider(chosen: &mut Vec<String>, phrase: &str, single_word: bool) {
    let phrase = phrase.trim();
    let words: Vec<&str> = phrase.split_whitespace().collect();
    if words.is_empty() || words.len() > KEYWORD_WORDS_MAX || (single_word && words.len() != 1) {
        return;
    }
    if words
        .iter()
        .any(|w| is_stop_word(w) || is_numberish(w) || w.chars().count() < 3)
    {
        return;
    }
    if !words.iter().any(|w| w.chars().any(char::is_alphabetic)) {
        return;
    }
    let Ok(tag) = normalize_tag(phrase) else {
        return;
    };
    let tag = tag.to_lowercase();
    if tag.chars().count() > LOCAL_TAG_CHARS_MAX || tag.starts_with('#') {
        return;
    }
    let known: HashSet<&str> = chosen.iter().flat_map(|t| t.split(' ')).collect();
    if words.iter().all(|w| known.contains(w)) {
        return;
    }
    chosen.push(tag);
}

/// YAKE's key phrases, best first. YAKE sorts scores with `partial_cmp().unwrap()`,
/// so a NaN score on odd input would panic inside it; the panic is contained here and
/// treated as "no key phrases" (the padding still yields valid tags).
fn keywords(text: &str) -> Vec<String> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let config = Config {
        ngrams: KEYWORD_WORDS_MAX,
        ..Config::default()
    };
    let text = text.to_string();
    let run = move || yake_rust::get_n_best(KEYWORD_CANDIDATES, &text, stop_words(), &config);
    match std::panic::catch_unwind(run) {
        Ok(items) => items.into_iter().map(|item| item.keyword).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_thoughts_are_padded_honestly() {
        assert_eq!(tags("Milk", EntityType::Note), ["milk", "note", "inbox"]);
        assert_eq!(
            tags("", EntityType::Note),
            ["note", "inbox", "quick-thought"]
        );
        assert_eq!(
            tags("Buy milk tomorrow at 3pm", EntityType::Task),
            ["milk", "task", "inbox"]
        );
    }

    #[test]
    fn key_phrases_of_a_longer_note() {
        let text = "Postgres migration plan: move the knowledge graph to Postgres, \
                    keep object storage on S3. The Postgres migration needs a dry run.";
        let t = tags(text, EntityType::Note);
        assert!((3..=5).contains(&t.len()), "{t:?}");
        assert!(t.iter().any(|x| x.contains("postgres")), "{t:?}");
        assert!(t.iter().all(|x| x == &x.to_lowercase()));
    }
}
