//! Object Lock for the S3 backend.
//!
//! `object_store` cannot send Object Lock headers, so retention is set right after the upload
//! with `PutObjectRetention` (`PUT /bucket/key?retention`, XML body, Content-MD5), presigned by
//! `rusty-s3` (sans-IO SigV4) and sent with the reqwest client `object_store` already links.

use std::time::Duration;

use base64::Engine as _;
use md5::Digest as _;
use object_store::ObjectStoreExt;
use rusty_s3::{Bucket, Credentials, S3Action};

use super::S3Backend;
use crate::error::{AttemptError, BackendError, BoxError};
use crate::retry::retry;
use crate::{validate_name, Retention};

impl S3Backend {
    /// Sets Object Lock retention on the current version of `name` (`PutObjectRetention`).
    pub async fn put_retention(&self, name: &str, r: &Retention) -> Result<(), BackendError> {
        validate_name(name)?;
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            r.mode.as_str(),
            rfc3339(r.retain_until)
        );
        let md5 =
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()));
        let key = self.key(name);
        retry(&self.retry, &self.describe, "retention", name, || {
            let mut action = self
                .signer_bucket
                .put_object(Some(&self.signer_creds), &key);
            action.query_mut().insert("retention", "");
            action.headers_mut().insert("content-md5", md5.clone());
            let url = action.sign(Duration::from_secs(600));
            let req = self
                .http
                .put(url)
                .header("content-md5", md5.clone())
                .body(body.clone());
            async move {
                let resp = req
                    .send()
                    .await
                    // The presigned URL carries a signature: keep it out of error text.
                    .map_err(|e| AttemptError::Transient(Box::new(e.without_url())))?;
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = resp.text().await.unwrap_or_default();
                let msg: BoxError =
                    format!("PutObjectRetention returned {status}: {}", truncate(&text)).into();
                if status.is_server_error() {
                    Err(AttemptError::Transient(msg))
                } else {
                    Err(AttemptError::Fatal(self.failed("retention", name, msg)))
                }
            }
        })
        .await
    }

    /// Version id of the current version of `name` (None on unversioned buckets).
    pub async fn current_version(&self, name: &str) -> Result<Option<String>, BackendError> {
        validate_name(name)?;
        retry(&self.retry, &self.describe, "stat", name, || async {
            let meta = self
                .store
                .head(&self.path(name))
                .await
                .map_err(|e| self.classify(name, e))?;
            Ok(meta.version)
        })
        .await
    }

    /// The signing bucket and credentials, for callers (and tests) that need raw S3 calls such
    /// as creating a bucket or deleting a specific version.
    pub fn signer(&self) -> (&Bucket, &Credentials, &reqwest::Client) {
        (&self.signer_bucket, &self.signer_creds, &self.http)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Formats a time as RFC 3339 UTC with second precision (what S3 expects for RetainUntilDate).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant), valid for the whole u64-seconds range we can see.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // leap day 2000
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339(t), "2099-12-31T23:59:59Z");
    }
}
