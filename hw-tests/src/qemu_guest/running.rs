//! A booted guest: console markers, QMP, USB hot-plug, and QEMU's lifetime.

use super::{make_backing, DiskSpec, GuestError};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// A running guest; QEMU is killed (by its handle) on drop and the temp dir removed.
pub struct Guest {
    pub(super) child: Child,
    pub(super) started: Instant,
    pub(super) console: PathBuf,
    pub(super) qmp_path: PathBuf,
    pub(super) qmp: Option<(UnixStream, BufReader<UnixStream>)>,
    pub(super) disks: BTreeMap<String, PathBuf>,
    pub(super) xhci: bool,
    pub(super) dir: tempfile::TempDir,
}

/// Contents of every `@@NAME ...@@` marker in `text`, in order
/// (`@@NAME@@` gives an empty string).
pub fn markers(text: &str, name: &str) -> Vec<String> {
    let open = format!("@@{name}");
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line.trim_end_matches('\r');
        while let Some(i) = rest.find(&open) {
            let after = &rest[i + open.len()..];
            if let Some(r) = after.strip_prefix("@@") {
                out.push(String::new());
                rest = r;
                continue;
            }
            // `@@NAMEX`: another marker whose name starts with this one.
            let Some(body) = after.strip_prefix(' ') else {
                rest = after;
                continue;
            };
            let Some(end) = body.find("@@") else {
                break;
            };
            out.push(body[..end].to_string());
            rest = &body[end + 2..];
        }
    }
    out
}

/// `key=value` words of a marker body.
pub fn fields(body: &str) -> BTreeMap<String, String> {
    body.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Guest {
    /// Seconds since QEMU started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The serial console so far.
    pub fn console(&self) -> String {
        std::fs::read(&self.console)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Host path of the backing file of drive `id` (as given to the builder).
    pub fn disk(&self, id: &str) -> Option<&Path> {
        self.disks.get(id).map(PathBuf::as_path)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Wait for the first `@@NAME ...@@` marker whose body satisfies `pred`.
    pub fn wait_for(
        &mut self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, GuestError> {
        let start = Instant::now();
        loop {
            // Read before checking for exit, so a last marker is never missed.
            let gone = self.exited();
            let text = self.console();
            if let Some(m) = markers(&text, name).into_iter().find(|m| pred(m)) {
                return Ok(m);
            }
            let what = format!("marker @@{name}@@");
            if gone {
                return Err(GuestError::Exited {
                    what,
                    console: text,
                });
            }
            if start.elapsed() > timeout {
                return Err(GuestError::Timeout {
                    what,
                    secs: timeout.as_secs_f64(),
                    console: text,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for the first `@@NAME ...@@` marker and return its body.
    pub fn wait_marker(&mut self, name: &str, timeout: Duration) -> Result<String, GuestError> {
        self.wait_for(name, timeout, |_| true)
    }

    /// Wait for QEMU to exit (the script ended and `/init` powered off);
    /// the console. QEMU is killed when `timeout` passes first.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<String, GuestError> {
        let start = Instant::now();
        while !self.exited() {
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(GuestError::Timeout {
                    what: "the guest to power off".into(),
                    secs: timeout.as_secs_f64(),
                    console: self.console(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(self.console())
    }

    /// The script's exit status from `@@DONE rc=N@@`, if it finished.
    pub fn script_rc(&self) -> Option<i32> {
        markers(&self.console(), "DONE")
            .first()
            .and_then(|b| fields(b).get("rc").and_then(|r| r.parse().ok()))
    }

    fn qmp_conn(&mut self) -> Result<&mut (UnixStream, BufReader<UnixStream>), GuestError> {
        if self.qmp.is_none() {
            let start = Instant::now();
            let stream = loop {
                match UnixStream::connect(&self.qmp_path) {
                    Ok(s) => break s,
                    Err(e) if start.elapsed() > Duration::from_secs(10) => {
                        return Err(GuestError::Qmp(format!("connect: {e}")))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let reader = BufReader::new(
                stream
                    .try_clone()
                    .map_err(|e| GuestError::Qmp(e.to_string()))?,
            );
            let mut conn = (stream, reader);
            let mut greeting = String::new();
            conn.1
                .read_line(&mut greeting)
                .map_err(|e| GuestError::Qmp(format!("greeting: {e}")))?;
            self.qmp = Some(conn);
            self.qmp(serde_json::json!({"execute": "qmp_capabilities"}))?;
        }
        self.qmp
            .as_mut()
            .ok_or_else(|| GuestError::Qmp("not connected".into()))
    }

    /// Send one QMP command; its `return` value, or its error as `Err`.
    /// Asynchronous events in between are skipped.
    pub fn qmp(&mut self, cmd: serde_json::Value) -> Result<serde_json::Value, GuestError> {
        let conn = self.qmp_conn()?;
        let line = format!("{cmd}\n");
        conn.0
            .write_all(line.as_bytes())
            .map_err(|e| GuestError::Qmp(format!("send {cmd}: {e}")))?;
        loop {
            let mut resp = String::new();
            let n = conn
                .1
                .read_line(&mut resp)
                .map_err(|e| GuestError::Qmp(format!("reply to {cmd}: {e}")))?;
            if n == 0 {
                return Err(GuestError::Qmp(format!("QEMU closed QMP during {cmd}")));
            }
            let v: serde_json::Value = serde_json::from_str(&resp)
                .map_err(|e| GuestError::Qmp(format!("bad reply {resp:?}: {e}")))?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(GuestError::Qmp(format!("{cmd} failed: {e}")));
            }
        }
    }

    /// Hot-add a USB stick `id` over a new backing file `<dir>/<id>.raw`
    /// (`blockdev-add` + `device_add usb-storage`).
    pub fn usb_attach(&mut self, id: &str, spec: &DiskSpec) -> Result<PathBuf, GuestError> {
        if !self.xhci {
            return Err(GuestError::Qmp(
                "no xHCI controller: call GuestBuilder::xhci()".into(),
            ));
        }
        let path = self.dir.path().join(format!("{id}.raw"));
        make_backing(&path, spec)?;
        self.disks.insert(id.into(), path.clone());
        self.qmp(serde_json::json!({
            "execute": "blockdev-add",
            "arguments": {
                "driver": "raw",
                "node-name": id,
                "discard": "unmap",
                "file": {"driver": "file", "filename": path.display().to_string()}
            }
        }))?;
        self.qmp(serde_json::json!({
            "execute": "device_add",
            "arguments": {
                "driver": "usb-storage",
                "id": format!("{id}-dev"),
                "drive": id,
                "bus": "xhci.0",
                "serial": spec.serial,
                "removable": spec.removable,
            }
        }))?;
        Ok(path)
    }

    /// Unplug USB stick `id` (`device_del`); its backing file stays.
    pub fn usb_detach(&mut self, id: &str) -> Result<(), GuestError> {
        self.qmp(serde_json::json!({
            "execute": "device_del",
            "arguments": {"id": format!("{id}-dev")}
        }))
        .map(|_| ())
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_between_at_signs() {
        let text = "noise @@A x=1 y=2@@ more @@AB no@@\r\n@@A@@\n@@A unterminated\n@@A z@@";
        assert_eq!(markers(text, "A"), vec!["x=1 y=2", "", "z"]);
        assert_eq!(markers(text, "AB"), vec!["no"]);
        assert_eq!(
            fields("x=1 y=2 junk").get("y").map(String::as_str),
            Some("2")
        );
    }
}
