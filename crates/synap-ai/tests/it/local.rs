//! The local analyzer: a table of thoughts with a fixed `now` and zone, DST cases,
//! and properties over arbitrary text.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use synap_ai::local::LOCAL_MODEL;
use synap_ai::{Analysis, AnalysisRequest, Analyzer, LocalAnalyzer};
use synap_domain::EntityType::{self, Event, Idea, Note, Task};

/// Saturday 2026-11-28, 10:00 in Berlin (CET, +01:00).
const NOW: &str = "2026-11-28T09:00:00Z";
const ZONE: &str = "Europe/Berlin";

fn analyze_at(text: &str, now: &str, zone: &str) -> Analysis {
    LocalAnalyzer::new().analyze_now(&AnalysisRequest {
        text: text.into(),
        now: now.parse().unwrap(),
        time_zone: TimeZone::get(zone).unwrap(),
    })
}

fn local(ts: &str) -> Timestamp {
    // Written with their offset, so the expectations say the wall-clock time.
    ts.parse().unwrap()
}

struct Case {
    text: &'static str,
    intent: EntityType,
    due: Option<&'static str>,
    priority: Option<u8>,
}

const fn case(
    text: &'static str,
    intent: EntityType,
    due: Option<&'static str>,
    priority: Option<u8>,
) -> Case {
    Case {
        text,
        intent,
        due,
        priority,
    }
}

const CASES: &[Case] = &[
    case(
        "Buy milk tomorrow at 3pm",
        Task,
        Some("2026-11-29T15:00:00+01:00"),
        None,
    ),
    case("Buy milk", Task, None, None),
    case("call Anna", Task, None, None),
    case("TODO: renew passport", Task, None, None),
    case(
        "remember to water the plants tonight",
        Task,
        Some("2026-11-28T20:00:00+01:00"),
        None,
    ),
    case(
        "tonight at 9 take out the bins",
        Task,
        Some("2026-11-28T21:00:00+01:00"),
        None,
    ),
    case(
        "Pay rent in 3 days",
        Task,
        Some("2026-12-01T23:59:00+01:00"),
        None,
    ),
    case(
        "Submit the report at 15:00",
        Task,
        Some("2026-11-28T15:00:00+01:00"),
        None,
    ),
    // 09:00 has passed at 10:00, so the next 09:00.
    case(
        "Send the invoice at 9",
        Task,
        Some("2026-11-29T09:00:00+01:00"),
        None,
    ),
    // A bare small hour is the afternoon.
    case(
        "call mom at 5",
        Task,
        Some("2026-11-28T17:00:00+01:00"),
        None,
    ),
    case(
        "Renew passport by 2026-12-01",
        Task,
        Some("2026-12-01T23:59:00+01:00"),
        None,
    ),
    case(
        "Get a gift before Dec 3",
        Task,
        Some("2026-12-03T23:59:00+01:00"),
        None,
    ),
    case(
        "pick up the parcel on friday",
        Task,
        Some("2026-12-04T23:59:00+01:00"),
        None,
    ),
    // Saturday today: "saturday" is today, "next saturday" is a week away.
    case(
        "clean the garage saturday",
        Task,
        Some("2026-11-28T23:59:00+01:00"),
        None,
    ),
    case(
        "clean the garage next saturday",
        Task,
        Some("2026-12-05T23:59:00+01:00"),
        None,
    ),
    case(
        "check the oven in 2 hours",
        Task,
        Some("2026-11-28T12:00:00+01:00"),
        None,
    ),
    case("Finish the slides asap!", Task, None, Some(3)),
    case("Fix the leaking tap!", Task, None, Some(1)),
    case(
        "URGENT: pay the electricity bill tomorrow",
        Task,
        Some("2026-11-29T23:59:00+01:00"),
        Some(3),
    ),
    case("don't forget the keys!!", Task, None, Some(2)),
    case(
        "Meeting with Bob on friday at 10am",
        Event,
        Some("2026-12-04T10:00:00+01:00"),
        None,
    ),
    case(
        "Dentist appointment next monday at 9",
        Event,
        Some("2026-11-30T09:00:00+01:00"),
        None,
    ),
    case(
        "Lunch with Sara tomorrow at noon",
        Event,
        Some("2026-11-29T12:00:00+01:00"),
        None,
    ),
    case(
        "Conference talk on March 3rd",
        Event,
        Some("2027-03-03T09:00:00+01:00"),
        None,
    ),
    case(
        "Team sync 2026-12-02 at 14:30",
        Event,
        Some("2026-12-02T14:30:00+01:00"),
        None,
    ),
    case("idea: a dark mode for the reader", Idea, None, None),
    case(
        "What if we cached the embeddings per chunk?",
        Idea,
        None,
        None,
    ),
    case("maybe we could hold the retro outside", Idea, None, None),
    case("The sunset over the lake was beautiful", Note, None, None),
    case(
        "Meeting notes: we agreed on the new schema",
        Note,
        None,
        None,
    ),
    case("Milk", Note, None, None),
    case("", Note, None, None),
    case("a small cat sat on the mat", Note, None, None),
];

