//! An S3-compatible server for tests (feature `s3-testing`): `s3s` over `s3s-fs`,
//! in-process on `127.0.0.1:0`, with SigV4 credentials — so the S3 code path of
//! [`crate::objects`] runs for real (signatures, multipart uploads, listing) without
//! anything outside the test.

use crate::objects::{ObjectStoreConfig, S3Config, Secret};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::net::SocketAddr;

/// The credentials the test server accepts.
pub const ACCESS_KEY_ID: &str = "synap-test-access";
pub const SECRET_ACCESS_KEY: &str = "synap-test-secret-0123456789";
/// The bucket the test server has.
pub const BUCKET: &str = "synap-test";
const REGION: &str = "us-east-1";

/// A running test server; stops (and forgets its files) when dropped.
#[derive(Debug)]
pub struct S3TestServer {
    pub address: SocketAddr,
    /// The directory behind the bucket (`{root}/{BUCKET}/{key}`).
    pub root: tempfile::TempDir,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl S3TestServer {
    /// Starts a server on its own thread and runtime (so it outlives any one test
    /// runtime and blocking callers can reach it).
    pub fn start() -> std::io::Result<S3TestServer> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join(BUCKET))?;
        let fs = s3s_fs::FileSystem::new(root.path())
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = builder.build();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("s3-test-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the S3 test server");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("the S3 test server's listener");
                    let http = ConnBuilder::new(TokioExecutor::new());
                    loop {
                        let socket = tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok((socket, _)) => socket,
                                Err(_) => continue,
                            },
                            _ = &mut stopped => break,
                        };
                        let connection = http
                            .serve_connection(TokioIo::new(socket), service.clone())
                            .into_owned();
                        tokio::spawn(async move {
                            let _ = connection.await;
                        });
                    }
                });
            })?;
        Ok(S3TestServer {
            address,
            root,
            thread: Some(thread),
            stop: Some(stop),
        })
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A configuration for the test bucket with the right credentials.
    pub fn config(&self) -> ObjectStoreConfig {
        self.config_with(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    }

    /// A configuration for the test bucket with the given credentials.
    pub fn config_with(&self, access_key_id: &str, secret_access_key: &str) -> ObjectStoreConfig {
        ObjectStoreConfig::S3(S3Config {
            bucket: BUCKET.to_string(),
            endpoint: Some(self.endpoint()),
            region: REGION.to_string(),
            access_key_id: access_key_id.to_string(),
            secret_access_key: Secret(secret_access_key.to_string()),
        })
    }

    /// Where the server keeps an object's bytes.
    pub fn object_path(&self, key: &str) -> std::path::PathBuf {
        self.root.path().join(BUCKET).join(key)
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
