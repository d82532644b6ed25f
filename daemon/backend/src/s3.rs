//! S3-compatible backend (path-style addressing) on `object_store`.
//!
//! `object_store` does the S3 work: SigV4, create-only puts with `If-None-Match: *`, multipart
//! uploads, ranged gets, paginated ListObjectsV2. Its own retries are switched off so one retry
//! loop ([`crate::retry`]) covers every backend and its errors name the object.
//!
//! Object Lock retention is set right after the upload (module `retention`). Between the upload
//! and that call the new version is unprotected for one round trip, unless the bucket also has a
//! default retention rule.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as StorePath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, RetryConfig,
};
use rusty_s3::{Bucket, Credentials, UrlStyle};

mod retention;
pub use retention::rfc3339;

use crate::error::{validate_prefix, AttemptError, BackendError, BoxError};
use crate::retry::{retry, RetryPolicy};
use crate::{
    validate_name, Backend, Location, ObjectInfo, S3Credentials, S3Location, WriteOptions,
};

/// Default size above which writes use multipart upload.
pub const DEFAULT_MULTIPART_THRESHOLD: usize = 16 << 20;
/// S3's minimum part size (except the last part).
pub const MIN_PART_SIZE: usize = 5 << 20;

/// Tunables of the S3 backend.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Region used for signing.
    pub region: String,
    /// Multipart threshold (and part size); raised to at least [`MIN_PART_SIZE`].
    pub multipart_threshold: Option<usize>,
    /// Retry policy.
    pub retry: RetryPolicy,
}

/// An S3 bucket (and key prefix) as a backend.
pub struct S3Backend {
    store: Arc<AmazonS3>,
    location: S3Location,
    describe: String,
    part_size: usize,
    retry: RetryPolicy,
    signer_bucket: Bucket,
    signer_creds: Credentials,
    http: reqwest::Client,
}

impl std::fmt::Debug for S3Backend {
    // Only the URL: never risk printing credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("location", &self.describe)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// Builds the client; does not contact the server.
    pub fn new(
        location: &S3Location,
        creds: &S3Credentials,
        opts: S3Options,
    ) -> Result<Self, BackendError> {
        let describe = Location::S3(location.clone()).to_string();
        let config_err =
            |e: &dyn std::fmt::Display| BackendError::Config(format!("{describe}: {e}"));
        let client_opts = ClientOptions::new()
            .with_allow_http(!location.https)
            .with_timeout(opts.retry.attempt_timeout)
            .with_connect_timeout(Duration::from_secs(10));
        // Retries happen in crate::retry; one attempt here keeps the counts exact.
        let store_retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 0,
            retry_timeout: opts.retry.attempt_timeout,
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(location.endpoint())
            .with_bucket_name(&location.bucket)
            .with_region(&opts.region)
            .with_access_key_id(&creds.access_key_id)
            .with_secret_access_key(&creds.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_client_options(client_opts)
            .with_retry(store_retry)
            .build()
            .map_err(|e| config_err(&e))?;
        let endpoint = location.endpoint().parse().map_err(|e| config_err(&e))?;
        let signer_bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            location.bucket.clone(),
            opts.region.clone(),
        )
        .map_err(|e| config_err(&e))?;
        let http = reqwest::Client::builder()
            .timeout(opts.retry.attempt_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| config_err(&e))?;
        Ok(S3Backend {
            store: Arc::new(store),
            location: location.clone(),
            describe,
            part_size: opts
                .multipart_threshold
                .unwrap_or(DEFAULT_MULTIPART_THRESHOLD)
                .max(MIN_PART_SIZE),
            retry: opts.retry,
            signer_bucket,
            signer_creds: Credentials::new(&creds.access_key_id, &creds.secret_access_key),
            http,
        })
    }

