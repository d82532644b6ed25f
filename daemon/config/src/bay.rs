//! Bays: which drives belong to a bay, and what the bay does with them.
//!
//! A bay's `match` entries are alternatives (a drive matching any one is in
//! the bay):
//!
//! - `/dev/disk/by-path/GLOB` or `/dev/disk/by-id/GLOB`: a udev link of the
//!   drive (the physical port, or the drive's identity);
//! - `transport:NAME` (`sata`, `sas`, `scsi`, `nvme`, `usb`, `mmc`, `virtio`):
//!   every drive on that transport;
//! - `loop:GLOB`: a loop device whose backing file matches (for tests).
//!
//! Globs: `*` and `?` stay within one path component, `**` crosses them,
//! `[...]` is a class. When bays overlap, the first bay in the file wins (the
//! configuration check warns about overlaps it can see).
//! [`bay_for`] is pure: the Linux layer gathers the [`DeviceFacts`].

use crate::model::{Destination, Level, Method, Operator};
use globset::{GlobBuilder, GlobMatcher};
use lethe_alert::Label;
use lethe_core::inventory::Transport;
use lethe_core::pattern::Pattern;
use lethe_core::plan::VerifyMode;
use std::fmt;

/// A bay.
#[derive(Debug, Clone)]
pub struct Bay {
    /// Unique name.
    pub name: Label,
    /// Alternatives (any one puts a drive in the bay).
    pub rules: Vec<MatchRule>,
    /// LED index on the controller.
    pub led: Option<u8>,
    /// Wait for an operator, or start by itself.
    pub policy: Policy,
    /// The job an `auto` bay runs, or the choices an operator starts from.
    pub wipe: WipeDefaults,
}

/// What a bay does when a drive arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Show the drive and wait for an operator.
    Ask,
    /// Start the bay's job at once (always verified, always with an operator of record).
    Auto,
}

/// The job settings of a bay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WipeDefaults {
    /// Clear or Purge.
    pub level: Level,
    /// Method family.
    pub method: Method,
    /// Overwrite pattern.
    pub pattern: Pattern,
    /// Overwrite passes.
    pub passes: u32,
    /// Read-back verification (never `off` on an `auto` bay).
    pub verify: VerifyMode,
    /// Where drives go afterwards.
    pub destination: Option<Destination>,
    /// Operator of record (the bay's, else the site's).
    pub operator: Option<Operator>,
    /// Location on the certificate (the bay's, else the site's).
    pub location: Option<String>,
    /// Media source on the certificate (the bay's, else the site's).
    pub media_source: Option<String>,
}

/// One `match` entry.
#[derive(Clone)]
pub enum MatchRule {
    /// A `/dev/disk/by-path/` or `/dev/disk/by-id/` glob.
    Link(Glob),
    /// Every drive on a transport.
    Transport(Transport),
    /// Loop devices whose backing file matches.
    Loop(Glob),
}

/// A compiled glob that remembers how it was written.
#[derive(Clone)]
pub struct Glob {
    text: String,
    matcher: GlobMatcher,
}

impl Glob {
    /// Compile `text`.
    pub fn new(text: &str) -> Result<Glob, String> {
        let g = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(Glob {
            text: text.to_string(),
            matcher: g.compile_matcher(),
        })
    }

    /// Whether `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.matcher.is_match(s)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn is_literal(&self) -> bool {
        !self.text.contains(['*', '?', '[', '{', '\\'])
    }
}

/// Transports a `transport:` entry may name (loops go through `loop:`;
/// device-mapper, md and zram devices are never offered).
pub const TRANSPORTS: &[Transport] = &[
    Transport::Sata,
    Transport::Sas,
    Transport::Scsi,
    Transport::Nvme,
    Transport::Usb,
    Transport::Mmc,
    Transport::Virtio,
];

const LINK_PREFIXES: &[&str] = &["/dev/disk/by-path/", "/dev/disk/by-id/"];

