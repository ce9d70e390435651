//! The conformance suite for object storage and attachments (feature
//! `conformance`): bodies over the inline threshold in the object store, attaching,
//! listing, reading (ranges too) and detaching files, revert and time travel over
//! attachments, isolation, and verify's object checks. Each backend expands it with
//! [`conformance_attachments_suite!`](crate::conformance_attachments_suite) and an
//! [`ObjectStoreFactory`] that opens its store on the object store it is given.

use crate::api::{AsOf, CommandRequest, Scope, Store, StoreError, Target};
use crate::attachments::{self, AttachError, Upload};
use crate::conformance::Guard;
use crate::objects::{INLINE_BODY_BYTES_MAX_DEFAULT, ObjectStoreConfig, Objects, content_key};
use futures_util::StreamExt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use synap_domain::DomainError;
use synap_domain::command::{CreateEntity, EntityCommand};
use synap_domain::event::{EventMetadata, Source};
use synap_domain::ids::{ContentHash, EntityId};

/// How a backend opens a fresh, empty store on a given object store.
pub trait ObjectStoreFactory: 'static {
    fn open_with_objects(
        objects: Arc<Objects>,
    ) -> impl Future<Output = (Arc<dyn Store>, Guard)> + Send;

    /// Whether the backend can run here (as [`crate::conformance::StoreFactory::available`]).
    fn available() -> bool {
        true
    }
}

/// A store on a local object directory, with the directory's path.
#[allow(missing_debug_implementations)]
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub objects: Arc<Objects>,
    pub root: PathBuf,
    pub scope: Scope,
    _guard: Guard,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn open<F: ObjectStoreFactory>() -> Harness {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().join("objects");
        let config = ObjectStoreConfig::Fs { root: root.clone() };
        let objects = tokio::task::spawn_blocking(move || {
            Objects::open(&config, INLINE_BODY_BYTES_MAX_DEFAULT).expect("open the object store")
        })
        .await
        .expect("open the object store");
        let objects = Arc::new(objects);
        let (store, guard) = F::open_with_objects(objects.clone()).await;
        let owner = store.local_owner().await.expect("the local owner");
        Harness {
            store,
            objects,
            root,
            scope: Scope::user(owner.id),
            _guard: guard,
            _dir: dir,
        }
    }

    pub async fn create_note(&self, body: &str) -> EntityId {
        let id = EntityId::new_v7();
        self.store
            .execute(CommandRequest::new(
                self.scope,
                Target::Entity {
                    id,
                    command: EntityCommand::Create(CreateEntity::note(body)),
                },
                EventMetadata::default(),
            ))
            .await
            .expect("create a note");
        id
    }

    pub async fn attach(
        &self,
        entity: EntityId,
        filename: &str,
        bytes: &[u8],
    ) -> Result<synap_domain::entity::Attachment, AttachError> {
        attachments::attach_bytes(
            self.store.as_ref(),
            self.scope,
            entity,
            upload(filename, 1024 * 1024),
            bytes.to_vec(),
        )
        .await
        .map(|(attachment, _)| attachment)
    }

    pub async fn read_all(
        &self,
        attachment: &synap_domain::entity::Attachment,
        range: Option<std::ops::Range<u64>>,
    ) -> Vec<u8> {
        let mut stream = attachments::open(self.store.as_ref(), self.scope, attachment, range)
            .await
            .expect("open the attachment");
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.expect("a chunk"));
        }
        bytes
    }

    /// Object files under the store's directory (uploads in progress excluded).
    pub fn object_files(&self) -> Vec<PathBuf> {
        files_under(&self.root)
    }

    pub fn object_path(&self, hash: &ContentHash) -> PathBuf {
        self.root.join(content_key(&self.scope.user_id, hash))
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn upload(filename: &str, limit_bytes: u64) -> Upload {
    Upload {
        filename: filename.to_string(),
        declared_media_type: None,
        limit_bytes,
        metadata: EventMetadata {
            source: Source::Api,
            ..EventMetadata::default()
        },
    }
}

/// A PNG signature followed by `size - 8` patterned bytes.
pub fn png_bytes(size: usize) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend((0..size.saturating_sub(8)).map(|i| (i * 31 % 251) as u8));
    bytes
}

