//! The `local` analyzer, the default provider: offline, deterministic, fast (no model,
//! no network). Same text, same `now`, same zone → same analysis.
//!
//! - title: [`title`] (first sentence of the first line, labels dropped);
//! - tags: [`tags`] (YAKE key phrases, padded honestly to three);
//! - intent and priority: [`intent`] (English phrasing rules);
//! - due date: [`when`] (relative and absolute dates and times in the user's zone).
//!   A task due on a day without a time is due at [`TASK_DUE_TIME_DEFAULT`] (the end
//!   of that day, so it is not overdue while the day lasts); an event on a day without
//!   a time starts at [`EVENT_TIME_DEFAULT`].
//!
//! It reads at most [`LOCAL_INPUT_CHARS_MAX`] characters and never fails: every text,
//! however odd, yields a valid [`Analysis`] (a property test checks this).

pub mod intent;
pub mod tags;
pub mod title;
pub mod when;

use crate::analysis::{Analysis, AnalysisRequest, Analyzer};
use crate::error::AiError;
use async_trait::async_trait;
use jiff::civil::Time;
use synap_domain::EntityType;

/// The provider name in event metadata.
pub const LOCAL_PROVIDER: &str = "local";
/// The "model" in event metadata: the heuristics' version, raised when they change
/// in a way a user would notice.
pub const LOCAL_MODEL: &str = "heuristics-v1";
/// Characters of a thought the local analyzer reads.
pub const LOCAL_INPUT_CHARS_MAX: usize = 100_000;
/// A task due on a day without a time is due at the end of that day.
pub const TASK_DUE_TIME_DEFAULT: Time = Time::constant(23, 59, 0, 0);
/// An event on a day without a time starts in the morning.
pub const EVENT_TIME_DEFAULT: Time = Time::constant(9, 0, 0, 0);

/// The offline analyzer. Stateless; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct LocalAnalyzer;

impl LocalAnalyzer {
    pub fn new() -> Self {
        LocalAnalyzer
    }

    /// The analysis, synchronously (the async trait method only wraps this).
    pub fn analyze_now(&self, request: &AnalysisRequest) -> Analysis {
        let text: String = request.text.chars().take(LOCAL_INPUT_CHARS_MAX).collect();
        let words = when::words(&text);
        let found = when::parse(&words, request.now, &request.time_zone);
        let intent = intent::intent(&text, &words, !found.is_empty());
        let default_time = match intent {
            EntityType::Event => EVENT_TIME_DEFAULT,
            _ => TASK_DUE_TIME_DEFAULT,
        };
        let due_at = match intent {
            EntityType::Task | EntityType::Event => {
                found.resolve(request.now, &request.time_zone, default_time)
            }
            _ => None,
        };
        let priority = match intent {
            EntityType::Task => intent::priority(&text),
            _ => None,
        };
        let analysis = Analysis {
            title: title::title(&text),
            tags: tags::tags(&text, intent),
            intent,
            due_at,
            priority,
        };
        // Every part above keeps the invariants; validating anyway turns a future bug
        // into a safe fallback rather than an invalid event.
        analysis.validate().unwrap_or_else(|_| fallback())
    }
}

/// A minimal valid analysis, used only if the heuristics ever produced an invalid one.
fn fallback() -> Analysis {
    Analysis {
        title: synap_domain::limits::UNTITLED.to_string(),
        tags: vec![
            "note".into(),
            tags::PAD_TAGS[0].into(),
            tags::PAD_TAGS[1].into(),
        ],
        intent: EntityType::Note,
        due_at: None,
        priority: None,
    }
}

#[async_trait]
impl Analyzer for LocalAnalyzer {
    fn provider(&self) -> &'static str {
        LOCAL_PROVIDER
    }
    fn model(&self) -> &str {
        LOCAL_MODEL
    }
    async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis, AiError> {
        Ok(self.analyze_now(request))
    }
}
