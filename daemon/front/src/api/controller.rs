//! The front-panel controller and degausser: its status as it answers now.

use super::extract::Who;
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use lethe_wire::{ControllerView, Reply, Request};

/// The controller's status, read from it now: relay (read back), feedback
/// contact, interlock, e-stop, latched fault, degausser state and cycles.
/// A configured controller that does not answer is `connected: false`
/// with the reason; none configured is `configured: false`.
#[utoipa::path(get, path = "/api/v1/controller", tag = "controller",
    responses((status = 200, description = "The controller", body = ControllerView)))]
pub async fn status(
    State(st): State<ApiState>,
    who: Who,
) -> Result<Json<ControllerView>, ApiError> {
    match ask(&st, &who, Request::Controller {}).await? {
        Reply::Controller { controller } => Ok(Json(controller)),
        other => Err(unexpected(&other)),
    }
}
