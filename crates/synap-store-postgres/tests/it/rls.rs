//! Row-level security is a second wall behind the store's own scoping: a query
//! that forgets its `WHERE user_id = …`, run in a transaction scoped to one user
//! as the role the store works as, sees nothing of any other user — and cannot
//! write rows for them either.

use synap_domain::command::{CreateEntity, EntityCommand};
use synap_domain::event::EventMetadata;
use synap_domain::ids::{EntityId, RelationId};
use synap_domain::relation::RelationKind;
use synap_store::{Accounts, CommandRequest, EventStore, NewUser, Scope, Target};
use synap_store_postgres::raw::Conn;
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};
use uuid::Uuid;

/// The user-owned tables and the column naming their user.
const USER_TABLES: &[(&str, &str)] = &[
    ("events", "user_id"),
    ("contents", "user_id"),
    ("command_outcomes", "user_id"),
    ("entities", "user_id"),
    ("tags", "user_id"),
    ("entity_tags", "user_id"),
    ("relations", "user_id"),
    ("search", "user_id"),
    ("users", "id"),
];

async fn note(store: &PostgresStore, scope: Scope, body: &str, tag: &str) -> EntityId {
    let id = EntityId(Uuid::now_v7());
    let mut create = CreateEntity::note(body);
    create.tags = vec![tag.into()];
    store
        .execute(CommandRequest::new(
            scope,
            Target::Entity {
                id,
                command: EntityCommand::Create(create),
            },
            EventMetadata::default(),
        ))
        .await
        .expect("create a note");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unscoped_query_in_a_users_transaction_sees_only_that_user() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database();
    let store = PostgresStore::open(PostgresConfig::new(url.clone()))
        .await
        .expect("open");
    let mut scopes = Vec::new();
    for email in ["ada@example.com", "bob@example.com"] {
        let user = store
            .create_user(NewUser {
                email: email.into(),
                role: "member".into(),
                password_hash: None,
                display_name: None,
            })
            .await
            .expect("create a user");
        let scope = Scope::user(user.id);
        let a = note(
            &store,
            scope,
            &format!("{email} first [[second of {email}]]"),
            email,
        )
        .await;
        let b = note(&store, scope, &format!("second of {email}"), email).await;
        store
            .execute(CommandRequest::new(
                scope,
                Target::Link {
                    id: RelationId(Uuid::now_v7()),
                    source_id: a,
                    target_id: b,
                    kind: RelationKind::parse("related").expect("a kind"),
                },
                EventMetadata::default(),
            ))
            .await
            .expect("link");
        scopes.push(scope);
    }

    tokio::task::spawn_blocking(move || unscoped_queries_see_one_user(&url, &scopes))
        .await
        .expect("the raw queries");
}

/// Runs the deliberately unscoped queries as the store's role, once per user.
fn unscoped_queries_see_one_user(url: &str, scopes: &[Scope]) {
    let mut conn = Conn::connect(url, true).expect("connect as the store's role");
    let role = conn
        .query_one(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .expect("role");
    assert!(
        !role.get::<_, bool>(0),
        "the store's role must not bypass row-level security"
    );

    for scope in scopes {
        let me = scope.user_id.0;
        conn.begin_as(&me).expect("begin as the user");
        for (table, column) in USER_TABLES {
            // Deliberately unscoped: no WHERE clause at all.
            let rows = conn
                .query(&format!("SELECT {column} FROM {table}"), &[])
                .expect("an unscoped query");
            assert!(!rows.is_empty(), "{table} holds rows of this user");
            for row in rows {
                assert_eq!(
                    row.get::<_, Uuid>(0),
                    me,
                    "{table} leaked another user's row"
                );
            }
        }
        let other = scopes
            .iter()
            .find(|s| *s != scope)
            .expect("another user")
            .user_id
            .0;
        let foreign_write = conn.execute(
            "INSERT INTO tags (user_id, key, name, count) VALUES ($1, 'planted', 'planted', 0)",
            &[&other],
        );
        assert!(
            foreign_write.is_err(),
            "a row for another user was written from this user's transaction"
        );
        conn.rollback().expect("rollback");
    }
}
