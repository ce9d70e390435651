//! Every limit the domain enforces, named once. Adapters import these instead of
//! repeating numbers, so a limit changes in one place.

/// Longest title, in characters (Unicode scalar values).
pub const TITLE_CHARS_MAX: usize = 300;
/// A derived title uses the first line when it has 1..=this many characters...
pub const DERIVED_TITLE_LINE_CHARS_MAX: usize = 100;
/// ...otherwise the first this-many characters followed by "…".
pub const DERIVED_TITLE_TRUNCATED_CHARS: usize = 50;
/// The title given to an entity with neither a title nor content.
pub const UNTITLED: &str = "Untitled";
/// Length of the plain-text preview kept on each entity, in characters.
pub const PREVIEW_CHARS: usize = 200;
/// Longest tag, in characters after trimming.
pub const TAG_CHARS_MAX: usize = 64;
/// Most tags on one entity.
pub const TAGS_PER_ENTITY_MAX: usize = 64;
/// Largest metadata object, serialized as compact JSON, in bytes.
pub const METADATA_BYTES_MAX: usize = 16 * 1024;
/// Longest metadata key, in characters.
pub const METADATA_KEY_CHARS_MAX: usize = 128;
/// Largest content body, in bytes.
pub const CONTENT_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Highest task priority (priorities are 0..=this).
pub const TASK_PRIORITY_MAX: u8 = 3;
/// Longest relation kind, in characters.
pub const RELATION_KIND_CHARS_MAX: usize = 32;
/// Deepest graph traversal a caller may ask for.
pub const GRAPH_DEPTH_MAX: u32 = 5;
/// Most nodes one graph traversal returns.
pub const GRAPH_NODES_MAX: usize = 1_000;
/// Most wikilinks of one content body that become relations.
pub const WIKILINKS_PER_ENTITY_MAX: usize = 256;
/// Most changes in one edit command.
pub const CHANGES_PER_COMMAND_MAX: usize = 256;
/// Default and largest page for every listing.
pub const PAGE_LIMIT_DEFAULT: u32 = 50;
pub const PAGE_LIMIT_MAX: u32 = 500;
/// Longest search query, in characters.
pub const SEARCH_QUERY_CHARS_MAX: usize = 1_000;
/// Characters of context a search snippet shows around the first match.
pub const SNIPPET_CHARS: usize = 160;
/// Most attachments on one entity at a time.
pub const ATTACHMENTS_PER_ENTITY_MAX: usize = 1_000;
/// Longest attachment file name, in characters.
pub const ATTACHMENT_FILENAME_CHARS_MAX: usize = 255;
/// Longest media type (`type/subtype`), in characters.
pub const MEDIA_TYPE_CHARS_MAX: usize = 255;
/// Longest client-chosen type of a logged event (`events.log`), in characters.
pub const LOGGED_EVENT_TYPE_CHARS_MAX: usize = 100;
/// Largest data object of a logged event, serialized as compact JSON, in bytes.
pub const LOGGED_EVENT_BYTES_MAX: usize = 16 * 1024;
