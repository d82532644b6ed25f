//! Where the sockets are, relative to the runtime directory
//! (`--runtime-dir` / `LETHE_RUNTIME_DIR`, default [`DEFAULT_RUNTIME_DIR`]).

/// The default runtime directory (created by the worker, `0750 root:lethe`).
pub const DEFAULT_RUNTIME_DIR: &str = "/run/lethe";
/// The worker socket (`0660 root:lethe`).
pub const WORKER_SOCKET: &str = "worker.sock";
/// The admin socket (`0600 root`).
pub const ADMIN_SOCKET: &str = "admin.sock";
/// The front's own directory (`0750 lethe:lethe`).
pub const FRONT_DIR: &str = "front";
/// The front's local API socket (`0660 lethe:lethe`).
pub const API_SOCKET: &str = "front/api.sock";
