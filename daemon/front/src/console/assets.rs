//! The console's script and style sheet, built into the binary.
//!
//! Each is served under a name carrying a hash of its content
//! (`console.<hash>.js`), so it can be cached for a year: a new build with
//! a changed file has a new name, and the pages name the new one.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One built-in file.
#[derive(Debug)]
pub struct Asset {
    /// Its name without the hash (`console.js`).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
    /// FNV-1a of the bytes: part of the served name.
    pub tag: u64,
}

/// FNV-1a, 64 bits: a `const fn`, so the served names are fixed at build
/// time. Not a security measure: only a cache key.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! asset {
    ($name:literal, $type:literal) => {{
        const BODY: &str = include_str!(concat!("../../assets/", $name));
        Asset {
            name: $name,
            content_type: $type,
            body: BODY,
            tag: fnv1a(BODY.as_bytes()),
        }
    }};
}

/// Every built-in file.
pub const ASSETS: &[Asset] = &[
    asset!("console.js", "text/javascript; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
];

impl Asset {
    /// The name it is served under: `console.<hash>.js`.
    pub fn served_name(&self) -> String {
        match self.name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.{:016x}.{ext}", self.tag),
            None => format!("{}.{:016x}", self.name, self.tag),
        }
    }

    /// Its URL path.
    pub fn href(&self) -> String {
        format!("/console/assets/{}", self.served_name())
    }
}

/// The URL path of the built-in file `name`.
pub fn href(name: &str) -> String {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or_else(String::new, Asset::href)
}

/// `GET /console/assets/{file}`: only the current names; an old name is a
/// 404 (a page naming it is from an older build and will be reloaded).
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.served_name() == file) {
        Some(a) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            a.body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such file",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_names_carry_the_content_hash() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let js = &ASSETS[0];
        assert_eq!(js.served_name(), format!("console.{:016x}.js", js.tag));
        assert_eq!(href("console.css"), ASSETS[1].href());
    }
}
