//! The checked configuration: every value parsed, every default filled in,
//! every cross-field rule already enforced. What the daemon reads.

use crate::bay::Bay;
use lethe_alert::{Hostname, Label, RetryPolicy, Security};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole file.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`.
    pub server: Server,
    /// `[[bay]]`, in file order (the first matching bay wins).
    pub bays: Vec<Bay>,
    /// `[session]`.
    pub session: Session,
    /// `[auth]`.
    pub auth: Auth,
    /// `[tls]`: none means a self-signed certificate made on first start.
    pub tls: Option<TlsFiles>,
    /// `[controller]`: none means no front-panel controller.
    pub controller: Option<Controller>,
    /// `[[backup]]`.
    pub backups: Vec<BackupJob>,
    /// `[alerts]`.
    pub alerts: Alerts,
    /// `[audit]`.
    pub audit: Audit,
    /// `[breakglass]`.
    pub breakglass: BreakGlass,
    /// `[site]`.
    pub site: Site,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// HTTPS listen address.
    pub listen: SocketAddr,
}

/// `[session]`: automatic logoff (HIPAA §164.312(a)(2)(iii)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Logged off after this long without a user action (at most 15 minutes).
    pub idle_timeout: Duration,
    /// Logged off this long after login, active or not.
    pub absolute_lifetime: Duration,
}

/// Longest idle timeout accepted; longer values are clamped with a warning.
pub const MAX_IDLE: Duration = Duration::from_secs(15 * 60);

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// Password rules.
    pub password: PasswordPolicy,
}

/// Argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// Password rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters.
    pub min_length: u32,
    /// Lowest zxcvbn score (0–4).
    pub min_score: u8,
    /// Earlier passwords that may not be reused.
    pub history: u32,
    /// Extra refused passwords, one a line, besides the shipped breached list.
    pub deny_list: Option<PathBuf>,
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[controller]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// Serial device.
    pub port: PathBuf,
    /// Baud rate.
    pub baud: u32,
}

/// One `[[backup]]` job: the backup engine's own job description plus the
/// keys only the daemon uses.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupJob {
    /// The job's name, checked to be a [`Label`] (it appears in alerts).
    pub name: Label,
    /// The engine's job (schedule, source, retention, drills).
    pub job: lethe_backup::schedule::JobConfig,
    /// Alert when the newest good backup is older than this.
    pub max_age: Option<Duration>,
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alerts {
    /// Host name in alerts (default: the system's).
    pub host: Option<Hostname>,
    /// Retry schedule of every channel.
    pub retry: RetryPolicy,
    /// Webhooks.
    pub webhooks: Vec<WebhookConf>,
    /// The SMTP relay.
    pub smtp: Option<SmtpConf>,
}

/// One `[[alerts.webhook]]`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookConf {
    /// Channel name.
    pub name: Label,
    /// Checked URL (https, or http to loopback).
    pub url: String,
    /// HMAC key file.
    pub secret_file: Option<PathBuf>,
    /// CA to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Bound on one attempt.
    pub timeout: Duration,
}

/// Without the URL's path and query: they often hold a token.
impl std::fmt::Debug for WebhookConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = self.url.split('/').take(3).collect::<Vec<_>>().join("/");
        f.debug_struct("WebhookConf")
            .field("name", &self.name)
            .field("url", &format!("{origin}/…"))
            .field("secret_file", &self.secret_file)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `[alerts.smtp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConf {
    /// Channel name.
    pub name: Label,
    /// Relay host.
    pub host: String,
    /// Relay port (default by security).
    pub port: Option<u16>,
    /// Connection protection.
    pub security: Security,
    /// Login.
    pub username: Option<String>,
    /// Password file for `username`.
    pub password_file: Option<PathBuf>,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// CA to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Bound on one attempt.
    pub timeout: Duration,
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audit {
    /// Where signed checkpoints are pushed off the box.
    pub push: Option<AuditPush>,
}

/// `[audit.push]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPush {
    /// Target name (in alerts and logs when a push fails).
    pub name: Label,
    /// Checked webhook URL (https, or http to loopback), if any.
    pub url: Option<String>,
    /// Syslog collector, if any.
    pub syslog: Option<SyslogTarget>,
    /// HMAC key file for the webhook.
    pub secret_file: Option<PathBuf>,
    /// CA to trust instead of the system's (webhook).
    pub ca_file: Option<PathBuf>,
    /// Shortest time between two pushes to one target (appends in between
    /// are coalesced: the newest checkpoint wins).
    pub every: Duration,
    /// Bound on one attempt (webhook request, syslog send).
    pub timeout: Duration,
    /// Delay after the first failed push; doubles after each failure.
    pub retry_first: Duration,
    /// Longest delay between two attempts after failures.
    pub retry_max_delay: Duration,
    /// Failed pushes in a row (to one channel) that raise `audit_push_failed`.
    pub alert_after: u32,
}

/// A syslog collector: `udp://HOST:PORT` (RFC 5426) or `tcp://HOST:PORT`
/// (RFC 6587 octet counting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTarget {
    /// UDP or TCP.
    pub transport: SyslogTransport,
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One datagram per message.
    Udp,
    /// One connection per push, the message framed by octet counting.
    Tcp,
}

