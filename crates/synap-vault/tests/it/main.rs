//! Import and export of Markdown vaults against real stores. The tests are generic
//! over `StoreFactory` (the conformance suite's) and run on SQLite and PostgreSQL.

mod backends;
mod vault;

macro_rules! vault_tests {
    ($factory:ty; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            use synap_store::conformance::{StoreFactory, bounded_test};
            if !<$factory as StoreFactory>::available() {
                eprintln!("skipped: the backend is not available here");
                return;
            }
            bounded_test(crate::vault::$name::<$factory>()).await;
        }
    )*};
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            vault_tests!(crate::backends::Sqlite; $($name),*);
        }
        mod postgres {
            vault_tests!(crate::backends::Postgres; $($name),*);
        }
    };
}

on_both_backends!(
    a_realistic_vault_maps_to_entities_links_and_a_report,
    importing_the_same_vault_again_appends_nothing,
    an_edited_vault_appends_only_its_changes,
    import_export_import_gives_the_same_state,
    export_at_an_earlier_time_matches_the_state_then,
    a_zip_imports_like_its_folder,
);
