//! The site defaults a sanitization job takes from the appliance
//! configuration (`[site]` of `lethe.toml`): the operator of record, whether
//! one is required, the location and the media source.
//!
//! The command line reads the configuration for nothing else. The file is
//! `--config FILE`, else `$LETHE_CONFIG`, else `/etc/lethe/lethe.toml`; the
//! default file may be absent (then every default applies), a file named
//! explicitly must exist. A file with errors is refused with its line and
//! column, as `lethe serve` would refuse it.

use anyhow::{Context, Result};
use lethe_config::Site;
use std::path::{Path, PathBuf};

/// The `[site]` section in use, and where it came from.
#[derive(Debug, Clone)]
pub struct SiteDefaults {
    pub site: Site,
    /// The file read, or `None` when the default file is absent.
    pub path: Option<PathBuf>,
}

impl SiteDefaults {
    /// Every default: no operator, location or media source, and an
    /// operator required.
    pub fn none() -> Self {
        Self {
            site: Site {
                location: None,
                media_source: None,
                operator: None,
                require_operator: true,
            },
            path: None,
        }
    }

    /// Where a value came from, for the job's history.
    pub fn source(&self, key: &str) -> String {
        match &self.path {
            Some(p) => format!("[site] {key} in {}", p.display()),
            None => format!("[site] {key}"),
        }
    }
}

/// Read the site defaults (see the module docs for which file).
pub fn load(option: Option<&Path>) -> Result<SiteDefaults> {
    let env = std::env::var_os(lethe_config::ENV_VAR);
    let explicit = option.is_some() || env.as_ref().is_some_and(|v| !v.is_empty());
    let path = lethe_config::resolve_path(option, env.as_deref());
    if !explicit && !path.exists() {
        return Ok(SiteDefaults::none());
    }
    let loaded =
        lethe_config::load(&path).with_context(|| format!("configuration {}", path.display()))?;
    for w in &loaded.warnings {
        eprintln!("{}", w.render(Some(&path)));
    }
    Ok(SiteDefaults {
        site: loaded.config.site,
        path: Some(path),
    })
}
