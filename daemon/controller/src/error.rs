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
    /// The firmware is a simulation build (its inputs are set over the link); this host is not
    /// configured to fire one (only tests are).
    #[error(
        "the controller runs a simulation build (inputs settable over the link): refusing to arm \
         or fire it outside tests"
    )]
    SimulationBuild,
    /// The operator's confirmation did not match, or belongs to another medium than the arm.
    #[error("not confirmed: {0}")]
    NotConfirmed(String),
    /// No answer to a `Fire` after every retransmission. The driver then sent `Abort` and read the
    /// status; whether the pulse ran is not known, so the cycle counts as failed.
    #[error(
        "no answer to Fire after {tries} tries; sent Abort ({abort}); status afterwards: {status:?}"
    )]
    FireUnconfirmed {
        /// Sends of the Fire.
        tries: u8,
        /// What became of the Abort.
        abort: String,
        /// The status read after the Abort, if it could be read.
        status: Option<Box<Status>>,
    },
    /// The firmware reported a completed cycle whose measured length does not fit the commanded
    /// one (the feedback contact saw a shorter or longer energization).
    #[error(
        "degauss cycle {cycle}: measured {measured_ms} ms energized, commanded {commanded_ms} ms"
    )]
    CycleMismatch {
        /// Cycle number.
        cycle: u32,
        /// Relay-on time commanded.
        commanded_ms: u32,
        /// Energized time measured on the feedback contact.
        measured_ms: u32,
    },
    /// The controller answered, but the degausser cannot run a cycle now (see
    /// [`crate::Controller::ready`]).
    #[error("{0}")]
    NotReady(String),
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
