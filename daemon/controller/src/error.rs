//! Typed errors of the controller driver.
use lethe_proto::{FaultCode, NakReason, Refusal, Status};

/// Everything that can go wrong talking to the controller.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The serial port could not be opened.
    #[error("cannot open controller port {port}: {source}")]
    Open {
        /// Port path.
        port: String,
        /// Cause.
        #[source]
        source: tokio_serial::Error,
    },
    /// I/O error on the link.
    #[error("controller link I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The port closed (EOF).
    #[error("controller link closed")]
    Closed,
    /// No reply after all retransmissions.
    #[error("controller did not answer {what} after {tries} tries")]
    Timeout {
        /// Request name.
        what: &'static str,
        /// Sends made.
        tries: u8,
    },
    /// Firmware speaks another protocol version.
    #[error("controller protocol version {theirs}, this build speaks {ours}")]
    VersionMismatch {
        /// Our protocol version.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The firmware rejected a frame at the framing layer.
    #[error("controller rejected the frame: {0:?}")]
    Nak(NakReason),
    /// The firmware understood the request and refused it.
    #[error("controller refused: {0:?}")]
    Refused(Refusal),
    /// The reply did not fit the request.
    #[error("unexpected reply to {what}: {reply}")]
    UnexpectedReply {
        /// Request name.
        what: &'static str,
        /// Debug rendering of the reply.
        reply: String,
    },
    /// A degauss cycle ended with a fault instead of completing.
    #[error("degauss cycle {cycle} did not complete: fault {fault:?}")]
    CycleFaulted {
        /// Cycle number the firmware assigned.
        cycle: u32,
        /// The latched fault.
        fault: Option<FaultCode>,
        /// Last status seen.
        status: Box<Status>,
    },
    /// Could not connect within the configured attempts.
    #[error("controller not reachable on {port} after {attempts} attempts: {last}")]
    Unreachable {
        /// Port path.
        port: String,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        last: Box<ControllerError>,
    },
}
