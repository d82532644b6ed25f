//! Standard output that a closed pipe cannot crash.
//!
//! `println!` panics when stdout is a pipe whose reader went away
//! (`lethe jobs | head -1`). Every command prints through [`outln!`] and
//! [`out!`] instead: the first failed write (EPIPE, or any other error)
//! marks stdout closed and later output is dropped, so the command still
//! finishes its work and exits with its own code, quietly. A job whose
//! progress nobody reads any more still runs to its certificate.
//!
//! Code that still uses `println!` (and clap's own output) is covered by the
//! panic hook in `main`: a panic from a failed stdout write ends the process
//! quietly with [`crate::exit::PIPE_CLOSED`] instead of a backtrace.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write `args` (and a newline with `newline`) to stdout and flush, unless
/// stdout is closed.
pub fn write(args: fmt::Arguments<'_>, newline: bool) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let r = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if r.is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether a write to stdout failed (its reader is gone).
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// `println!` for stdout that tolerates a closed pipe.
macro_rules! outln {
    () => {
        $crate::out::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), true)
    };
}

/// `print!` for stdout that tolerates a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), false)
    };
}
