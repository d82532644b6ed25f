//! The appliance configuration, `lethe.toml`.
//!
//! - [`load`] / [`parse`]: read and check the file; every error and warning
//!   carries its line and column ([`Diagnostic`]), unknown keys get the
//!   nearest valid key suggested, values are parsed where they stand
//!   (durations such as `"30s"`, `"10m"`, `"6h"`; addresses; names).
//! - [`model`]: the checked [`Config`] the daemon reads, with every default
//!   filled in and every rule that spans several keys already enforced.
//! - [`bay`]: bays, their `match` entries and [`bay_for`], the pure function
//!   that puts a drive in a bay.
//! - `[[backup]]` entries are the backup engine's own job type
//!   (`lethe_backup::schedule::JobConfig`) plus `max_age`.
//! - [`Alerts::channels`](model::Alerts::channels) builds the alert channels
//!   (reading the secret files the file names).
//!
//! Every key is documented in `docs/configuration.md`; a test parses the
//! examples there and checks that the documented keys are the real ones.
//!
//! ```
//! let loaded = lethe_config::parse(r#"
//! [[bay]]
//! name = "bay-1"
//! match = ["/dev/disk/by-path/pci-0000:00:17.0-ata-1"]
//! led = 1
//! policy = "ask"
//! "#).unwrap();
//! assert_eq!(loaded.config.bays[0].name.as_str(), "bay-1");
//! assert_eq!(loaded.config.session.idle_timeout.as_secs(), 600);
//! ```

mod backup;
pub mod bay;
mod build;
mod channels;
pub mod diag;
pub mod model;
mod raw;

#[cfg(test)]
mod doc_tests;
#[cfg(test)]
mod tests;

pub use bay::{bay_for, Bay, DeviceFacts, MatchRule, Policy, WipeDefaults};
pub use diag::{ConfigError, Diagnostic, Level as DiagnosticLevel};
pub use model::*;

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where the configuration is read from when neither `--config` nor
/// `LETHE_CONFIG` names a file.
pub const DEFAULT_PATH: &str = "/etc/lethe/lethe.toml";
/// The environment variable naming the configuration file.
pub const ENV_VAR: &str = "LETHE_CONFIG";

/// The file to read: `--config`, else `LETHE_CONFIG`, else [`DEFAULT_PATH`].
/// (Pure: the caller passes the option and the variable.)
pub fn resolve_path(option: Option<&Path>, env: Option<&std::ffi::OsStr>) -> PathBuf {
    option
        .map(Path::to_path_buf)
        .or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

/// A checked configuration and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Accepted, but worth saying (clamped values, overlapping bays...).
    pub warnings: Vec<Diagnostic>,
}

/// Read and check the file at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        ConfigError::Invalid { diagnostics, .. } => ConfigError::Invalid {
            path: Some(path.to_path_buf()),
            diagnostics,
        },
        other => other,
    })
}

/// Check configuration text.
pub fn parse(text: &str) -> Result<Loaded, ConfigError> {
    let mut ctx = build::Ctx::new(text);
    let invalid = |ctx: build::Ctx| {
        let mut diagnostics = ctx.diags;
        // Errors first, each group in file order.
        diagnostics.sort_by_key(|d| (d.level != diag::Level::Error, d.span.start));
        ConfigError::Invalid {
            path: None,
            diagnostics,
        }
    };
    let doc = match toml::de::DeTable::parse(text) {
        Ok(d) => d,
        Err(e) => {
            ctx.toml_error(&e, &[]);
            return Err(invalid(ctx));
        }
    };
    let backups = backup::read(doc.get_ref(), &mut ctx);
    let raw = match raw::RawConfig::deserialize(toml::de::Deserializer::from(doc)) {
        Ok(r) => r,
        Err(e) => {
            ctx.toml_error(&e, &[]);
            return Err(invalid(ctx));
        }
    };
    let config = build::build(raw, backups, &mut ctx);
    if ctx.has_errors() {
        return Err(invalid(ctx));
    }
    let mut warnings = ctx.diags;
    warnings.sort_by_key(|d| d.span.start);
    Ok(Loaded { config, warnings })
}
