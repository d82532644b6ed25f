//! Repository locations, restic style, parsed in pure code.
//!
//! * local directory: `/srv/backup`, `relative/dir`, or `local:PATH` (needed when the path itself
//!   starts with `s3:`, `sftp:` or `local:`);
//! * S3: `s3:http://HOST[:PORT]/BUCKET[/PREFIX]` (`https://` too; without a scheme https is
//!   assumed), always path-style addressing;
//! * SFTP: `sftp:[USER@]HOST:PORT/ABS/PATH`, `sftp:[USER@]HOST:/ABS/PATH` (port 22) or
//!   `sftp:[USER@]HOST:REL/PATH` (relative to the login directory, port 22; write `./` in front
//!   of a relative path that starts with a digit). IPv6 hosts go in brackets: `[::1]`.
//!
//! `Display` prints the canonical form, and `parse(x.to_string()) == x` for every parsed `x`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed repository location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// An S3-compatible bucket (path-style).
    S3(S3Location),
    /// A directory on an SFTP server.
    Sftp(SftpLocation),
}

/// `s3:` location parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `http` or `https`.
    pub https: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// Bucket name (S3 naming rules).
    pub bucket: String,
    /// Key prefix inside the bucket, without leading/trailing '/'; may be empty.
    pub prefix: String,
}

/// `sftp:` location parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpLocation {
    /// Login user (None: ssh's default).
    pub user: Option<String>,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Directory: absolute (starts with '/') or relative to the login directory (then port 22).
    pub path: String,
}

/// Why a repository location was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid repository location {input:?}: {reason}")]
pub struct LocationError {
    /// The input (truncated to 200 characters).
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl S3Location {
    /// The endpoint URL, e.g. `http://127.0.0.1:8333`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", host_port(&self.host, self.port))
    }
}

fn host_port(host: &str, port: Option<u16>) -> String {
    let h = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match port {
        Some(p) => format!("{h}:{p}"),
        None => h,
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => {
                let s = p.to_string_lossy();
                if looks_like_scheme(&s) {
                    write!(f, "local:{s}")
                } else {
                    write!(f, "{s}")
                }
            }
            Location::S3(s3) => {
                write!(f, "s3:{}/{}", s3.endpoint(), s3.bucket)?;
                if !s3.prefix.is_empty() {
                    write!(f, "/{}", s3.prefix)?;
                }
                Ok(())
            }
            Location::Sftp(l) => {
                write!(f, "sftp:")?;
                if let Some(u) = &l.user {
                    write!(f, "{u}@")?;
                }
                if l.path.starts_with('/') {
                    write!(f, "{}:{}{}", host_port(&l.host, None), l.port, l.path)
                } else if l.path.starts_with(|c: char| c.is_ascii_digit()) {
                    write!(f, "{}:./{}", host_port(&l.host, None), l.path)
                } else {
                    write!(f, "{}:{}", host_port(&l.host, None), l.path)
                }
            }
        }
    }
}

impl FromStr for Location {
    type Err = LocationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses a repository location. Never panics.
pub fn parse(input: &str) -> Result<Location, LocationError> {
    let err = |reason| LocationError {
        input: input.chars().take(200).collect(),
        reason,
    };
    if input.chars().any(char::is_control) {
        return Err(err("contains control characters"));
    }
    if let Some(rest) = input.strip_prefix("s3:") {
        parse_s3(rest).map(Location::S3).map_err(err)
    } else if let Some(rest) = input.strip_prefix("sftp:") {
        parse_sftp(rest).map(Location::Sftp).map_err(err)
    } else if let Some(path) = input.strip_prefix("local:") {
        if path.is_empty() {
            return Err(err("empty path"));
        }
        Ok(Location::Local(PathBuf::from(path)))
    } else {
        if looks_like_scheme(input) {
            return Err(err(
                "unknown scheme: a repository is a path, local:PATH, s3:... or sftp:... \
                 (write local:NAME for a directory whose name contains ':')",
            ));
        }
        if input.is_empty() {
            return Err(err("empty path"));
        }
        Ok(Location::Local(PathBuf::from(input)))
    }
}

/// `rest:...`, `b2:...`, `azure:...`: a word and a colon before any '/', the way every
/// restic backend is written. Such a location is never taken for a local path.
fn looks_like_scheme(input: &str) -> bool {
    let Some((head, _)) = input.split_once(':') else {
        return false;
    };
    head.starts_with(|c: char| c.is_ascii_alphabetic())
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-' | '_'))
}

/// Splits `HOST[:PORT]` or `[V6][:PORT]` off the front of `s`; returns (host, rest after host).
fn split_host(s: &str) -> Result<(String, &str), &'static str> {
    if let Some(after) = s.strip_prefix('[') {
        let end = after.find(']').ok_or("unterminated '[' in host")?;
        let host = &after[..end];
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("bad IPv6 address in brackets");
        }
        if !host.contains(':') {
            return Err("brackets are only for IPv6 addresses");
        }
        Ok((host.to_string(), &after[end + 1..]))
    } else {
        let end = s.find([':', '/']).unwrap_or(s.len());
        let host = &s[..end];
        if host.is_empty() {
            return Err("empty host");
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        {
            return Err("host may contain only letters, digits, '.', '-', '_'");
        }
        Ok((host.to_string(), &s[end..]))
    }
}

