//! `synap search`: full-text search, accents folded, and what the semantic modes
//! say without a model (with one: `semantic.rs`).

use crate::support::{Synap, ids, items};

#[test]
fn search_finds_notes_by_words_in_content_and_title() {
    let synap = Synap::new();
    let espresso = synap.add_note("Espresso needs finely ground beans", &["--title", "Coffee"]);
    synap.add_note("Tea is steeped", &[]);

    assert_eq!(ids(&synap.json(&["search", "ground"])), [espresso.as_str()]);
    assert_eq!(
        ids(&synap.json(&["search", "coffee"])),
        [espresso.as_str()],
        "titles are searched too"
    );

    let found = synap.json(&["search", "espresso"]);
    let hit = &items(&found)[0];
    assert!(
        hit["snippet"]
            .as_str()
            .unwrap_or_default()
            .contains("<mark>"),
        "{hit}"
    );
    assert!(hit["score"].is_number());

    let human = synap.ok(&["search", "espresso"]);
    assert!(
        human.contains(&espresso) && human.contains("Coffee"),
        "{human}"
    );
    assert!(
        !human.contains("<mark>"),
        "no markup off a terminal: {human}"
    );
}

#[test]
fn cafe_finds_cafe_with_an_accent() {
    let synap = Synap::new();
    let id = synap.add_note("Meet at the café on Friday", &[]);
    assert_eq!(ids(&synap.json(&["search", "cafe"])), [id.as_str()]);
    assert_eq!(ids(&synap.json(&["search", "CAFÉ"])), [id.as_str()]);
}

#[test]
fn search_misses_deleted_notes_and_reports_no_matches() {
    let synap = Synap::new();
    let id = synap.add_note("ephemeral words", &[]);
    synap.ok(&["rm", &id]);
    assert!(items(&synap.json(&["search", "ephemeral"])).is_empty());
    assert_eq!(synap.ok(&["search", "ephemeral"]), "no matches");
}

#[test]
fn semantic_and_hybrid_search_without_a_model_say_how_to_configure_one() {
    let synap = Synap::new();
    synap.add_note("a small cat", &[]);
    for mode in ["semantic", "hybrid"] {
        let message = synap.fails(&["search", "anything", "--mode", mode], 1);
        assert!(
            message.starts_with(
                "semantic and hybrid search need an embedding model; set SYNAP_EMBEDDING_PROVIDER"
            ),
            "{message}"
        );
    }
    assert_eq!(
        ids(&synap.json(&["search", "cat"])).len(),
        1,
        "full-text still works"
    );
}
