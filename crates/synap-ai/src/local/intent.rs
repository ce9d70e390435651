//! What kind of thought this is (task, event, idea, note) and how urgent a task is,
//! from English phrasing. The rules, first match wins:
//!
//! 1. an explicit label: "idea:" → idea; "todo", "to-do", "task:", "[ ]" → task;
//!    "event:", "meeting:", "appointment:" → event;
//! 2. idea phrasing: "what if", "maybe we could", "how about", "it would be nice" → idea;
//! 3. a meeting word ("meeting", "appointment", "lunch with", …) together with a day
//!    or time → event;
//! 4. to-do phrasing ("remember to", "don't forget", "need to"), a leading imperative
//!    verb ("Buy milk", "call Anna"), or a due date → task;
//! 5. anything else → note.

use synap_domain::EntityType;
use synap_domain::limits::TASK_PRIORITY_MAX;

/// Verbs that, as the first word, make a thought a to-do ("Buy milk", "call Anna").
const IMPERATIVE_VERBS: &[&str] = &[
    "buy", "call", "email", "mail", "send", "write", "fix", "finish", "pay", "book", "schedule",
    "pick", "clean", "check", "review", "submit", "renew", "cancel", "ask", "tell", "remind",
    "reply", "respond", "prepare", "update", "install", "upgrade", "get", "bring", "fill", "print",
    "sign", "ship", "deploy", "merge", "draft", "organize", "organise", "contact", "phone",
    "visit", "wash", "feed", "repair", "replace", "publish", "register", "apply", "invite",
    "confirm", "collect", "make", "find", "research", "refactor",
];

/// Phrases anywhere in a thought that make it a to-do.
const TASK_PHRASES: &[&str] = &[
    "remember to",
    "remind me to",
    "don't forget",
    "dont forget",
    "do not forget",
    "need to",
    "needs to",
    "have to",
    "has to",
    "must ",
    "gotta ",
];

/// Phrases that make a thought an idea.
const IDEA_PHRASES: &[&str] = &[
    "what if",
    "maybe we could",
    "maybe i could",
    "maybe we should",
    "we could",
    "how about",
    "it would be nice",
    "it would be cool",
    "wouldn't it be",
    "idea for",
    "brainstorm",
];

/// Words that make a thought with a day or time an event.
const EVENT_WORDS: &[&str] = &[
    "meeting",
    "meet",
    "appointment",
    "appt",
    "call with",
    "lunch with",
    "dinner with",
    "breakfast with",
    "coffee with",
    "drinks with",
    "conference",
    "interview",
    "standup",
    "stand-up",
    "sync",
    "webinar",
    "workshop",
    "party",
    "wedding",
    "birthday",
    "concert",
    "flight",
    "dentist",
    "doctor",
    "session",
    "class",
    "event",
];

/// Priority words: (phrase, priority).
const PRIORITY_WORDS: &[(&str, u8)] = &[
    ("urgent", TASK_PRIORITY_MAX),
    ("urgently", TASK_PRIORITY_MAX),
    ("asap", TASK_PRIORITY_MAX),
    ("immediately", TASK_PRIORITY_MAX),
    ("critical", TASK_PRIORITY_MAX),
    ("high priority", 2),
    ("important", 2),
    ("low priority", 0),
];

/// The intent of a thought. `text` is the original text, `words` its lower-cased
/// words (see `when::words`), `has_when` whether a day or time was found.
pub fn intent(text: &str, words: &[String], has_when: bool) -> EntityType {
    let lower = normalized(text);
    let first_line = lower.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let head = first_line
        .trim_start_matches(|c: char| {
            c == '-' || c == '*' || c == '+' || c == '#' || c.is_whitespace()
        })
        .trim_start();

    // 1. Explicit labels.
    if head.starts_with("idea:") || head.starts_with("idea -") || head.starts_with("idea!") {
        return EntityType::Idea;
    }
    if head.starts_with("[ ]")
        || head.starts_with("task:")
        || words.iter().any(|w| w == "todo" || w == "to-do")
    {
        return EntityType::Task;
    }
    if ["event:", "meeting:", "appointment:"]
        .iter()
        .any(|p| head.starts_with(p))
    {
        return EntityType::Event;
    }
    // 2. Idea phrasing.
    if IDEA_PHRASES.iter().any(|p| contains_phrase(&lower, p)) {
        return EntityType::Idea;
    }
    // 3. A meeting at a time.
    if has_when && EVENT_WORDS.iter().any(|p| contains_phrase(&lower, p)) {
        return EntityType::Event;
    }
    // 4. To-do phrasing, an imperative, a due date.
    let first_word = head
        .split_whitespace()
        .next()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .unwrap_or("");
    if has_when
        || IMPERATIVE_VERBS.contains(&first_word)
        || TASK_PHRASES.iter().any(|p| contains_phrase(&lower, p))
    {
        return EntityType::Task;
    }
    EntityType::Note
}

/// A task's priority from "urgent", "asap", "important", "low priority" and "!"
/// markers: "!!!" (or more) and the urgent words give the highest priority, "!!"
/// and "important" 2, a single "!" 1. `None` when nothing says so.
pub fn priority(text: &str) -> Option<u8> {
    let lower = normalized(text);
    let mut best: Option<u8> = None;
    let mut raise = |p: u8| best = Some(best.map_or(p, |b| b.max(p)));
    for (phrase, p) in PRIORITY_WORDS {
        if contains_phrase(&lower, phrase) {
            raise(*p);
        }
    }
    let longest_bang_run = lower
        .split(|c: char| c != '!')
        .map(str::len)
        .max()
        .unwrap_or(0);
    match longest_bang_run {
        0 => {}
        1 => raise(1),
        2 => raise(2),
        _ => raise(TASK_PRIORITY_MAX),
    }
    best.map(|p| p.min(TASK_PRIORITY_MAX))
}

/// Lower-cased, with typographic apostrophes made plain.
fn normalized(text: &str) -> String {
    text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
}

/// Whether `phrase` occurs in `haystack` starting and ending at word boundaries
/// ("sync" in "sync with Bob", not in "async").
fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    let phrase_trimmed = phrase.trim_end();
    haystack.match_indices(phrase_trimmed).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + phrase_trimmed.len()..].chars().next();
        before.is_none_or(|c| !c.is_alphanumeric()) && after.is_none_or(|c| !c.is_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_match_whole_words_only() {
        assert!(contains_phrase("sync with bob", "sync"));
        assert!(!contains_phrase("async rust", "sync"));
        assert!(contains_phrase("we must go", "must "));
        assert!(!contains_phrase("mustard", "must "));
    }

    #[test]
    fn priorities() {
        assert_eq!(priority("Pay rent"), None);
        assert_eq!(priority("Pay rent!"), Some(1));
        assert_eq!(priority("Pay rent!!"), Some(2));
        assert_eq!(priority("Pay rent!!!!"), Some(3));
        assert_eq!(priority("URGENT: pay rent"), Some(3));
        assert_eq!(priority("pay rent asap"), Some(3));
        assert_eq!(priority("important: pay rent"), Some(2));
        assert_eq!(priority("low priority: tidy desk"), Some(0));
    }
}
