//! The worker socket: how Lethe's unprivileged front talks to its
//! privileged worker.
//!
//! The worker owns the devices, the job library, the keys and the audit
//! log; the front serves the APIs. Between them runs this protocol, and only
//! this protocol: a closed, typed, versioned set of requests with typed
//! replies. The worker never executes forwarded HTTP, and nothing in a
//! request names a key, a file to open or a command to run.
//!
//! - [`frame`]: length-prefixed frames (sans-IO decoder, async and
//!   blocking readers);
//! - [`msg`]: the messages of `worker.sock` ([`ToWorker`], [`FromWorker`])
//!   and of the root-only `admin.sock` ([`ToAdmin`], [`FromAdmin`]);
//! - [`views`]: the plain data the replies carry;
//! - [`paths`]: where the sockets are in the runtime directory.
//!
//! The byte format, the version handshake, every request and test vectors
//! are in `docs/worker-socket.md` (the vectors are checked by
//! `tests/doc_vectors.rs`). Features: `tokio` (default) adds the async
//! frame reader and writer.
//!
//! ```
//! use lethe_wire::*;
//! let hello = encode(&ToWorker::Hello { version: VERSION });
//! assert_eq!(hello, br#"{"type":"hello","version":1}"#);
//! let mut d = FrameDecoder::new();
//! d.push(&frame(&hello));
//! let body = d.next_frame().unwrap().unwrap();
//! assert_eq!(ToWorker::decode(&body).unwrap(), ToWorker::Hello { version: 1 });
//! ```

pub mod auth;
pub mod frame;
pub mod msg;
pub mod paths;
pub mod views;

pub use auth::*;
pub use frame::{
    frame, read_frame_blocking, write_frame_blocking, FrameDecoder, FrameError, MAX_FRAME,
};
#[cfg(feature = "tokio")]
pub use frame::{read_frame, write_frame};
pub use msg::{
    decode, encode, AdminReply, AdminRequest, Caller, DecodeError, ErrorCode, FromAdmin,
    FromWorker, Reply, Request, ToAdmin, ToWorker, Via, WireError, MAX_NAME, MAX_SECRET, MAX_TEXT,
    VERSION,
};
pub use views::*;