fn parse_port(digits: &str) -> Result<u16, &'static str> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 5 {
        return Err("port must be 1-65535");
    }
    match digits.parse::<u16>() {
        Ok(0) | Err(_) => Err("port must be 1-65535"),
        Ok(p) => Ok(p),
    }
}

fn parse_s3(rest: &str) -> Result<S3Location, &'static str> {
    let (https, rest) = if let Some(r) = rest.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = rest.strip_prefix("https://") {
        (true, r)
    } else if rest.contains("://") {
        return Err("S3 endpoint scheme must be http or https");
    } else {
        (true, rest)
    };
    let (host, rest) = split_host(rest)?;
    let (port, rest) = match rest.strip_prefix(':') {
        Some(r) => {
            let end = r.find('/').unwrap_or(r.len());
            (Some(parse_port(&r[..end])?), &r[end..])
        }
        None => (None, rest),
    };
    let rest = rest
        .strip_prefix('/')
        .ok_or("missing /BUCKET after the endpoint")?;
    let (bucket, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    validate_bucket(bucket)?;
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if !prefix.is_empty() && crate::error::validate_name(prefix).is_err() {
        return Err("prefix must be '/'-separated parts of A-Z a-z 0-9 . _ -");
    }
    Ok(S3Location {
        https,
        host,
        port,
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

fn validate_bucket(b: &str) -> Result<(), &'static str> {
    let ok_chars = b
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    let ends_ok = b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&b.len()) || !ok_chars || !ends_ok || b.contains("..") {
        return Err(
            "bucket must be 3-63 characters of a-z 0-9 . - starting and ending alphanumeric",
        );
    }
    Ok(())
}

fn parse_sftp(rest: &str) -> Result<SftpLocation, &'static str> {
    if rest.starts_with("//") {
        return Err("use sftp:USER@HOST:PORT/PATH, not an sftp:// URL");
    }
    let (user, rest) = match rest.split_once('@') {
        Some((u, r)) => {
            if u.is_empty()
                || !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
            {
                return Err("user may contain only letters, digits, '.', '-', '_'");
            }
            (Some(u.to_string()), r)
        }
        None => (None, rest),
    };
    let (host, rest) = split_host(rest)?;
    let rest = rest.strip_prefix(':').ok_or("missing ':' after the host")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (port, path) = if digits > 0 && (rest.len() == digits || rest.as_bytes()[digits] == b'/') {
        (parse_port(&rest[..digits])?, &rest[digits..])
    } else {
        (22, rest)
    };
    let path = path.strip_prefix("./").unwrap_or(path);
    if path.is_empty() {
        return Err("missing path");
    }
    if path.starts_with('/') {
        // Keep '/' alone but drop a trailing one elsewhere for a canonical form.
        let p = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let p = if p.is_empty() { "/" } else { p };
        return Ok(SftpLocation {
            user,
            host,
            port,
            path: p.to_string(),
        });
    }
    let p = path.trim_end_matches('/');
    if p.is_empty() || p.starts_with("./") {
        return Err("bad relative path");
    }
    Ok(SftpLocation {
        user,
        host,
        port,
        path: p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s3(s: &str) -> S3Location {
        match parse(s) {
            Ok(Location::S3(l)) => l,
            other => panic!("{s}: {other:?}"),
        }
    }
    fn sftp(s: &str) -> SftpLocation {
        match parse(s) {
            Ok(Location::Sftp(l)) => l,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn local_paths() {
        assert_eq!(
            parse("/srv/backup").ok(),
            Some(Location::Local("/srv/backup".into()))
        );
        assert_eq!(
            parse("rel/dir").ok(),
            Some(Location::Local("rel/dir".into()))
        );
        let odd = parse("local:s3:weird").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(odd, Location::Local("s3:weird".into()));
        assert_eq!(odd.to_string(), "local:s3:weird");
        assert!(parse("").is_err());
        assert!(parse("local:").is_err());
        // An unknown scheme is an error, never a local directory named "rest:...".
        for bad in [
            "rest:http://host:8000/",
            "b2:bucket/path",
            "azure:c:/",
            "rclone:remote:x",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.reason.contains("unknown scheme"), "{bad}: {e}");
        }
        let colon = parse("local:backup:2026").unwrap();
        assert_eq!(colon.to_string(), "local:backup:2026");
        assert_eq!(
            parse("./backup:2026").ok(),
            Some(Location::Local("./backup:2026".into()))
        );
    }

    #[test]
    fn s3_forms() {
        let l = s3("s3:http://127.0.0.1:8333/backup/lethe/repo1");
        assert!(!l.https);
        assert_eq!(l.host, "127.0.0.1");
        assert_eq!(l.port, Some(8333));
        assert_eq!(l.bucket, "backup");
        assert_eq!(l.prefix, "lethe/repo1");
        assert_eq!(l.endpoint(), "http://127.0.0.1:8333");
        let l = s3("s3:s3.example.com/bk-1/");
        assert!(l.https);
        assert_eq!((l.port, l.prefix.as_str()), (None, ""));
        let l = s3("s3:http://[::1]:9000/bkt");
        assert_eq!(l.host, "::1");
        assert_eq!(l.endpoint(), "http://[::1]:9000");
        assert_eq!(
            Location::S3(l).to_string(),
            "s3:http://[::1]:9000/bkt".to_string()
        );
        for bad in [
            "s3:",
            "s3:http://",
            "s3:http://host",
            "s3:http://host/",
            "s3:http://host:0/bkt",
            "s3:http://host:99999/bkt",
            "s3:http://host:x/bkt",
            "s3:ftp://host/bkt",
            "s3:http://host/BadBucket",
            "s3:http://host/ab",
            "s3:http://host/bkt/a//b",
            "s3:http://host/bkt/../x",
            "s3:http://ho st/bkt",
            "s3:http://[zz]/bkt",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sftp_forms() {
        let l = sftp("sftp:root@127.0.0.1:2222/srv/repo");
        assert_eq!(l.user.as_deref(), Some("root"));
        assert_eq!(
            (l.host.as_str(), l.port, l.path.as_str()),
            ("127.0.0.1", 2222, "/srv/repo")
        );
        let l = sftp("sftp:backup@host:/srv/repo/");
        assert_eq!((l.port, l.path.as_str()), (22, "/srv/repo"));
        let l = sftp("sftp:host:repo");
        assert_eq!((l.user, l.port, l.path.as_str()), (None, 22, "repo"));
        let l = sftp("sftp:host:./2024/repo");
        assert_eq!(l.path, "2024/repo");
        assert_eq!(Location::Sftp(l).to_string(), "sftp:host:./2024/repo");
        let l = sftp("sftp:u@[fe80::1]:22/x");
        assert_eq!(l.host, "fe80::1");
        assert_eq!(Location::Sftp(l).to_string(), "sftp:u@[fe80::1]:22/x");
        for bad in [
            "sftp:",
            "sftp:host",
            "sftp:host:",
            "sftp:@host:/x",
            "sftp:u@host:2222",
            "sftp:u@host:0/x",
            "sftp:u@host:70000/x",
            "sftp://u@host/x",
            "sftp:u@ho st:/x",
            "sftp:u@host:./",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_rejected() {
        assert!(parse("/srv/\nrepo").is_err());
        assert!(parse("sftp:u@h:/a\0b").is_err());
    }

    fn arb_location() -> impl Strategy<Value = Location> {
        let host = prop_oneof![
            "[a-z][a-z0-9.-]{0,20}",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            Just("::1".to_string()),
        ];
        let s3 = (
            any::<bool>(),
            host.clone(),
            proptest::option::of(1u16..),
            "[a-z0-9][a-z0-9-]{1,20}[a-z0-9]",
            prop_oneof![
                Just(String::new()),
                "[a-z0-9_-]{1,8}(/[a-z0-9_.-]{0,6}[a-z0-9])?"
            ],
        )
            .prop_map(|(https, host, port, bucket, prefix)| {
                Location::S3(S3Location {
                    https,
                    host,
                    port,
                    bucket,
                    prefix,
                })
            });
        let sftp = (
            proptest::option::of("[a-z_][a-z0-9_-]{0,10}"),
            host,
            1u16..,
            "[a-zA-Z0-9_. -]{1,10}(/[a-zA-Z0-9_.-]{1,10})*",
            any::<bool>(),
        )
            .prop_map(|(user, host, port, path, absolute)| {
                let (port, path) = if absolute {
                    (port, format!("/{path}"))
                } else {
                    (22, path)
                };
                Location::Sftp(SftpLocation {
                    user,
                    host,
                    port,
                    path,
                })
            });
        let local = "[a-zA-Z0-9/_.:-]{1,30}".prop_map(|p| Location::Local(PathBuf::from(p)));
        prop_oneof![s3, sftp, local]
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(
            head in prop_oneof![Just("s3:"), Just("sftp:"), Just("s3:http://"), Just("local:")],
            tail in "[a-z0-9@:/\\[\\].%-]{0,40}",
        ) {
            let s = format!("{head}{tail}");
            if let Ok(loc) = parse(&s) {
                prop_assert_eq!(parse(&loc.to_string()), Ok(loc));
            }
        }

        #[test]
        fn parsed_locations_round_trip(s in "\\PC{0,60}") {
            if let Ok(loc) = parse(&s) {
                prop_assert_eq!(parse(&loc.to_string()), Ok(loc));
            }
        }

        #[test]
        fn generated_locations_round_trip(loc in arb_location()) {
            // Generated values may not be canonical (e.g. "./" paths); compare after one pass.
            let once = parse(&loc.to_string());
            prop_assert!(once.is_ok(), "{} -> {:?}", loc, once);
            if let Ok(once) = once {
                prop_assert_eq!(parse(&once.to_string()), Ok(once));
            }
        }
    }
}
