//! Checkpoints as syslog messages (RFC 5424), over UDP (RFC 5426) or TCP
//! with octet counting (RFC 6587 §3.4.1).
//!
//! A signed note has newlines and a non-ASCII em dash, which relays and
//! collectors mangle (newline as a record separator, escaping, re-encoding),
//! so the message carries it base64-encoded: the MSG part is
//!
//! ```text
//! lethe-audit-checkpoint-v1 <tree size> <base64(note)>
//! ```
//!
//! ASCII only, one line; `awk '{print $NF}' | base64 -d` gives back the
//! exact note. The header says who and when: PRI 110 (facility 13, "log
//! audit"; severity 6, informational), the push time, the appliance's host
//! name, APP-NAME `lethe`, MSGID `checkpoint`, no structured data.

use lethe_alert::{Detail, Timestamp};
use lethe_config::{SyslogTarget, SyslogTransport};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Facility 13 (log audit) × 8 + severity 6 (informational).
pub const PRI: u8 = 110;

/// First word of the message, naming the format.
pub const TAG: &str = "lethe-audit-checkpoint-v1";

/// The RFC 5424 message for the checkpoint `note` of `size` entries, pushed
/// by `host` at `at`.
pub fn message(host: &str, at: Timestamp, size: u64, note: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(note.as_bytes());
    // RFC 5424 §6.2.4: HOSTNAME is 1-255 printable ASCII characters.
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let host = if host.is_empty() { "-".into() } else { host };
    format!("<{PRI}>1 {at} {host} lethe - checkpoint - {TAG} {size} {b64}")
}

/// RFC 6587 octet-counting frame: `MSG-LEN SP SYSLOG-MSG`.
pub fn octet_counted(msg: &str) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

/// The note carried by a message built by [`message`] (what a receiver
/// does; used by the tests).
pub fn note_of(msg: &str) -> Option<String> {
    use base64::Engine as _;
    let body = msg.split_once(&format!(" {TAG} "))?.1;
    let (_, b64) = body.split_once(' ')?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim_end())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Send `msg` to `target`, within `timeout`. UDP has no answer: a datagram
/// handed to the kernel counts as delivered (use TCP to learn of a
/// collector that is down).
pub async fn send(target: &SyslogTarget, msg: &str, timeout: Duration) -> Result<(), Detail> {
    tokio::time::timeout(timeout, send_inner(target, msg))
        .await
        .map_err(|_| Detail::Timeout)?
}

async fn send_inner(target: &SyslogTarget, msg: &str) -> Result<(), Detail> {
    let addrs: Vec<_> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|_| Detail::Connect)?
        .collect();
    let addr = *addrs.first().ok_or(Detail::Connect)?;
    match target.transport {
        SyslogTransport::Udp => {
            let local = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let sock = tokio::net::UdpSocket::bind(local)
                .await
                .map_err(|_| Detail::Transport)?;
            sock.send_to(msg.as_bytes(), addr)
                .await
                .map_err(|_| Detail::Connect)?;
        }
        SyslogTransport::Tcp => {
            let mut s = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|_| Detail::Connect)?;
            s.write_all(&octet_counted(msg))
                .await
                .map_err(|_| Detail::Transport)?;
            s.shutdown().await.map_err(|_| Detail::Transport)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "lethe/audit/56475aa75463474c\n3\nw9jlNG9oD/wMBn0m9iDOqQiQxZRku8KCvEMiLb9BypQ=\n\n\u{2014} lethe/audit/56475aa75463474c kXcelebeVsjQpm2YJvWva9NeCA9NSWpSQHjbcDLpvnIGO+GaQ1BRBWcZeadKmTLqM+7aG6+1WkRqU8WjxNVqBH1NJgQ=\n";

    /// The syslog vector of docs/audit-log.md §10 (checkpoint-3 of §11
    /// pushed by lethe-01 at 2026-11-23T15:20:05Z).
    /// safeguard: 164.312(b)
    #[test]
    fn the_message_carries_the_exact_note_on_one_ascii_line() {
        let at = Timestamp::try_from("2026-11-23T15:20:05Z".to_string()).unwrap();
        let m = message("lethe-01", at, 3, NOTE);
        assert_eq!(m, crate::push::tests::doc_vector("syslog"));
        assert!(m.is_ascii() && !m.contains('\n'));
        assert_eq!(note_of(&m).as_deref(), Some(NOTE));
        // Well under the 480 octets every RFC 5426 receiver must accept.
        assert!(m.len() < 480, "{}", m.len());
    }

    #[test]
    fn octet_counting_prefixes_the_byte_length() {
        assert_eq!(octet_counted("<110>1 x"), b"8 <110>1 x".to_vec());
        let m = message("h", Timestamp::from_unix(0), 0, NOTE);
        let f = octet_counted(&m);
        let (len, rest) = f.split_at(f.iter().position(|b| *b == b' ').unwrap());
        assert_eq!(
            std::str::from_utf8(len).unwrap().parse::<usize>().unwrap(),
            rest.len() - 1
        );
    }

    #[test]
    fn a_host_name_is_kept_printable() {
        let m = message("bad host\n", Timestamp::from_unix(0), 1, "x");
        assert!(
            m.starts_with("<110>1 1970-01-01T00:00:00Z badhost lethe "),
            "{m}"
        );
        let m = message("", Timestamp::from_unix(0), 1, "x");
        assert!(m.contains("Z - lethe "), "{m}");
    }

    #[tokio::test]
    async fn udp_and_tcp_deliver_the_message() {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let t = SyslogTarget {
            transport: SyslogTransport::Udp,
            host: "127.0.0.1".into(),
            port: udp.local_addr().unwrap().port(),
        };
        send(&t, "<110>1 hello", Duration::from_secs(5))
            .await
            .unwrap();
        let mut buf = [0u8; 100];
        let n = udp.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"<110>1 hello");

        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = SyslogTarget {
            transport: SyslogTransport::Tcp,
            host: "127.0.0.1".into(),
            port: tcp.local_addr().unwrap().port(),
        };
        let rx = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let (mut s, _) = tcp.accept().await.unwrap();
            let mut v = Vec::new();
            s.read_to_end(&mut v).await.unwrap();
            v
        });
        send(&t, "<110>1 hello", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(rx.await.unwrap(), b"12 <110>1 hello".to_vec());
    }

    #[tokio::test]
    async fn a_tcp_collector_that_is_down_is_a_retryable_failure() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = SyslogTarget {
            transport: SyslogTransport::Tcp,
            host: "127.0.0.1".into(),
            port,
        };
        let out = send(&t, "x", Duration::from_secs(5)).await;
        assert_eq!(out, Err(Detail::Connect));
    }
}
