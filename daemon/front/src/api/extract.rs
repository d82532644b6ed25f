//! What a handler takes from a request: the caller ([`Who`]) and the
//! checked JSON body, query and path ([`Body`], [`Q`], [`P`]), each
//! refusing with the API's error shape.
//!
//! The caller is what the client presented, unjudged: the session cookie
//! (`__Host-lethe_session`) or an API token (`Authorization: Bearer …`),
//! the peer's IP address and whether the route is automatic polling (from
//! the route table). The worker decides who that is and what they may do.

use super::error::ApiError;
use super::routes::Route;
use axum::extract::{FromRequest, FromRequestParts, Json, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use lethe_wire::{Caller, Credential, Secret, Via, MAX_SECRET};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// The session cookie's name. `__Host-`: the browser accepts it only
/// `Secure`, without `Domain`, with `Path=/`, from this very host.
pub const SESSION_COOKIE: &str = "__Host-lethe_session";

/// The TCP peer of an HTTPS connection (set by the HTTPS server on every
/// request of the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The caller of an API request, as the worker receives it.
#[derive(Debug, Clone)]
pub struct Who(pub Caller);

impl Who {
    /// The credential presented, if any.
    pub fn credential(&self) -> Option<&Credential> {
        self.0.credential.as_ref()
    }
}

/// The credential of a request: a bearer token when an `Authorization`
/// header is present (then the cookie is not looked at), else the session
/// cookie, else none.
pub fn credential(headers: &HeaderMap) -> Result<Option<Credential>, ApiError> {
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    if let Some(v) = auth.next() {
        if auth.next().is_some() {
            return Err(ApiError::bad_request("more than one Authorization header"));
        }
        let bad = || {
            ApiError::new(
                lethe_wire::ErrorCode::Unauthenticated,
                "the Authorization header must be `Bearer <API token>`",
            )
        };
        let v = v.to_str().map_err(|_| bad())?;
        let (scheme, token) = v.split_once(' ').ok_or_else(bad)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
            return Err(bad());
        }
        return bounded(Credential::Token {
            secret: Secret(token.to_string()),
        })
        .map(Some);
    }
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name == SESSION_COOKIE && !value.is_empty() {
                    return bounded(Credential::Session {
                        token: Secret(value.to_string()),
                    })
                    .map(Some);
                }
            }
        }
    }
    Ok(None)
}

/// A credential longer than the worker accepts is no credential: refused
/// here rather than sent (the worker ends a connection that carries one).
fn bounded(c: Credential) -> Result<Credential, ApiError> {
    let (Credential::Session { token: s } | Credential::Token { secret: s }) = &c;
    if s.expose().len() > MAX_SECRET {
        return Err(ApiError::new(
            lethe_wire::ErrorCode::Unauthenticated,
            "not a valid session or API token",
        ));
    }
    Ok(c)
}

/// A state-changing request that carries the session cookie must come from
/// this origin. `SameSite=Strict` already keeps the cookie off cross-site
/// requests; this refuses a browser's request from another origin of the
/// same site too. Clients that send no `Origin` (curl, scripts) pass.
pub(crate) fn same_origin(parts: &Parts) -> Result<(), ApiError> {
    let refuse = || {
        ApiError::new(
            lethe_wire::ErrorCode::Forbidden,
            "a request from another origin may not use the session cookie",
        )
    };
    if let Some(site) = parts.headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(refuse());
        }
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()));
        let origin = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("https://"));
        match (origin, host) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => {}
            _ => return Err(refuse()),
        }
    }
    Ok(())
}

/// The client's address as the worker sees it (IPv4-mapped IPv6 addresses
/// as plain IPv4).
pub fn source_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ClientAddr>()
        .map(|a| a.0.ip().to_canonical())
}

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let route = parts.extensions.get::<&'static Route>().copied();
        let polling = route.is_some_and(|r| r.polling);
        // A public route (login, health) carries no credential: none is
        // needed, and a stale cookie must not stand in the way of logging
        // in again.
        let public = route.is_some_and(|r| r.privilege == super::routes::PUBLIC);
        let credential = if public {
            None
        } else {
            credential(&parts.headers)?
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && matches!(credential, Some(Credential::Session { .. })) {
            same_origin(parts)?;
        }
        Ok(Who(Caller {
            via: Via::Api,
            uid: None,
            credential,
            source: source_of(parts),
            polling,
        }))
    }
}

/// A JSON body (`Content-Type: application/json`, at most
/// [`super::MAX_BODY`] bytes, no unknown fields).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Body(v))
            .map_err(ApiError::from)
    }
}

/// A query string.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(ApiError::from)
    }
}

/// Path parameters.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| P(v))
            .map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Request as HttpRequest};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_and_the_bearer_token_are_told_apart() {
        assert_eq!(credential(&headers(&[])).unwrap(), None);
        assert_eq!(
            credential(&headers(&[(
                "cookie",
                "a=b; __Host-lethe_session=abc; c=d"
            )]))
            .unwrap(),
            Some(Credential::Session {
                token: Secret("abc".into())
            })
        );
        // A cookie of another name (without the __Host- prefix) is not it.
        assert_eq!(
            credential(&headers(&[("cookie", "lethe_session=abc")])).unwrap(),
            None
        );
        assert_eq!(
            credential(&headers(&[("authorization", "Bearer lethe_1_2")])).unwrap(),
            Some(Credential::Token {
                secret: Secret("lethe_1_2".into())
            })
        );
        // The header wins over the cookie.
        assert_eq!(
            credential(&headers(&[
                ("authorization", "bearer t"),
                ("cookie", "__Host-lethe_session=s")
            ]))
            .unwrap(),
            Some(Credential::Token {
                secret: Secret("t".into())
            })
        );
        for bad in ["Basic dXNlcjpwdw==", "Bearer", "Bearer ", "Bearer a b"] {
            let e = credential(&headers(&[("authorization", bad)])).unwrap_err();
            assert_eq!(e.status().as_u16(), 401, "{bad}");
        }
        let long = format!("Bearer {}", "x".repeat(MAX_SECRET + 1));
        assert_eq!(
            credential(&headers(&[("authorization", &long)]))
                .unwrap_err()
                .status()
                .as_u16(),
            401
        );
    }

    fn parts(pairs: &[(&'static str, &str)]) -> Parts {
        let mut b = HttpRequest::builder().method("POST").uri("/api/v1/logout");
        for (k, v) in pairs {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_this_origin_may_use_the_cookie_to_change_things() {
        assert!(same_origin(&parts(&[("host", "lethe.local:8443")])).is_ok());
        assert!(same_origin(&parts(&[
            ("host", "lethe.local:8443"),
            ("origin", "https://lethe.local:8443"),
            ("sec-fetch-site", "same-origin"),
        ]))
        .is_ok());
        for bad in [
            &[
                ("host", "lethe.local:8443"),
                ("origin", "https://evil.example"),
            ][..],
            &[
                ("host", "lethe.local:8443"),
                ("origin", "http://lethe.local:8443"),
            ],
            &[("host", "lethe.local:8443"), ("origin", "null")],
            &[
                ("host", "lethe.local:8443"),
                ("sec-fetch-site", "same-site"),
            ],
            &[
                ("host", "lethe.local:8443"),
                ("sec-fetch-site", "cross-site"),
            ],
        ] {
            assert_eq!(
                same_origin(&parts(bad)).unwrap_err().error().code,
                lethe_wire::ErrorCode::Forbidden,
                "{bad:?}"
            );
        }
    }
}
