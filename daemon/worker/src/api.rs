//! The HTTPS API's requests in the worker: identity (login, sessions,
//! re-authentication, users, tokens, break-glass) through `lethe-auth`, and
//! the reads behind the API (certificates, audit log, keys). Every request
//! of the front is authorised here, against the privilege this module
//! assigns to it; the front's own route table only documents it.

use crate::daemon::Daemon;
use lethe_wire::{AdminReply, AdminRequest, Caller, ErrorCode, Reply, Request, WireError};
use std::sync::Arc;

fn err(code: ErrorCode, m: impl Into<String>) -> Reply {
    Reply::Error {
        error: WireError::new(code, m),
    }
}

/// Answer an API request.
pub async fn handle(_d: &Arc<Daemon>, _caller: Caller, _request: Request) -> Reply {
    err(ErrorCode::Unavailable, "not wired yet")
}

/// The TLS material, for the front's account (and root) only.
pub fn tls_for(_d: &Daemon, _peer_uid: u32) -> Reply {
    err(ErrorCode::Unavailable, "not wired yet")
}

/// User management on the admin socket.
pub async fn admin(_d: &Arc<Daemon>, _request: AdminRequest) -> AdminReply {
    AdminReply::Error {
        error: WireError::new(ErrorCode::Unavailable, "not wired yet"),
    }
}