#[test]
fn the_table() {
    let mut failures = Vec::new();
    for c in CASES {
        let a = analyze_at(c.text, NOW, ZONE);
        let due = c.due.map(local);
        if a.intent != c.intent || a.due_at != due || a.priority != c.priority {
            failures.push(format!(
                "{:?}: got {} due {:?} priority {:?}; want {} due {:?} priority {:?}",
                c.text, a.intent, a.due_at, a.priority, c.intent, due, c.priority
            ));
        }
        assert!(
            (3..=5).contains(&a.tags.len()),
            "{:?}: {:?}",
            c.text,
            a.tags
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn titles_and_tags_of_typical_thoughts() {
    let a = analyze_at("Buy milk tomorrow at 3pm", NOW, ZONE);
    assert_eq!(a.title, "Buy milk tomorrow at 3pm");
    assert!(a.tags.contains(&"milk".to_string()), "{:?}", a.tags);
    assert!(
        !a.tags
            .iter()
            .any(|t| t.contains("tomorrow") || t.contains("3pm")),
        "{:?}",
        a.tags
    );

    let a = analyze_at("call Anna", NOW, ZONE);
    assert_eq!(a.title, "Call Anna");
    assert_eq!(a.tags[0], "anna");

    // A one-word thought: its word, then the intent, then "inbox" — nothing invented.
    assert_eq!(
        analyze_at("Milk", NOW, ZONE).tags,
        ["milk", "note", "inbox"]
    );
    let empty = analyze_at("", NOW, ZONE);
    assert_eq!(empty.title, "Untitled");
    assert_eq!(empty.tags, ["note", "inbox", "quick-thought"]);

    let long = "Postgres migration plan for the knowledge graph. We move the knowledge graph \
                from SQLite to Postgres next quarter, keep object storage on S3, and test \
                the Postgres migration on a copy of production first.";
    let a = analyze_at(long, NOW, ZONE);
    assert_eq!(a.title, "Postgres migration plan for the knowledge graph");
    assert!(a.tags.len() >= 3, "{:?}", a.tags);
    assert!(
        a.tags.iter().any(|t| t.contains("postgres")),
        "{:?}",
        a.tags
    );
    assert!(
        a.tags.iter().any(|t| t.contains("knowledge graph")),
        "{:?}",
        a.tags
    );
}

#[test]
fn dates_follow_the_wall_clock_across_dst() {
    // Friday 2026-10-23 10:00 CEST (+02:00); clocks go back on Sunday 25 October.
    let now = "2026-10-23T08:00:00Z";
    let a = analyze_at("Call the bank on monday at 9", now, ZONE);
    assert_eq!(a.due_at, Some(local("2026-10-26T09:00:00+01:00")));
    let a = analyze_at("Water the plants in 3 days at 10:00", now, ZONE);
    assert_eq!(a.due_at, Some(local("2026-10-26T10:00:00+01:00")));
    // "in 2 hours" is elapsed time, not wall-clock time: 01:30 CEST + 2h = 02:30 CET.
    let a = analyze_at("check the backup in 2 hours", "2026-10-24T23:30:00Z", ZONE);
    assert_eq!(a.due_at, Some(local("2026-10-25T02:30:00+01:00")));

    // Saturday 2026-03-28; 02:30 on Sunday does not exist in Berlin: it moves forward.
    let a = analyze_at(
        "Check the heating tomorrow at 2:30am",
        "2026-03-28T11:00:00Z",
        ZONE,
    );
    assert_eq!(a.due_at, Some(local("2026-03-29T03:30:00+02:00")));

    // The same words in another zone mean another instant.
    let ny = analyze_at("Buy milk tomorrow at 3pm", NOW, "America/New_York");
    assert_eq!(ny.due_at, Some(local("2026-11-29T15:00:00-05:00")));
}

#[tokio::test]
async fn the_trait_reports_provider_and_model() {
    let analyzer: &dyn Analyzer = &LocalAnalyzer::new();
    assert_eq!(analyzer.provider(), "local");
    assert_eq!(analyzer.model(), LOCAL_MODEL);
    let a = analyzer
        .analyze(&AnalysisRequest {
            text: "call Anna".into(),
            now: NOW.parse().unwrap(),
            time_zone: TimeZone::get(ZONE).unwrap(),
        })
        .await
        .unwrap();
    assert_eq!(a.intent, Task);
}

#[test]
fn it_is_deterministic() {
    let text = "Plan the offsite: venue, budget, agenda. Meeting with Kim on friday at 3pm!";
    assert_eq!(analyze_at(text, NOW, ZONE), analyze_at(text, NOW, ZONE));
}

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
];

/// Text that mixes arbitrary characters with the words the rules look for.
fn thought() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        "\\PC{0,12}",
        Just("tomorrow".to_string()),
        Just("at".to_string()),
        Just("in".to_string()),
        Just("99999999999".to_string()),
        Just("3pm".to_string()),
        Just("12:60".to_string()),
        Just("dec".to_string()),
        Just("31st".to_string()),
        Just("9999-12-31".to_string()),
        Just("-9999-01-01".to_string()),
        Just("next".to_string()),
        Just("friday".to_string()),
        Just("todo".to_string()),
        Just("idea:".to_string()),
        Just("!!!".to_string()),
        Just("\n".to_string()),
        Just("#".to_string()),
        Just(",".to_string()),
        Just("İİİ".to_string()),
    ];
    prop::collection::vec(word, 0..40).prop_map(|words| words.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_panics_and_always_returns_a_valid_analysis(
        text in prop_oneof![thought(), "\\PC{0,400}", any::<String>()],
        seconds in -1_000_000_000i64..4_000_000_000i64,
        zone in 0usize..ZONES.len(),
    ) {
        let now = Timestamp::from_second(seconds).unwrap();
        let a = LocalAnalyzer::new().analyze_now(&AnalysisRequest {
            text,
            now,
            time_zone: TimeZone::get(ZONES[zone]).unwrap(),
        });
        prop_assert_eq!(a.clone().validate(), Ok(a.clone()));
        prop_assert!((3..=5).contains(&a.tags.len()));
        prop_assert!(a.title.chars().count() <= synap_domain::limits::DERIVED_TITLE_LINE_CHARS_MAX);
        for tag in &a.tags {
            prop_assert!(synap_domain::tags::normalize_tag(tag).is_ok());
            prop_assert_eq!(tag, &tag.to_lowercase());
        }
        if a.intent != EntityType::Task {
            prop_assert_eq!(a.priority, None);
        }
    }
}

#[test]
fn extreme_dates_do_not_overflow() {
    for now in [Timestamp::MAX, Timestamp::MIN] {
        for text in [
            "pay on 9999-12-31 at 23:59 in 999 months",
            "due dec 31st 9999",
            "in 999 weeks",
            "at 23:59 tomorrow",
            "in 2 hours",
        ] {
            for zone in ["Pacific/Kiritimati", "Pacific/Niue"] {
                let a = LocalAnalyzer::new().analyze_now(&AnalysisRequest {
                    text: text.into(),
                    now,
                    time_zone: TimeZone::get(zone).unwrap(),
                });
                assert!(a.clone().validate().is_ok(), "{text}");
            }
        }
    }
}
