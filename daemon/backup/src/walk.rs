//! Include/exclude patterns (globs, restic style): an excluded path is skipped
//! with everything below it; with includes, only matching files are kept (the
//! directories leading to them are always walked).

use crate::BackupError;
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::path::Path;

/// Compiled patterns.
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

fn set(patterns: &[String]) -> Result<GlobSet, BackupError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // A bare name matches at any depth, like restic's `--exclude name`.
        let full = if p.contains('/') {
            p.clone()
        } else {
            format!("**/{p}")
        };
        b.add(Glob::new(&full).map_err(|e| BackupError::Invalid(format!("pattern {p:?}: {e}")))?);
        b.add(
            Glob::new(&format!("{}/**", full.trim_end_matches('/')))
                .map_err(|e| BackupError::Invalid(format!("pattern {p:?}: {e}")))?,
        );
    }
    b.build()
        .map_err(|e| BackupError::Invalid(format!("patterns: {e}")))
}

impl Default for Filter {
    /// Keep everything.
    fn default() -> Self {
        Filter {
            include: None,
            exclude: GlobSet::empty(),
        }
    }
}

impl Filter {
    /// Compile include and exclude patterns.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, BackupError> {
        Ok(Filter {
            include: if include.is_empty() {
                None
            } else {
                Some(set(include)?)
            },
            exclude: set(exclude)?,
        })
    }

    /// Skip this path (and, for a directory, everything below)?
    pub fn excluded(&self, path: &Path) -> bool {
        self.exclude.is_match(path)
    }

    /// Keep this non-directory entry?
    pub fn included(&self, path: &Path) -> bool {
        self.include.as_ref().is_none_or(|s| s.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_and_includes() {
        let f = Filter::new(&[], &["*.tmp".into(), "/data/cache".into()]).unwrap();
        assert!(f.excluded(Path::new("/data/a/b.tmp")));
        assert!(f.excluded(Path::new("/data/cache")));
        assert!(f.excluded(Path::new("/data/cache/x/y")));
        assert!(!f.excluded(Path::new("/data/cached")));
        assert!(f.included(Path::new("/anything")));
        let f = Filter::new(&["*.sql".into()], &[]).unwrap();
        assert!(f.included(Path::new("/dumps/x.sql")));
        assert!(!f.included(Path::new("/dumps/x.txt")));
        assert!(Filter::new(&[], &["[".into()]).is_err());
    }
}
