//! The shared conformance body against every backend, each on a real server.

mod common;

use std::time::Instant;

use common::{conformance, fast_retry, Sshd, Weed};
use lethe_backend::{open, Backend, BackendConfig, Location};
use rusty_s3::S3Action;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loc = Location::Local(dir.path().join("repo"));
    let b = open(&loc, &BackendConfig::default())
        .await
        .expect("open local");
    let t = Instant::now();
    conformance(b.as_ref(), 1100, 3 << 20).await;
    println!("local conformance: {:?}", t.elapsed());
    // No temporary files are left behind anywhere.
    let leftovers = walk(&dir.path().join("repo"))
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .count();
    assert_eq!(leftovers, 0);
}

fn walk(p: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            out.push(path.display().to_string());
            if path.is_dir() {
                out.extend(walk(&path));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_conformance() {
    let Some(weed) = Weed::start("s3_conformance") else {
        return;
    };
    weed.create_bucket("conformance", false).await;
    // Through the URL parser and open(), as the CLI will do it.
    let url = format!("s3:{}/conformance/lethe/repo1", weed.endpoint());
    let loc: Location = url.parse().expect("parse s3 url");
    let cfg = BackendConfig {
        s3: Some(Weed::creds()),
        s3_multipart_threshold: Some(5 << 20),
        retry: fast_retry(),
        ..BackendConfig::default()
    };
    let b = open(&loc, &cfg).await.expect("open s3");
    assert_eq!(b.describe(), url);
    let t = Instant::now();
    // 1100 objects > 1000 per ListObjectsV2 page; 12 MiB = 3 multipart parts of 5 MiB.
    conformance(b.as_ref(), 1100, 12 << 20).await;
    println!("s3 conformance: {:?}", t.elapsed());

    // The big object really went through multipart: its ETag is "<md5 of md5s>-<parts>".
    let s3 = weed.backend("conformance", "lethe/repo1", 5 << 20);
    s3.write(
        "data/ff/mp",
        common::payload(5, 12 << 20),
        &Default::default(),
    )
    .await
    .expect("multipart write");
    let (bucket, creds, http) = s3.signer();
    let url = bucket
        .head_object(Some(creds), &s3.key("data/ff/mp"))
        .sign(std::time::Duration::from_secs(60));
    let resp = http.head(url).send().await.expect("head");
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(etag.trim_matches('"').ends_with("-3"), "ETag {etag}");

    // Wrong credentials are a permanent error: reported at once, not retried.
    let bad = lethe_backend::s3::S3Backend::new(
        &weed.location("conformance", "lethe/repo1"),
        &lethe_backend::S3Credentials {
            access_key_id: common::ACCESS_KEY.into(),
            secret_access_key: "wrong-secret".into(),
        },
        lethe_backend::s3::S3Options {
            region: "us-east-1".into(),
            multipart_threshold: None,
            retry: fast_retry(),
        },
    )
    .expect("backend");
    let e = bad.read("data/ff/mp").await.expect_err("bad signature");
    assert!(
        matches!(e, lethe_backend::BackendError::Failed { attempts: 1, .. }),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sftp_conformance() {
    let Some(sshd) = Sshd::start("sftp_conformance") else {
        return;
    };
    let url = format!(
        "sftp:{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        sshd.repo_path("repo").display()
    );
    let loc: Location = url.parse().expect("parse sftp url");
    let cfg = BackendConfig {
        sftp: Some(sshd.config()),
        retry: fast_retry(),
        ..BackendConfig::default()
    };
    let b = open(&loc, &cfg).await.expect("open sftp");
    assert_eq!(b.describe(), url);
    let t = Instant::now();
    conformance(b.as_ref(), 300, 3 << 20).await;
    println!("sftp conformance: {:?}", t.elapsed());
}