impl std::fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.transport {
            SyslogTransport::Udp => "udp",
            SyslogTransport::Tcp => "tcp",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl SyslogTarget {
    /// Parse `udp://HOST:PORT` or `tcp://HOST:PORT` (an IPv6 address in
    /// brackets).
    pub fn parse(s: &str) -> Result<SyslogTarget, String> {
        let (transport, rest) = if let Some(r) = s.strip_prefix("udp://") {
            (SyslogTransport::Udp, r)
        } else if let Some(r) = s.strip_prefix("tcp://") {
            (SyslogTransport::Tcp, r)
        } else {
            return Err("a syslog target is `udp://HOST:PORT` or `tcp://HOST:PORT`".into());
        };
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, p) = r
                .split_once("]:")
                .ok_or("an IPv6 syslog host is written `[ADDRESS]:PORT`")?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("`{h}` is not an IPv6 address"))?;
            (h, p)
        } else {
            let (h, p) = rest
                .rsplit_once(':')
                .ok_or("the syslog target needs a port (`HOST:PORT`)")?;
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            };
            if h.is_empty() || h.len() > 253 || !h.split('.').all(label_ok) {
                return Err(format!("`{h}` is not a host name or IP address"));
            }
            (h, p)
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{port}` is not a port (1-65535)"))?;
        Ok(SyslogTarget {
            transport,
            host: host.to_string(),
            port,
        })
    }
}

/// `[breakglass]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    /// Users alerted who may approve or deny a request.
    pub approvers: Vec<Label>,
    /// Granted after this long without an answer.
    pub wait: Duration,
    /// Length of the elevated session.
    pub lifetime: Duration,
}

/// `[site]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Where the appliance is (on certificates).
    pub location: Option<String>,
    /// Where the media come from (on certificates).
    pub media_source: Option<String>,
    /// Operator recorded when none is given (none: a wipe without one is refused).
    pub operator: Option<Operator>,
    /// False: a wipe with no operator at all is accepted.
    pub require_operator: bool,
}

/// An operator recorded on certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
}

/// NIST SP 800-88 level of a bay's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Verified overwrite.
    #[default]
    Clear,
    /// Drive-native sanitize chosen by the policy.
    Purge,
}

/// Method family (as `lethe wipe --method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The policy chooses.
    #[default]
    Auto,
    /// Software overwrite.
    Overwrite,
    /// ATA SECURITY ERASE UNIT.
    AtaSecureErase,
    /// ATA SANITIZE.
    AtaSanitize,
    /// NVMe Format NVM.
    NvmeFormat,
    /// NVMe Sanitize.
    NvmeSanitize,
    /// SCSI SANITIZE.
    ScsiSanitize,
}

/// Where the drive goes afterwards (as `lethe wipe --destination`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Destination {
    /// Reused in-house.
    Reuse,
    /// Returned to a lessor.
    ReturnToLessor,
    /// Destroyed.
    Destroy,
}
