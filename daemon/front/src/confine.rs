//! The front's own limits, set and checked before it serves anything:
//!
//! - it is not root (the worker starts it as the `lethe` user; started as
//!   root it refuses, as Proxmox's proxy does);
//! - it holds no capabilities (effective, permitted or ambient), read from
//!   `/proc/self/status`;
//! - `no_new_privs`: nothing it executes can gain privileges;
//! - it receives SIGTERM when its parent (the worker) dies, and exits if
//!   the worker is already gone, so no orphaned front serves a dead worker.

use nix::sys::signal::Signal;

/// Why the front refuses to serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfineError {
    /// Running as root.
    #[error("the front refuses to run as root: it is started by `lethe serve` as the unprivileged user (default `lethe`)")]
    Root,
    /// Capabilities were found.
    #[error("the front holds capabilities ({0}); it must run with none")]
    Capabilities(String),
    /// A limit could not be set.
    #[error("cannot set {what}: {errno}")]
    Prctl {
        /// Which.
        what: &'static str,
        /// Why.
        errno: nix::errno::Errno,
    },
    /// The parent is gone already.
    #[error("the worker that started the front is gone")]
    Orphaned,
}

/// The capability sets of `/proc/self/status` that are not empty.
pub fn capabilities(status: &str) -> Vec<String> {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let v = v.trim();
            (matches!(k, "CapEff" | "CapPrm" | "CapAmb") && u64::from_str_radix(v, 16) != Ok(0))
                .then(|| format!("{k} {v}"))
        })
        .collect()
}

/// Apply and check the front's limits.
pub fn confine() -> Result<(), ConfineError> {
    if nix::unistd::geteuid().is_root() || nix::unistd::getuid().is_root() {
        return Err(ConfineError::Root);
    }
    let parent = nix::unistd::getppid();
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(|errno| ConfineError::Prctl {
        what: "the parent-death signal",
        errno,
    })?;
    if nix::unistd::getppid() != parent {
        return Err(ConfineError::Orphaned);
    }
    nix::sys::prctl::set_no_new_privs().map_err(|errno| ConfineError::Prctl {
        what: "no_new_privs",
        errno,
    })?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = capabilities(&status);
    if !caps.is_empty() {
        return Err(ConfineError::Capabilities(caps.join(", ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets_are_read_from_proc_status() {
        let none = "Name:\tlethe\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n";
        assert!(capabilities(none).is_empty());
        let root = none.replace("CapEff:\t0000000000000000", "CapEff:\t000001ffffffffff");
        assert_eq!(capabilities(&root), ["CapEff 000001ffffffffff"]);
        // The bounding set alone gives nothing; garbage counts as held.
        assert_eq!(capabilities("CapPrm:\tzz\n"), ["CapPrm zz"]);
    }
}