/// A markdown body larger than the inline threshold, with a word to search for.
fn large_body() -> String {
    let mut body = String::from("# Field notes\n\nThe word zanzibarite is in here.\n\n");
    while body.len() <= INLINE_BODY_BYTES_MAX_DEFAULT + 1024 {
        body.push_str("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ");
    }
    body
}

pub async fn large_body_lives_in_the_object_store_and_reads_back<F: ObjectStoreFactory>() {
    let h = Harness::open::<F>().await;
    let body = large_body();
    let hash = ContentHash::of(body.as_bytes());
    let id = h.create_note(&body).await;
    let object = h.object_path(&hash);
    assert_eq!(
        std::fs::read(&object).expect("the body is an object"),
        body.as_bytes()
    );
    let content = h
        .store
        .content(&h.scope, hash)
        .await
        .unwrap()
        .expect("the content");
    assert_eq!(content.body, body);
    assert_eq!(content.content.size, body.len() as u64);
    let view = h.store.entity(&h.scope, id).await.unwrap().unwrap();
    assert!(view.preview.starts_with("Field notes"), "{}", view.preview);
    let hits = h
        .store
        .search(
            &h.scope,
            &crate::api::SearchRequest {
                query: "zanzibarite".into(),
                entity_type: None,
                tag: None,
                limit: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(
        hits[0].snippet.contains("zanzibarite"),
        "{}",
        hits[0].snippet
    );
    // A small body stays inline: no object for it.
    let before = h.object_files().len();
    h.create_note("a short note").await;
    assert_eq!(h.object_files().len(), before);
    // The same large body again is stored once.
    h.create_note(&body).await;
    assert_eq!(h.object_files().len(), before);
    let report = h.store.verify(&|_, _| {}).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

pub async fn attachments_are_added_listed_read_and_detached<F: ObjectStoreFactory>() {
    let h = Harness::open::<F>().await;
    let id = h.create_note("with a picture").await;
    let bytes = png_bytes(200_000);
    let attachment = h.attach(id, "diagram.png", &bytes).await.expect("attach");
    assert_eq!(attachment.media_type, "image/png");
    assert_eq!(attachment.size, bytes.len() as u64);
    assert_eq!(attachment.hash, ContentHash::of(&bytes));
    assert_eq!(attachment.filename, "diagram.png");
    let listed = attachments::list(h.store.as_ref(), h.scope, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed, vec![attachment.clone()]);
    assert_eq!(h.read_all(&attachment, None).await, bytes);
    assert_eq!(h.read_all(&attachment, Some(10..20)).await, bytes[10..20]);
    // Text without a signature takes the declared type, else a text default.
    let (text, _) = attachments::attach_bytes(
        h.store.as_ref(),
        h.scope,
        id,
        Upload {
            declared_media_type: Some("text/csv".into()),
            ..upload("table.csv", 1024)
        },
        b"a,b\n1,2\n".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(text.media_type, "text/csv");
    // The same bytes on another entity: one object.
    let other = h.create_note("same picture").await;
    let files = h.object_files().len();
    h.attach(other, "copy.png", &bytes).await.unwrap();
    assert_eq!(h.object_files().len(), files);

    let outcome = attachments::detach(
        h.store.as_ref(),
        h.scope,
        id,
        attachment.id,
        EventMetadata::default(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.events.len(), 1);
    let listed = attachments::list(h.store.as_ref(), h.scope, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed, vec![text]);
    // The bytes stay: history refers to them.
    assert!(h.object_path(&attachment.hash).exists());
    let history = h
        .store
        .history(&h.scope, id, &crate::api::PageRequest::default())
        .await
        .unwrap();
    let types: Vec<&str> = history.items.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        [
            "entity.created",
            "entity.attachment_added",
            "entity.attachment_added",
            "entity.attachment_removed"
        ]
    );
    // Detaching again is refused; nothing is appended.
    let again = attachments::detach(
        h.store.as_ref(),
        h.scope,
        id,
        attachment.id,
        EventMetadata::default(),
    )
    .await;
    assert!(
        matches!(
            again,
            Err(StoreError::Domain(DomainError::Validation {
                field: "attachment_id",
                ..
            }))
        ),
        "{again:?}"
    );
    let report = h.store.verify(&|_, _| {}).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
}

pub async fn revert_and_time_travel_cover_attachments<F: ObjectStoreFactory>() {
    let h = Harness::open::<F>().await;
    let id = h.create_note("versions").await;
    let first = h.attach(id, "first.png", &png_bytes(1000)).await.unwrap(); // v2
    let second = h.attach(id, "second.png", &png_bytes(2000)).await.unwrap(); // v3
    attachments::detach(
        h.store.as_ref(),
        h.scope,
        id,
        first.id,
        EventMetadata::default(),
    )
    .await
    .unwrap(); // v4
    let at_v3 = h
        .store
        .entity_at(&h.scope, id, AsOf::Version(3))
        .await
        .unwrap()
        .unwrap();
    let names: Vec<&str> = at_v3
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(names, ["first.png", "second.png"]);
    // Back to v2: the first comes back under its id, the second goes.
    h.store
        .execute(CommandRequest::new(
            h.scope,
            Target::Entity {
                id,
                command: EntityCommand::RevertTo { version: 2 },
            },
            EventMetadata::default(),
        ))
        .await
        .unwrap();
    let now = attachments::list(h.store.as_ref(), h.scope, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.len(), 1);
    assert!(now[0].same_file(&first), "{now:?}");
    assert_eq!(h.read_all(&now[0], None).await, png_bytes(1000));
    assert!(
        attachments::find(h.store.as_ref(), h.scope, id, second.id)
            .await
            .unwrap()
            .is_none()
    );
    // Reverting to the same state again changes nothing.
    let view = h.store.entity(&h.scope, id).await.unwrap().unwrap();
    let outcome = h
        .store
        .execute(CommandRequest::new(
            h.scope,
            Target::Entity {
                id,
                command: EntityCommand::RevertTo { version: 2 },
            },
            EventMetadata::default(),
        ))
        .await
        .unwrap();
    assert_eq!(outcome.version, view.version);
    // The projection equals the fold of the log, attachments included.
    h.store.rebuild(&|_, _| {}).await.unwrap();
    let rebuilt = h.store.entity(&h.scope, id).await.unwrap().unwrap();
    assert_eq!(rebuilt.attachments, view.attachments);
    let report = h.store.verify(&|_, _| {}).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
}

pub async fn attachments_are_refused_where_they_must_be<F: ObjectStoreFactory>() {
    let h = Harness::open::<F>().await;
    let id = h.create_note("limits").await;
    // Over the limit: refused, and nothing is kept.
    let files = h.object_files().len();
    let result = attachments::attach_bytes(
        h.store.as_ref(),
        h.scope,
        id,
        upload("big.bin", 1000),
        vec![7u8; 1001],
    )
    .await;
    assert!(
        matches!(result, Err(AttachError::TooLarge { limit_bytes: 1000 })),
        "{result:?}"
    );
    assert_eq!(h.object_files().len(), files);
    // A bad file name, a missing entity.
    let bad = h.attach(id, "../etc/passwd", b"x").await;
    assert!(
        matches!(
            bad,
            Err(AttachError::Store(StoreError::Domain(
                DomainError::Validation {
                    field: "filename",
                    ..
                }
            )))
        ),
        "{bad:?}"
    );
    let missing = h.attach(EntityId::new_v7(), "a.txt", b"x").await;
    assert!(
        matches!(
            missing,
            Err(AttachError::Store(StoreError::Domain(
                DomainError::EntityNotFound(_)
            )))
        ),
        "{missing:?}"
    );
    // Another user sees nothing and can attach nothing.
    let other = h
        .store
        .create_user(crate::api::NewUser {
            email: "other@example.com".into(),
            password_hash: None,
            display_name: None,
            role: "member".into(),
        })
        .await
        .unwrap();
    let theirs = Scope::user(other.id);
    let attachment = h.attach(id, "mine.png", &png_bytes(100)).await.unwrap();
    assert!(
        attachments::list(h.store.as_ref(), theirs, id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        attachments::find(h.store.as_ref(), theirs, id, attachment.id)
            .await
            .unwrap()
            .is_none()
    );
    let foreign = attachments::attach_bytes(
        h.store.as_ref(),
        theirs,
        id,
        upload("x.png", 1000),
        png_bytes(10),
    )
    .await;
    assert!(
        matches!(
            foreign,
            Err(AttachError::Store(StoreError::Domain(
                DomainError::EntityNotFound(_)
            )))
        ),
        "{foreign:?}"
    );
    let detach = attachments::detach(
        h.store.as_ref(),
        theirs,
        id,
        attachment.id,
        EventMetadata::default(),
    )
    .await;
    assert!(
        matches!(
            detach,
            Err(StoreError::Domain(DomainError::EntityNotFound(_)))
        ),
        "{detach:?}"
    );
}

pub async fn verify_reports_missing_and_damaged_objects_and_warns_of_orphans<
    F: ObjectStoreFactory,
>() {
    let h = Harness::open::<F>().await;
    let id = h.create_note(&large_body()).await;
    let attachment = h.attach(id, "a.png", &png_bytes(5000)).await.unwrap();
    let body_hash = ContentHash::of(large_body().as_bytes());
    // An orphan (as a rolled-back write leaves): a warning, not a difference.
    let orphan = b"left behind".to_vec();
    let orphan_path = h.object_path(&ContentHash::of(&orphan));
    std::fs::write(&orphan_path, &orphan).unwrap();
    let report = h.store.verify(&|_, _| {}).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("orphan"),
        "{:?}",
        report.warnings
    );

    std::fs::remove_file(h.object_path(&body_hash)).unwrap();
    let mut damaged = png_bytes(5000);
    damaged[100] ^= 0xFF;
    std::fs::write(h.object_path(&attachment.hash), &damaged).unwrap();
    let report = h.store.verify(&|_, _| {}).await.unwrap();
    assert_eq!(report.differences.len(), 2, "{:?}", report.differences);
    let text = report.differences.join("\n");
    assert!(text.contains(&format!("{body_hash} is missing")), "{text}");
    assert!(
        text.contains(&format!("{} is damaged", attachment.hash)),
        "{text}"
    );
    // Reading the missing body says so, instead of returning an empty text.
    let read = h.store.content(&h.scope, body_hash).await;
    assert!(
        matches!(&read, Err(StoreError::Corrupt(message)) if message.contains("missing")),
        "{read:?}"
    );
}

/// Expands the attachment suite for a backend's [`ObjectStoreFactory`].
#[macro_export]
macro_rules! conformance_attachments_suite {
    ($factory:path) => {
        $crate::conformance_attachments_suite!(@tests $factory;
            large_body_lives_in_the_object_store_and_reads_back,
            attachments_are_added_listed_read_and_detached,
            revert_and_time_travel_cover_attachments,
            attachments_are_refused_where_they_must_be,
            verify_reports_missing_and_damaged_objects_and_warns_of_orphans,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if !<$factory as $crate::conformance_attachments::ObjectStoreFactory>::available() {
                    eprintln!("skipped: the backend is not available here");
                    return;
                }
                $crate::conformance::bounded_test(
                    $crate::conformance_attachments::$name::<$factory>(),
                )
                .await;
            }
        )*
    };
}