    /// Full key of an object.
    pub fn key(&self, name: &str) -> String {
        if self.location.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.location.prefix)
        }
    }

    fn path(&self, name: &str) -> StorePath {
        StorePath::from(self.key(name))
    }

    /// Classifies an `object_store` error of an operation on `name`.
    fn classify(&self, name: &str, e: object_store::Error) -> AttemptError {
        use object_store::Error as E;
        let fatal = |e| AttemptError::Fatal(e);
        match e {
            E::NotFound { .. } => fatal(BackendError::NotFound {
                backend: self.describe.clone(),
                name: name.to_string(),
            }),
            E::AlreadyExists { .. } | E::Precondition { .. } | E::NotModified { .. } => {
                fatal(BackendError::AlreadyExists {
                    backend: self.describe.clone(),
                    name: name.to_string(),
                })
            }
            E::Generic { .. } if !is_client_error(&e) => AttemptError::Transient(Box::new(e)),
            other => fatal(self.failed("request", name, Box::new(other))),
        }
    }

    fn failed(&self, op: &'static str, name: &str, source: BoxError) -> BackendError {
        BackendError::Failed {
            backend: self.describe.clone(),
            op,
            name: name.to_string(),
            attempts: 1,
            source,
        }
    }

    async fn write_once(
        &self,
        name: &str,
        data: &Bytes,
        overwrite: bool,
    ) -> Result<(), AttemptError> {
        let path = self.path(name);
        if data.len() <= self.part_size {
            let opts = PutOptions {
                mode: if overwrite {
                    PutMode::Overwrite
                } else {
                    PutMode::Create
                },
                ..PutOptions::default()
            };
            self.store
                .put_opts(&path, PutPayload::from_bytes(data.clone()), opts)
                .await
                .map_err(|e| self.classify(name, e))?;
            return Ok(());
        }
        // Multipart cannot be conditional in object_store: check first (small race window).
        if !overwrite {
            match self.store.head(&path).await {
                Ok(_) => {
                    return Err(AttemptError::Fatal(BackendError::AlreadyExists {
                        backend: self.describe.clone(),
                        name: name.to_string(),
                    }))
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.classify(name, e)),
            }
        }
        let mut upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.classify(name, e))?;
        // Parts are numbered in call order; up to 4 upload at once.
        let parts: Vec<_> = (0..data.len())
            .step_by(self.part_size)
            .map(|start| {
                let end = (start + self.part_size).min(data.len());
                upload.put_part(PutPayload::from_bytes(data.slice(start..end)))
            })
            .collect();
        let sent: Result<Vec<()>, _> = futures::stream::iter(parts)
            .buffer_unordered(4)
            .try_collect()
            .await;
        let done = match sent {
            Ok(_) => upload.complete().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            // Do not leave billable orphaned parts behind.
            let _ = upload.abort().await;
            return Err(self.classify(name, e));
        }
        Ok(())
    }
}

/// True if the error chain shows an HTTP 4xx answer (retrying cannot help).
fn is_client_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains("non-2xx status code: 4") {
            return true;
        }
        cur = err.source();
    }
    false
}

#[async_trait]
impl Backend for S3Backend {
    fn describe(&self) -> &str {
        &self.describe
    }

    async fn write(
        &self,
        name: &str,
        data: Bytes,
        opts: &WriteOptions,
    ) -> Result<(), BackendError> {
        validate_name(name)?;
        retry(&self.retry, &self.describe, "write", name, || {
            self.write_once(name, &data, opts.overwrite)
        })
        .await?;
        if let Some(r) = &opts.retention {
            self.put_retention(name, r).await?;
        }
        Ok(())
    }

