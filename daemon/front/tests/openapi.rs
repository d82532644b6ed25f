//! The OpenAPI document: generated from the code, complete against the
//! route table, and committed (`docs/api/openapi.json`); the route table
//! of `docs/api.md` is generated from the same table. Both fail on drift:
//! `LETHE_UPDATE_OPENAPI=1 cargo test -p lethe-front openapi` rewrites
//! them.

use lethe_front::api::openapi;
use lethe_front::api::routes::{self, PUBLIC, ROUTES};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

const REGENERATE: &str = "LETHE_UPDATE_OPENAPI=1 cargo test -p lethe-front openapi";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn update() -> bool {
    std::env::var_os("LETHE_UPDATE_OPENAPI").is_some()
}

fn doc() -> Value {
    serde_json::from_str(&openapi::json()).unwrap()
}

#[test]
fn openapi_document_is_committed() {
    let now = openapi::json();
    let path = repo("docs/api/openapi.json");
    if update() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "{} differs from the document the code generates; regenerate it with\n    {REGENERATE}",
        path.display()
    );
}

#[test]
fn every_route_is_documented_with_its_privilege() {
    let doc = doc();
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(
                op["x-lethe-privilege"].is_string(),
                "{method} {path} has no x-lethe-privilege"
            );
        }
    }
    let table: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, table, "the document and the route table differ");
    for r in ROUTES {
        let op = &paths[r.path][r.method.as_str().to_lowercase()];
        assert_eq!(op["x-lethe-privilege"], r.privilege, "{}", r.path);
        let secured = op["security"].as_array().is_some_and(|s| {
            !s.is_empty() && s.iter().all(|req| !req.as_object().unwrap().is_empty())
        });
        if r.privilege == PUBLIC {
            assert!(!secured, "{} is public but asks for credentials", r.path);
        } else {
            assert!(
                secured,
                "{} needs {} but declares no security",
                r.path, r.privilege
            );
            // Every guarded route can answer 401 and 403 in the one error shape.
            for status in ["401", "403"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{} {} lacks a {status} response",
                    r.method.as_str(),
                    r.path
                );
            }
        }
    }
}

#[test]
fn the_route_table_of_api_md_is_generated() {
    const BEGIN: &str = "<!-- routes:begin (generated from daemon/front/src/api/routes.rs) -->\n";
    const END: &str = "<!-- routes:end -->";
    let path = repo("docs/api.md");
    let text = std::fs::read_to_string(&path).expect("docs/api.md");
    let (head, rest) = text
        .split_once(BEGIN)
        .expect("docs/api.md lacks the routes:begin marker");
    let (_, tail) = rest
        .split_once(END)
        .expect("docs/api.md lacks the routes:end marker");
    let now = format!("{head}{BEGIN}{}{END}{tail}", routes::markdown());
    if update() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    assert!(
        text == now,
        "the route table of docs/api.md differs from the code; regenerate it with\n    {REGENERATE}"
    );
}