/// Why a `match` entry was refused, with a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl MatchRule {
    /// Parse one `match` entry.
    pub fn parse(s: &str) -> Result<MatchRule, RuleError> {
        let err = |message: String, help: Option<String>| RuleError { message, help };
        if let Some(name) = s.strip_prefix("transport:") {
            return TRANSPORTS
                .iter()
                .find(|t| t.as_str() == name)
                .map(|t| MatchRule::Transport(*t))
                .ok_or_else(|| {
                    let names = TRANSPORTS.iter().map(|t| t.as_str());
                    let help = match crate::diag::suggest(name, names.clone()) {
                        Some(s) => format!("did you mean `transport:{s}`?"),
                        None => format!("transports: {}", names.collect::<Vec<_>>().join(", ")),
                    };
                    err(format!("unknown transport {name:?}"), Some(help))
                });
        }
        if let Some(glob) = s.strip_prefix("loop:") {
            if !glob.starts_with('/') {
                return Err(err(
                    format!("loop backing-file pattern {glob:?} is not an absolute path"),
                    Some("write loop:/path/to/files-*.img".into()),
                ));
            }
            return Glob::new(glob)
                .map(MatchRule::Loop)
                .map_err(|e| err(format!("bad glob {glob:?}: {e}"), None));
        }
        if LINK_PREFIXES
            .iter()
            .any(|p| s.starts_with(p) && s.len() > p.len())
        {
            return Glob::new(s)
                .map(MatchRule::Link)
                .map_err(|e| err(format!("bad glob {s:?}: {e}"), None));
        }
        Err(err(
            format!("match entry {s:?} is not a udev link glob, a transport or a loop pattern"),
            Some(
                "use /dev/disk/by-path/GLOB, /dev/disk/by-id/GLOB, transport:NAME or loop:GLOB"
                    .into(),
            ),
        ))
    }

    /// Whether a drive with these facts matches.
    pub fn matches(&self, d: &DeviceFacts) -> bool {
        match self {
            MatchRule::Link(g) => d.links.iter().any(|l| g.is_match(l)),
            MatchRule::Transport(t) => d.transport == *t,
            MatchRule::Loop(g) => {
                d.transport == Transport::Loop
                    && d.loop_backing_file
                        .as_deref()
                        .is_some_and(|f| g.is_match(f))
            }
        }
    }

    /// Whether one drive can obviously match both rules (same entry, or one
    /// entry's literal path matched by the other's glob). Not exhaustive: two
    /// globs can overlap in ways this does not see.
    pub fn overlaps(&self, other: &MatchRule) -> bool {
        let globs = |a: &Glob, b: &Glob| {
            a.text == b.text
                || (a.is_literal() && b.is_match(&a.text))
                || (b.is_literal() && a.is_match(&b.text))
        };
        match (self, other) {
            (MatchRule::Link(a), MatchRule::Link(b)) | (MatchRule::Loop(a), MatchRule::Loop(b)) => {
                globs(a, b)
            }
            (MatchRule::Transport(a), MatchRule::Transport(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for MatchRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchRule::Link(g) => f.write_str(g.as_str()),
            MatchRule::Transport(t) => write!(f, "transport:{t}"),
            MatchRule::Loop(g) => write!(f, "loop:{}", g.as_str()),
        }
    }
}

impl fmt::Debug for MatchRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MatchRule({self})")
    }
}

impl PartialEq for MatchRule {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// What the daemon knows about a drive when deciding its bay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// Its udev links, full paths (`/dev/disk/by-path/…`, `/dev/disk/by-id/…`).
    pub links: Vec<String>,
    /// How it is attached.
    pub transport: Transport,
    /// For a loop device: its backing file.
    pub loop_backing_file: Option<String>,
}