    async fn read(&self, name: &str) -> Result<Bytes, BackendError> {
        validate_name(name)?;
        retry(&self.retry, &self.describe, "read", name, || async {
            let got = self
                .store
                .get(&self.path(name))
                .await
                .map_err(|e| self.classify(name, e))?;
            got.bytes().await.map_err(|e| self.classify(name, e))
        })
        .await
    }

    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        validate_name(name)?;
        let invalid = |size| BackendError::InvalidRange {
            backend: self.describe.clone(),
            name: name.to_string(),
            offset,
            len,
            size,
        };
        let Some(end) = offset.checked_add(len) else {
            return Err(invalid(None));
        };
        if len == 0 {
            // S3 has no empty range; answer from the size.
            let size = self.stat(name).await?.size;
            return if offset <= size {
                Ok(Bytes::new())
            } else {
                Err(invalid(Some(size)))
            };
        }
        retry(&self.retry, &self.describe, "read", name, || async {
            let opts = GetOptions {
                range: Some(GetRange::Bounded(offset..end)),
                ..GetOptions::default()
            };
            let got = match self.store.get_opts(&self.path(name), opts).await {
                Ok(g) => g,
                Err(e) => {
                    let classified = self.classify(name, e);
                    // A range past the end is a 416 or a range mismatch: look at the size.
                    if let Ok(meta) = self.store.head(&self.path(name)).await {
                        if end > meta.size {
                            return Err(AttemptError::Fatal(invalid(Some(meta.size))));
                        }
                    }
                    return Err(classified);
                }
            };
            let size = got.meta.size;
            let bytes = got.bytes().await.map_err(|e| self.classify(name, e))?;
            if end > size || bytes.len() as u64 != len {
                return Err(AttemptError::Fatal(invalid(Some(size))));
            }
            Ok(bytes)
        })
        .await
    }

    async fn stat(&self, name: &str) -> Result<ObjectInfo, BackendError> {
        validate_name(name)?;
        retry(&self.retry, &self.describe, "stat", name, || async {
            let meta = self
                .store
                .head(&self.path(name))
                .await
                .map_err(|e| self.classify(name, e))?;
            Ok(ObjectInfo {
                name: name.to_string(),
                size: meta.size,
            })
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let p = validate_prefix(prefix)?;
        let full = self.key(&p);
        let full = full.trim_end_matches('/');
        let strip = if self.location.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.location.prefix)
        };
        retry(&self.retry, &self.describe, "list", prefix, || async {
            let store_prefix = (!full.is_empty()).then(|| StorePath::from(full));
            let metas: Vec<_> = self
                .store
                .list(store_prefix.as_ref())
                .try_collect()
                .await
                .map_err(|e| self.classify(prefix, e))?;
            let mut out: Vec<ObjectInfo> = metas
                .into_iter()
                .filter_map(|m| {
                    let key = m.location.to_string();
                    let name = key.strip_prefix(&strip)?.to_string();
                    validate_name(&name)
                        .is_ok()
                        .then_some(ObjectInfo { name, size: m.size })
                })
                .collect();
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<(), BackendError> {
        validate_name(name)?;
        // S3 DELETE succeeds on missing keys; stat first to report NotFound like the others.
        self.stat(name).await?;
        retry(&self.retry, &self.describe, "delete", name, || async {
            self.store
                .delete(&self.path(name))
                .await
                .map_err(|e| self.classify(name, e))
        })
        .await
    }

    async fn retain(&self, name: &str, retention: &crate::Retention) -> Result<(), BackendError> {
        self.put_retention(name, retention).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_use_prefix() {
        let loc = match crate::location::parse("s3:http://127.0.0.1:1/bkt/a/b") {
            Ok(Location::S3(l)) => l,
            other => panic!("{other:?}"),
        };
        let creds = S3Credentials {
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
        };
        let b = S3Backend::new(
            &loc,
            &creds,
            S3Options {
                region: "us-east-1".into(),
                multipart_threshold: Some(1),
                retry: RetryPolicy::default(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.key("data/x"), "a/b/data/x");
        assert_eq!(b.part_size, MIN_PART_SIZE);
        assert_eq!(b.describe(), "s3:http://127.0.0.1:1/bkt/a/b");
    }
}
