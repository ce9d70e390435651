//! The object store: where content bodies above the inline threshold and every
//! attachment's bytes live — a directory inside the data directory by default
//! (`{data_dir}/objects`), any S3-compatible store by configuration. A thin wrapper
//! over the `object_store` crate that both backends share.
//!
//! Objects are content-addressed: `users/{user_id}/content/{sha256}` holds the bytes
//! whose SHA-256 is the key's last part, written once per (user, hash) and never
//! rewritten or deleted by the store (history and revert can reach every version).
//! A write puts the object *before* the database transaction that refers to it
//! commits; if that transaction rolls back, the object stays behind as an orphan.
//! That is harmless — the same bytes get the same key next time — and
//! `synap admin verify` reports orphans as a warning, never as corruption.
//!
//! The backends run their write paths on blocking threads, so the store owns a small
//! Tokio runtime and offers blocking calls for them (`*_blocking`) as well as async
//! calls (run on that same runtime) for streamed uploads and downloads.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};
use sha2::{Digest, Sha256};
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use synap_domain::ids::{ContentHash, UserId};
use tokio::io::AsyncWriteExt;

/// Bodies larger than this many bytes go to the object store by default; smaller
/// ones stay inline in the database row.
pub const INLINE_BODY_BYTES_MAX_DEFAULT: usize = 256 * 1024;
/// Folder of the local object store inside the data directory.
pub const OBJECTS_DIR: &str = "objects";
/// Uploads are buffered up to this many bytes; larger objects go up as a multipart
/// upload in parts of this size (S3's smallest part is 5 MiB).
pub const UPLOAD_PART_BYTES: usize = 5 * 1024 * 1024;
/// Bytes of an upload kept to detect its media type (magic numbers sit up front).
pub const SNIFF_BYTES: usize = 8 * 1024;

/// The warning `verify` gives when objects are missing or damaged: rebuilding the
/// projections needs every body (the search index holds their text), so they are
/// compared only once the objects are whole again.
pub const PROJECTIONS_NOT_COMPARED: &str = "the projections were not compared: rebuilding them needs the missing or damaged objects above; restore those (from a backup) and verify again";
/// Worker threads of the object store's own runtime.
const RUNTIME_THREADS: usize = 2;
/// Chunks of a download in flight between the object store's runtime and the reader.
const DOWNLOAD_CHUNKS_IN_FLIGHT: usize = 4;
/// Retries of one request to a remote store, and how long they may take in all.
const RETRIES_MAX: usize = 3;
const RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// A secret that `Debug` never prints.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

/// An S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// `http(s)://host:port` of an S3-compatible server; `None` is AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// Where objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectStoreConfig {
    /// A local directory (created if missing).
    Fs {
        root: PathBuf,
    },
    S3(S3Config),
}

impl ObjectStoreConfig {
    /// The default: `{data_dir}/objects`.
    pub fn in_data_dir(data_dir: &std::path::Path) -> Self {
        ObjectStoreConfig::Fs {
            root: data_dir.join(OBJECTS_DIR),
        }
    }
}

/// Which kind of store holds an object; recorded with each reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Fs,
    S3,
}

impl Provider {
    pub fn as_str(&self) -> &'static str {
        match self {
            Provider::Fs => "fs",
            Provider::S3 => "s3",
        }
    }
}

/// A failure of the object store.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The store cannot be used at all (bad configuration, unreachable bucket,
    /// wrong credentials). Reported when the store opens.
    #[error("{0}")]
    Unavailable(String),
    #[error("object {key} is missing from the object store")]
    NotFound { key: String },
    /// An upload was over its size limit; nothing was kept.
    #[error("the upload is over the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: u64 },
    /// The upload's own body failed (the client went away, a read error).
    #[error("reading the upload failed: {0}")]
    Upload(String),
    #[error("object store: {0}")]
    Io(String),
}

impl From<object_store::Error> for ObjectError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { path, .. } => ObjectError::NotFound { key: path },
            other => ObjectError::Io(other.to_string()),
        }
    }
}

