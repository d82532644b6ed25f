//! S3 Object Lock against SeaweedFS: a COMPLIANCE-locked version cannot be deleted, a normal
//! one can.

mod common;

use std::time::{Duration, SystemTime};

use common::{payload, Weed};
use lethe_backend::{Backend, BackendError, Location, Retention, RetentionMode, WriteOptions};
use rusty_s3::S3Action;

async fn delete_version(b: &lethe_backend::s3::S3Backend, name: &str, version: &str) -> u16 {
    let (bucket, creds, http) = b.signer();
    let key = b.key(name);
    let mut action = bucket.delete_object(Some(creds), &key);
    action.query_mut().insert("versionId", version.to_string());
    let url = action.sign(Duration::from_secs(600));
    let resp = http
        .delete(url)
        .send()
        .await
        .expect("delete version request");
    resp.status().as_u16()
}

async fn get_version(
    b: &lethe_backend::s3::S3Backend,
    name: &str,
    version: &str,
) -> (u16, Vec<u8>) {
    let (bucket, creds, http) = b.signer();
    let key = b.key(name);
    let mut action = bucket.get_object(Some(creds), &key);
    action.query_mut().insert("versionId", version.to_string());
    let url = action.sign(Duration::from_secs(600));
    let resp = http.get(url).send().await.expect("get version request");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// safeguard: 164.310(d)(2)(iv)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_locked_version_cannot_be_deleted() {
    let Some(weed) = Weed::start("compliance_locked_version_cannot_be_deleted") else {
        return;
    };
    weed.create_bucket("locked", true).await;
    let b = weed.backend("locked", "repo", 5 << 20);

    let locked = WriteOptions {
        overwrite: false,
        retention: Some(Retention {
            mode: RetentionMode::Compliance,
            retain_until: SystemTime::now() + Duration::from_secs(3600),
        }),
    };
    let data = payload(1, 1000);
    b.write("snapshots/locked", data.clone(), &locked)
        .await
        .expect("locked write");
    let v_locked = b
        .current_version("snapshots/locked")
        .await
        .expect("head")
        .expect("versioned bucket gives a version id");

    b.write(
        "snapshots/plain",
        payload(2, 1000),
        &WriteOptions::default(),
    )
    .await
    .expect("plain write");
    let v_plain = b
        .current_version("snapshots/plain")
        .await
        .expect("head")
        .expect("version id");

    // The locked version resists a permanent delete...
    let st = delete_version(&b, "snapshots/locked", &v_locked).await;
    assert_eq!(
        st, 403,
        "deleting a COMPLIANCE-locked version must be denied"
    );
    assert_eq!(
        b.read("snapshots/locked").await.expect("still readable"),
        data
    );

    // ...while the unlocked one is gone for good.
    let st = delete_version(&b, "snapshots/plain", &v_plain).await;
    assert!((200..300).contains(&st), "plain version delete gave {st}");
    assert!(b
        .read("snapshots/plain")
        .await
        .is_err_and(|e| e.is_not_found()));

    // A plain DELETE only adds a delete marker; the locked version stays retrievable.
    b.delete("snapshots/locked").await.expect("delete marker");
    assert!(b
        .read("snapshots/locked")
        .await
        .is_err_and(|e| e.is_not_found()));
    let (st, body) = get_version(&b, "snapshots/locked", &v_locked).await;
    assert_eq!(st, 200);
    assert_eq!(body, data.to_vec());

    // A multipart object gets retention too.
    let big = payload(3, 6 << 20);
    b.write("data/00/big", big, &locked)
        .await
        .expect("locked multipart write");
    let v_big = b
        .current_version("data/00/big")
        .await
        .expect("head")
        .expect("version");
    assert_eq!(delete_version(&b, "data/00/big", &v_big).await, 403);
}

#[tokio::test]
async fn retention_is_refused_where_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = lethe_backend::open(&Location::Local(dir.path().into()), &Default::default())
        .await
        .expect("open");
    let opts = WriteOptions {
        overwrite: false,
        retention: Some(Retention {
            mode: RetentionMode::Governance,
            retain_until: SystemTime::now(),
        }),
    };
    let r = b.write("config", payload(1, 10), &opts).await;
    assert!(matches!(r, Err(BackendError::Unsupported { .. })), "{r:?}");
    assert!(b.list("").await.expect("list").is_empty());
}
