//! The object store against a real S3-compatible server (`s3s` over `s3s-fs`,
//! in-process on loopback, SigV4): large bodies through multipart uploads,
//! attachments streamed in and out, verify noticing an object deleted behind the
//! store's back, wrong credentials refused when the store opens — and the bytes
//! stored per attachment byte.

use futures_util::StreamExt;
use std::sync::Arc;
use synap_domain::command::{CreateEntity, EntityCommand};
use synap_domain::event::EventMetadata;
use synap_domain::ids::{ContentHash, EntityId};
use synap_store::attachments::{self, Upload};
use synap_store::objects::{INLINE_BODY_BYTES_MAX_DEFAULT, ObjectError, Objects, content_key};
use synap_store::s3_testing::S3TestServer;
use synap_store::{Accounts, CommandRequest, EventStore, Maintenance, ReadModel, Scope, Target};
use synap_store_sqlite::{SqliteConfig, SqliteStore};

/// Over S3's 5 MiB smallest part, so the upload is multipart.
const LARGE_BYTES: usize = 6 * 1024 * 1024 + 123;

struct Fixture {
    server: S3TestServer,
    objects: Arc<Objects>,
    store: SqliteStore,
    scope: Scope,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let server = S3TestServer::start().expect("start the S3 test server");
    let config = server.config();
    let objects =
        tokio::task::spawn_blocking(move || Objects::open(&config, INLINE_BODY_BYTES_MAX_DEFAULT))
            .await
            .unwrap()
            .expect("open the S3 object store");
    let objects = Arc::new(objects);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig {
        objects: Some(objects.clone()),
        ..SqliteConfig::new(dir.path().join("synap.db"))
    })
    .unwrap();
    let scope = Scope::user(store.local_owner().await.unwrap().id);
    Fixture {
        server,
        objects,
        store,
        scope,
        dir,
    }
}

fn large_text() -> String {
    let mut text = String::with_capacity(LARGE_BYTES);
    let mut n = 0u64;
    while text.len() < LARGE_BYTES {
        text.push_str(&format!("line {n} of a very long note; "));
        n += 1;
    }
    text.truncate(LARGE_BYTES);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_goes_up_in_parts_and_reads_back_identical() {
    let f = fixture().await;
    let body = large_text();
    let id = EntityId::new_v7();
    f.store
        .execute(CommandRequest::new(
            f.scope,
            Target::Entity {
                id,
                command: EntityCommand::Create(CreateEntity::note(body.clone())),
            },
            EventMetadata::default(),
        ))
        .await
        .unwrap();
    let hash = ContentHash::of(body.as_bytes());
    let on_server = std::fs::read(f.server.object_path(&content_key(&f.scope.user_id, &hash)))
        .expect("the body is an object in the bucket");
    assert_eq!(on_server.len(), body.len());
    assert!(on_server == body.as_bytes());
    let content = f.store.content(&f.scope, hash).await.unwrap().unwrap();
    assert!(content.body == body, "the body read back differs");
    let report = f.store.verify(&|_, _| {}).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_an_object_deleted_behind_the_stores_back() {
    let f = fixture().await;
    let id = EntityId::new_v7();
    f.store
        .execute(CommandRequest::new(
            f.scope,
            Target::Entity {
                id,
                command: EntityCommand::Create(CreateEntity::note("holder")),
            },
            EventMetadata::default(),
        ))
        .await
        .unwrap();
    let bytes = vec![42u8; 300_000];
    let (attachment, _) =
        attachments::attach_bytes(&f.store, f.scope, id, upload("blob.bin"), bytes)
            .await
            .unwrap();
    let key = content_key(&f.scope.user_id, &attachment.hash);
    let objects = f.objects.clone();
    let deleted = key.clone();
    tokio::task::spawn_blocking(move || objects.delete_blocking(&deleted))
        .await
        .unwrap()
        .unwrap();
    let report = f.store.verify(&|_, _| {}).await.unwrap();
    assert_eq!(
        report.differences,
        vec![format!("object {key} is missing from the object store")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_when_the_store_opens() {
    let server = S3TestServer::start().unwrap();
    let config = server.config_with(synap_store::s3_testing::ACCESS_KEY_ID, "not-the-secret");
    let opened = tokio::task::spawn_blocking(move || Objects::open(&config, 1024))
        .await
        .unwrap();
    let Err(ObjectError::Unavailable(message)) = opened else {
        panic!("wrong credentials were accepted: {opened:?}");
    };
    assert!(
        message.contains("cannot reach the object store"),
        "{message}"
    );
    assert!(message.contains("credentials"), "{message}");
    assert!(
        !message.contains("not-the-secret"),
        "the secret leaked: {message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}

fn upload(filename: &str) -> Upload {
    Upload {
        filename: filename.into(),
        declared_media_type: None,
        limit_bytes: attachments::ATTACHMENT_BYTES_MAX_DEFAULT,
        metadata: EventMetadata::default(),
    }
}

fn bytes_under(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            bytes_under(&path)
        } else {
            entry.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

/// Streams attachments in (multipart beyond 5 MiB) and out, and measures what the
/// whole instance stores per attachment byte: objects plus database growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_stream_through_s3_at_close_to_their_size() {
    let f = fixture().await;
    let id = EntityId::new_v7();
    f.store
        .execute(CommandRequest::new(
            f.scope,
            Target::Entity {
                id,
                command: EntityCommand::Create(CreateEntity::note("album")),
            },
            EventMetadata::default(),
        ))
        .await
        .unwrap();
    let database_before = bytes_under(f.dir.path());
    let objects_before = bytes_under(f.server.root.path());
    let mut attached_bytes = 0u64;
    let mut large = None;
    for n in 0..8u64 {
        let size = if n == 0 {
            LARGE_BYTES
        } else {
            512 * 1024 + n as usize * 1000
        };
        let bytes: Vec<u8> = (0..size)
            .map(|i| ((i as u64 * 7 + n * 13) % 251) as u8)
            .collect();
        // In chunks, as an HTTP body arrives.
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = bytes
            .chunks(64 * 1024)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let (attachment, _) = attachments::attach(
            &f.store,
            f.scope,
            id,
            upload(&format!("file-{n}.bin")),
            Box::pin(futures_util::stream::iter(chunks)),
        )
        .await
        .unwrap();
        attached_bytes += size as u64;
        if n == 0 {
            large = Some((attachment, bytes));
        }
    }
    let (attachment, bytes) = large.unwrap();
    let mut stream = attachments::open(&f.store, f.scope, &attachment, None)
        .await
        .unwrap();
    let mut read = Vec::with_capacity(bytes.len());
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.unwrap());
    }
    assert!(read == bytes, "the attachment read back differs");
    // Let SQLite fold its write-ahead log into the file before measuring.
    drop(stream);
    let database_after = bytes_under(f.dir.path());
    let objects_after = bytes_under(f.server.root.path());
    let stored = (objects_after - objects_before) + database_after.saturating_sub(database_before);
    let ratio = stored as f64 / attached_bytes as f64;
    println!(
        "attachments: {attached_bytes} bytes attached, {} in objects, {} database growth: {ratio:.4} bytes stored per attachment byte",
        objects_after - objects_before,
        database_after.saturating_sub(database_before)
    );
    assert!(ratio <= 1.05, "{ratio:.4} bytes stored per attachment byte");
    let report = f.store.verify(&|_, _| {}).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}