/// Bytes that were streamed into the store: their hash, size and first bytes.
#[derive(Debug, Clone)]
pub struct Stored {
    pub hash: ContentHash,
    pub size: u64,
    /// Up to [`SNIFF_BYTES`] from the start, for media type detection.
    pub head: Vec<u8>,
}

/// What verify found for one referenced object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectCheck {
    Ok,
    Missing,
    WrongSize { actual: u64 },
    WrongHash { actual: ContentHash },
}

/// The object store of one Synap instance. Cheap to share behind an `Arc`.
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    provider: Provider,
    /// Where it is, for messages (a directory or `s3://bucket` at an endpoint).
    location: String,
    inline_bytes_max: usize,
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Objects")
            .field("provider", &self.provider)
            .field("location", &self.location)
            .field("inline_bytes_max", &self.inline_bytes_max)
            .finish_non_exhaustive()
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        // Dropping a runtime blocks; this one may be dropped inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The key of a user's content-addressed object.
pub fn content_key(user: &UserId, hash: &ContentHash) -> String {
    format!("users/{user}/content/{hash}")
}

/// The content hash a key names, if it is a content key.
pub fn hash_of_key(key: &str) -> Option<ContentHash> {
    let (_, hash) = key.rsplit_once("/content/")?;
    hash.parse().ok()
}

