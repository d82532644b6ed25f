//! Lethe controller link protocol, shared by the daemon (`lethe-controller`) and the firmware.
//!
//! Wire format (see `docs/protocol.md`): `COBS(postcard(Frame) ++ CRC-16/IBM-SDLC little-endian) ++ 0x00`.
//! Every host request carries a non-zero sequence number; the firmware answers with a frame that
//! carries the same number, and that answer is the acknowledgement. Sequence 0 is reserved for
//! unsolicited frames (a NAK for a frame too damaged to read its sequence number).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod frame;
pub mod msg;
pub mod session;
pub mod vectors;

pub use frame::{decode_frame, encode_frame, FrameDecoder, FrameError, MAX_FRAME, MAX_PAYLOAD};
pub use msg::*;
pub use session::{RetryAction, RetrySession};

/// Protocol version carried in [`Msg::Hello`]. Bump on any incompatible wire change.
pub const PROTOCOL_VERSION: u16 = 2;