/// The bay a drive belongs to: the first bay (in file order) with a matching
/// entry, or none.
pub fn bay_for<'a>(bays: &'a [Bay], drive: &DeviceFacts) -> Option<&'a Bay> {
    bays.iter()
        .find(|b| b.rules.iter().any(|r| r.matches(drive)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bay(name: &str, rules: &[&str]) -> Bay {
        Bay {
            name: Label::new(name).unwrap(),
            rules: rules.iter().map(|r| MatchRule::parse(r).unwrap()).collect(),
            led: None,
            policy: Policy::Ask,
            wipe: WipeDefaults {
                level: Level::Clear,
                method: Method::Auto,
                pattern: Pattern::Random,
                passes: 1,
                verify: VerifyMode::Full,
                destination: None,
                operator: None,
                location: None,
                media_source: None,
            },
        }
    }

    fn drive(links: &[&str], transport: Transport, backing: Option<&str>) -> DeviceFacts {
        DeviceFacts {
            links: links.iter().map(|s| s.to_string()).collect(),
            transport,
            loop_backing_file: backing.map(str::to_string),
        }
    }

    #[test]
    fn rules_parse() {
        for ok in [
            "/dev/disk/by-path/pci-0000:00:17.0-ata-1",
            "/dev/disk/by-path/pci-0000:00:17.0-ata-*",
            "/dev/disk/by-id/usb-*",
            "/dev/disk/by-id/ata-[AB]*",
            "transport:usb",
            "loop:/tmp/lethe-*/bay1-*.img",
            "loop:/tmp/**/x.img",
        ] {
            assert!(MatchRule::parse(ok).is_ok(), "{ok}");
        }
        let e = MatchRule::parse("transport:nvm").unwrap_err();
        assert_eq!(e.help.as_deref(), Some("did you mean `transport:nvme`?"));
        for bad in [
            "/dev/sdb",
            "sda",
            "/dev/disk/by-path/",
            "/dev/disk/by-uuid/1234",
            "transport:loop",
            "loop:relative/*.img",
            "/dev/disk/by-id/[unclosed",
            "",
        ] {
            assert!(MatchRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_matching_bay_wins() {
        let bays = vec![
            bay("bay-1", &["/dev/disk/by-path/pci-0000:00:17.0-ata-1"]),
            bay(
                "bay-2",
                &[
                    "/dev/disk/by-path/pci-0000:00:17.0-ata-2",
                    "/dev/disk/by-path/pci-0000:00:17.0-ata-3",
                ],
            ),
            bay("usb", &["transport:usb"]),
            bay("test", &["loop:/tmp/lethe-bays/*.img"]),
            bay("any-ata", &["/dev/disk/by-path/*-ata-*"]),
        ];
        let name = |d: &DeviceFacts| bay_for(&bays, d).map(|b| b.name.as_str().to_string());
        let sata = |port: &str| {
            drive(
                &[
                    &format!("/dev/disk/by-path/pci-0000:00:17.0-ata-{port}"),
                    "/dev/disk/by-id/ata-WDC_WD10EZEX_WD-123",
                ],
                Transport::Sata,
                None,
            )
        };
        assert_eq!(name(&sata("1")).as_deref(), Some("bay-1"));
        assert_eq!(name(&sata("3")).as_deref(), Some("bay-2"));
        // Port 9 is in no named bay, but the catch-all glob takes it.
        assert_eq!(name(&sata("9")).as_deref(), Some("any-ata"));
        let usb = drive(
            &["/dev/disk/by-id/usb-SanDisk_1234-0:0"],
            Transport::Usb,
            None,
        );
        assert_eq!(name(&usb).as_deref(), Some("usb"));
        let lp = drive(&[], Transport::Loop, Some("/tmp/lethe-bays/d1.img"));
        assert_eq!(name(&lp).as_deref(), Some("test"));
        // `*` does not cross directories; other loops and NVMe match nothing.
        let deeper = drive(&[], Transport::Loop, Some("/tmp/lethe-bays/sub/d1.img"));
        assert_eq!(name(&deeper), None);
        let other = drive(&[], Transport::Loop, Some("/var/tmp/x.img"));
        assert_eq!(name(&other), None);
        let nvme = drive(&["/dev/disk/by-id/nvme-eui.0025"], Transport::Nvme, None);
        assert_eq!(name(&nvme), None);
        // A loop rule never takes a non-loop device, whatever it says.
        let fake = drive(&[], Transport::Sata, Some("/tmp/lethe-bays/d1.img"));
        assert_eq!(name(&fake), None);
    }

    #[test]
    fn overlaps() {
        let r = |s: &str| MatchRule::parse(s).unwrap();
        assert!(r("/dev/disk/by-path/a-ata-1").overlaps(&r("/dev/disk/by-path/*-ata-*")));
        assert!(r("/dev/disk/by-path/*-ata-*").overlaps(&r("/dev/disk/by-path/a-ata-1")));
        assert!(r("transport:usb").overlaps(&r("transport:usb")));
        assert!(r("loop:/t/*.img").overlaps(&r("loop:/t/*.img")));
        assert!(!r("/dev/disk/by-path/a-ata-1").overlaps(&r("/dev/disk/by-path/a-ata-2")));
        assert!(!r("transport:usb").overlaps(&r("transport:sata")));
        assert!(!r("loop:/t/a.img").overlaps(&r("/dev/disk/by-path/*")));
    }

    proptest! {
        /// Glob compilation and matching never panic, whatever is written.
        #[test]
        fn parsing_and_matching_never_panic(entry in "\\PC{0,40}", link in "\\PC{0,40}") {
            if let Ok(rule) = MatchRule::parse(&entry) {
                let d = drive(&[&link], Transport::Loop, Some(&link));
                let _ = rule.matches(&d);
                prop_assert_eq!(MatchRule::parse(&rule.to_string()).unwrap(), rule);
            }
        }

        /// A literal by-path entry matches exactly that link.
        #[test]
        fn a_literal_link_matches_itself_only(port in "[a-z0-9:.-]{1,30}", other in "[a-z0-9:.-]{1,30}") {
            let link = format!("/dev/disk/by-path/{port}");
            let rule = MatchRule::parse(&link).unwrap();
            prop_assert!(rule.matches(&drive(&[&link], Transport::Sata, None)));
            let o = format!("/dev/disk/by-path/{other}");
            prop_assert_eq!(rule.matches(&drive(&[&o], Transport::Sata, None)), o == link);
        }
    }
}
