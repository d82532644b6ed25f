//! The file as written: serde structs with spans where a later check needs
//! to point at a value. Values whose own syntax is wrong (a duration, a name,
//! an address) fail here, at their position; checks across fields live in
//! `build`. Every table refuses unknown keys.

use lethe_alert::{Hostname, Label};
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use toml::Spanned;

/// A duration written as text: `"30s"`, `"10m"`, `"6h"`, `"1h 30m"`, `"2d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"30s\", \"10m\" or \"6h\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
                humantime::parse_duration(s).map(Dur).map_err(|e| {
                    E::custom(format!(
                        "invalid duration {s:?} ({e}): write a number and a unit, e.g. \"30s\", \"10m\", \"6h\", \"1h 30m\""
                    ))
                })
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{n}s\", \"{n}m\" or \"{n}h\" (in quotes)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value written as text and parsed by its `FromStr` (pattern, verify mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<T>(pub T);

impl<'de, T: FromStr> Deserialize<'de> for Text<T>
where
    T::Err: std::fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        T::from_str(&s).map(Text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub bay: Vec<Spanned<RawBay>>,
    #[serde(default)]
    pub session: RawSession,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub tls: Option<Spanned<RawTls>>,
    #[serde(default)]
    pub controller: Option<Spanned<RawController>>,
    /// Checked entry by entry against the backup engine's job type (`backup.rs`);
    /// named here so that it counts as a known key.
    #[serde(default, rename = "backup")]
    pub _backup: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub alerts: RawAlerts,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub breakglass: RawBreakglass,
    #[serde(default)]
    pub site: RawSite,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawPolicy {
    Ask,
    Auto,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBay {
    pub name: Spanned<Label>,
    #[serde(rename = "match")]
    pub rules: Spanned<Vec<Spanned<String>>>,
    pub led: Option<Spanned<u8>>,
    pub policy: Spanned<RawPolicy>,
    pub level: Option<crate::Level>,
    pub method: Option<crate::Method>,
    pub pattern: Option<Text<lethe_core::pattern::Pattern>>,
    pub passes: Option<Spanned<u32>>,
    pub verify: Option<Spanned<Text<lethe_core::plan::VerifyMode>>>,
    pub destination: Option<crate::Destination>,
    pub operator_id: Option<Spanned<String>>,
    pub operator_name: Option<Spanned<String>>,
    pub location: Option<Spanned<String>>,
    pub media_source: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    pub idle_timeout: Option<Spanned<Dur>>,
    pub absolute_lifetime: Option<Spanned<Dur>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub argon2: Option<Spanned<RawArgon2>>,
    #[serde(default)]
    pub password: RawPassword,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArgon2 {
    pub memory_kib: Option<Spanned<u32>>,
    pub iterations: Option<Spanned<u32>>,
    pub parallelism: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassword {
    pub min_length: Option<Spanned<u32>>,
    pub min_score: Option<Spanned<u8>>,
    pub history: Option<Spanned<u32>>,
    pub deny_list: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawController {
    pub port: Spanned<String>,
    pub baud: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub host: Option<Hostname>,
    pub retry_first: Option<Spanned<Dur>>,
    pub retry_max_delay: Option<Spanned<Dur>>,
    pub retry_attempts: Option<Spanned<u32>>,
    #[serde(default)]
    pub webhook: Vec<Spanned<RawWebhook>>,
    pub smtp: Option<Spanned<RawSmtp>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: Spanned<Label>,
    pub url: Spanned<String>,
    pub secret_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<Spanned<Dur>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawSecurity {
    Starttls,
    Tls,
    Plain,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub name: Option<Spanned<Label>>,
    pub host: Spanned<String>,
    pub port: Option<u16>,
    pub security: Option<RawSecurity>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: Spanned<String>,
    pub to: Spanned<Vec<String>>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<Spanned<Dur>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub push: Option<Spanned<RawPush>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    pub name: Option<Label>,
    pub url: Option<Spanned<String>>,
    pub syslog: Option<Spanned<String>>,
    pub secret_file: Option<Spanned<PathBuf>>,
    pub ca_file: Option<Spanned<PathBuf>>,
    pub every: Option<Spanned<Dur>>,
    pub timeout: Option<Spanned<Dur>>,
    pub retry_first: Option<Spanned<Dur>>,
    pub retry_max_delay: Option<Spanned<Dur>>,
    pub alert_after: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreakglass {
    #[serde(default)]
    pub approvers: Vec<Spanned<Label>>,
    pub wait: Option<Spanned<Dur>>,
    pub lifetime: Option<Spanned<Dur>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub location: Option<Spanned<String>>,
    pub media_source: Option<Spanned<String>>,
    pub operator_id: Option<Spanned<String>>,
    pub operator_name: Option<Spanned<String>>,
    pub require_operator: Option<bool>,
}