impl Objects {
    /// Opens the store and checks that it can be used: the directory is created, or
    /// the bucket answers with these credentials. Bodies over `inline_bytes_max`
    /// bytes will be kept here.
    pub fn open(
        config: &ObjectStoreConfig,
        inline_bytes_max: usize,
    ) -> Result<Objects, ObjectError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("synap-objects")
            .enable_all()
            .build()
            .map_err(|e| {
                ObjectError::Unavailable(format!("cannot start the object store's runtime: {e}"))
            })?;
        let (store, provider, location): (Arc<dyn ObjectStore>, _, _) = match config {
            ObjectStoreConfig::Fs { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    ObjectError::Unavailable(format!(
                        "cannot create the object directory {}: {e}",
                        root.display()
                    ))
                })?;
                let store = LocalFileSystem::new_with_prefix(root).map_err(|e| {
                    ObjectError::Unavailable(format!(
                        "cannot use {} for objects: {e}",
                        root.display()
                    ))
                })?;
                (Arc::new(store), Provider::Fs, root.display().to_string())
            }
            ObjectStoreConfig::S3(s3) => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(&s3.secret_access_key.0)
                    .with_retry(RetryConfig {
                        max_retries: RETRIES_MAX,
                        retry_timeout: RETRY_TIMEOUT,
                        ..RetryConfig::default()
                    });
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let store = builder.build().map_err(|e| {
                    ObjectError::Unavailable(format!(
                        "the S3 object store settings are invalid: {e}"
                    ))
                })?;
                let location = match &s3.endpoint {
                    Some(endpoint) => format!("s3://{} at {endpoint}", s3.bucket),
                    None => format!("s3://{}", s3.bucket),
                };
                (Arc::new(store), Provider::S3, location)
            }
        };
        let objects = Objects {
            store,
            provider,
            location,
            inline_bytes_max,
            runtime: Some(runtime),
        };
        objects.check_reachable()?;
        Ok(objects)
    }

    /// Fails unless the store answers: a missing probe object is fine, a refused
    /// signature or a missing bucket is not.
    fn check_reachable(&self) -> Result<(), ObjectError> {
        let store = self.store.clone();
        let probe = ObjectPath::from("synap/probe");
        match self.block_on(async move { store.head(&probe).await }) {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(ObjectError::Unavailable(format!(
                "cannot reach the object store {}: {}; check the bucket, endpoint and credentials",
                self.location,
                first_line(&error.to_string())
            ))),
        }
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Where the objects are, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Bodies over this many bytes are kept here rather than inline.
    pub fn inline_bytes_max(&self) -> usize {
        self.inline_bytes_max
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Runs `future` on the store's runtime from a blocking thread.
    fn block_on<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static) -> T {
        self.runtime().block_on(future)
    }

    /// Runs `future` on the store's runtime from async code (whose runtime it
    /// does not tie up, and whose connections stay on one runtime).
    async fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, ObjectError>> + Send + 'static,
    ) -> Result<T, ObjectError> {
        self.runtime()
            .spawn(future)
            .await
            .map_err(|e| ObjectError::Io(format!("object store task failed: {e}")))?
    }

    /// Stores `bytes` under `key` (multipart beyond [`UPLOAD_PART_BYTES`]). Blocking.
    pub fn put_blocking(&self, key: &str, bytes: Bytes) -> Result<(), ObjectError> {
        let store = self.store.clone();
        let path = ObjectPath::from(key);
        self.block_on(async move { write_all(store, path, bytes).await })
    }

    /// The whole object. Blocking.
    pub fn get_blocking(&self, key: &str) -> Result<Bytes, ObjectError> {
        let store = self.store.clone();
        let path = ObjectPath::from(key);
        self.block_on(async move { Ok(store.get(&path).await?.bytes().await?) })
    }

    /// The object's size, or `None` when it does not exist. Blocking.
    pub fn size_blocking(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        let store = self.store.clone();
        let path = ObjectPath::from(key);
        self.block_on(async move {
            match store.head(&path).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(error) => Err(error.into()),
            }
        })
    }

    /// Deletes an object (tests and operators; the store itself never deletes
    /// content). Blocking.
    pub fn delete_blocking(&self, key: &str) -> Result<(), ObjectError> {
        let store = self.store.clone();
        let path = ObjectPath::from(key);
        self.block_on(async move { Ok(store.delete(&path).await?) })
    }

    /// Checks that `key` exists with this size and SHA-256, reading it through.
    /// Blocking.
    pub fn check_blocking(
        &self,
        key: &str,
        size: u64,
        hash: &ContentHash,
    ) -> Result<ObjectCheck, ObjectError> {
        let store = self.store.clone();
        let path = ObjectPath::from(key);
        let expected = *hash;
        self.block_on(async move {
            let result = match store.get(&path).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => return Ok(ObjectCheck::Missing),
                Err(error) => return Err(error.into()),
            };
            if result.meta.size != size {
                return Ok(ObjectCheck::WrongSize {
                    actual: result.meta.size,
                });
            }
            let mut hasher = Sha256::new();
            let mut stream = result.into_stream();
            while let Some(chunk) = stream.next().await {
                hasher.update(&chunk?);
            }
            let actual = ContentHash(hasher.finalize().into());
            Ok(if actual == expected {
                ObjectCheck::Ok
            } else {
                ObjectCheck::WrongHash { actual }
            })
        })
    }

    /// Every content key under `users/` (for orphan detection). Blocking.
    pub fn content_keys_blocking(&self) -> Result<Vec<String>, ObjectError> {
        let store = self.store.clone();
        self.block_on(async move {
            let prefix = ObjectPath::from("users");
            let mut keys = Vec::new();
            let mut listing = store.list(Some(&prefix));
            while let Some(meta) = listing.next().await {
                let key = meta?.location.to_string();
                if hash_of_key(&key).is_some() {
                    keys.push(key);
                }
            }
            Ok(keys)
        })
    }

    /// Streams an upload into the user's content objects, hashing as it goes and
    /// holding at most one part in memory. Beyond `limit_bytes` the upload is
    /// abandoned and nothing is kept. The bytes land under a temporary key and are
    /// renamed to their content key once the hash is known (or dropped when that
    /// key already holds them).
    pub async fn put_stream(
        &self,
        user: UserId,
        mut body: BoxStream<'static, Result<Bytes, std::io::Error>>,
        limit_bytes: u64,
    ) -> Result<Stored, ObjectError> {
        let store = self.store.clone();
        let temporary = ObjectPath::from(format!("users/{user}/uploads/{}", uuid::Uuid::now_v7()));
        self.spawn(async move {
            let mut writer =
                BufWriter::with_capacity(store.clone(), temporary.clone(), UPLOAD_PART_BYTES);
            let mut hasher = Sha256::new();
            let mut size: u64 = 0;
            let mut head = Vec::new();
            let failure = loop {
                let chunk = match body.next().await {
                    None => break None,
                    Some(Ok(chunk)) => chunk,
                    Some(Err(error)) => break Some(upload_error(error, limit_bytes)),
                };
                size += chunk.len() as u64;
                if size > limit_bytes {
                    break Some(ObjectError::TooLarge { limit_bytes });
                }
                if head.len() < SNIFF_BYTES {
                    let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                hasher.update(&chunk);
                if let Err(error) = writer.put(chunk).await {
                    break Some(error.into());
                }
            };
            if let Some(error) = failure {
                // An abandoned multipart upload would otherwise linger (and cost) on S3.
                let _ = writer.abort().await;
                let _ = store.delete(&temporary).await;
                return Err(error);
            }
            writer
                .shutdown()
                .await
                .map_err(|e| ObjectError::Io(e.to_string()))?;
            let hash = ContentHash(hasher.finalize().into());
            let target = ObjectPath::from(content_key(&user, &hash));
            match store.head(&target).await {
                Ok(meta) if meta.size == size => {
                    store.delete(&temporary).await?;
                }
                _ => store.rename(&temporary, &target).await?,
            }
            Ok(Stored { hash, size, head })
        })
        .await
    }

    /// Streams `range` (or all) of an object, read on the store's runtime.
    pub async fn get_stream(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, ObjectError> {
        let store = self.store.clone();
        let path = ObjectPath::from(key);
        let (sender, receiver) = tokio::sync::mpsc::channel(DOWNLOAD_CHUNKS_IN_FLIGHT);
        let opened = self
            .spawn(async move {
                let options = GetOptions {
                    range: range.map(GetRange::Bounded),
                    ..GetOptions::default()
                };
                let result = store.get_opts(&path, options).await?;
                Ok(result.into_stream())
            })
            .await?;
        self.runtime().spawn(async move {
            let mut stream = opened;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
                let failed = chunk.is_err();
                if sender.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(tokio_stream_from(receiver))
    }
}

/// A receiver as a stream (without depending on `tokio-stream`).
fn tokio_stream_from(
    receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
    .boxed()
}

/// An error of the upload's own body: over a body limit below ours, or a read error.
fn upload_error(error: std::io::Error, limit_bytes: u64) -> ObjectError {
    let text = error.to_string();
    if text.contains("length limit exceeded") {
        ObjectError::TooLarge { limit_bytes }
    } else {
        ObjectError::Upload(text)
    }
}

async fn write_all(
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    bytes: Bytes,
) -> Result<(), ObjectError> {
    let mut writer = BufWriter::with_capacity(store, path, UPLOAD_PART_BYTES);
    let mut rest = bytes;
    // Parts of at most one part size, so a large body goes up as a multipart upload.
    while !rest.is_empty() {
        let part = rest.split_to(rest.len().min(UPLOAD_PART_BYTES));
        if let Err(error) = writer.put(part).await {
            let _ = writer.abort().await;
            return Err(error.into());
        }
    }
    writer
        .shutdown()
        .await
        .map_err(|e| ObjectError::Io(e.to_string()))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The media type of `head` (the first bytes of a file) by its magic numbers, else
/// the declared one, else `application/octet-stream`.
pub fn detect_media_type(head: &[u8], declared: Option<&str>) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_string();
    }
    match declared.map(str::trim) {
        Some(declared) if synap_domain::command::validate_media_type(declared).is_ok() => {
            declared.to_string()
        }
        _ if std::str::from_utf8(head).is_ok() && !head.is_empty() => {
            "text/plain; charset=utf-8".to_string()
        }
        _ => "application/octet-stream".to_string(),
    }
}
