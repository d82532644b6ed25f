//! Errors and warnings that point at the file: line, column, the line's text,
//! a caret under the span, and a hint ("did you mean `level`?").

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The file is refused.
    Error,
    /// The file is accepted; the daemon says this at start and `--check-config` prints it.
    Warning,
}

/// One finding, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub level: Level,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte range in the file.
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, if known.
    pub help: Option<String>,
    /// The text of the line (for display).
    pub line_text: String,
}

impl Diagnostic {
    /// A diagnostic at `span` of `src`.
    pub fn new(level: Level, src: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let start = span.start.min(src.len());
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        Diagnostic {
            level,
            line: src[..start].matches('\n').count() + 1,
            column: src[line_start..start].chars().count() + 1,
            span,
            message: message.into(),
            help: None,
            line_text: src[line_start..line_end].trim_end_matches('\r').to_string(),
        }
    }

    /// With a hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Render with the file name: `path:line:col: error: message`, the line, a caret, the hint.
    pub fn render(&self, path: Option<&std::path::Path>) -> String {
        let file = path.map_or_else(|| "<config>".to_string(), |p| p.display().to_string());
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        let width = self
            .line_text
            .chars()
            .skip(self.column - 1)
            .count()
            .min(self.span.len().max(1))
            .max(1);
        let mut s = format!(
            "{file}:{}:{}: {level}: {}\n{pad} |\n{num} | {}\n{pad} | {}{}",
            self.line,
            self.column,
            self.message,
            self.line_text,
            " ".repeat(self.column - 1),
            "^".repeat(width)
        );
        if let Some(h) = &self.help {
            s.push_str(&format!("\n{pad} = help: {h}"));
        }
        s
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(None))
    }
}

/// Why a configuration was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file has errors (each with its line and column).
    #[error("{}", render_all(path.as_deref(), diagnostics))]
    Invalid {
        /// The file, if loaded from one.
        path: Option<PathBuf>,
        /// The errors, in file order (warnings found on the way follow them).
        diagnostics: Vec<Diagnostic>,
    },
    /// An alert channel could not be set up from its (checked) settings.
    #[error("alert channel {name}: {reason}")]
    Channel {
        /// The channel.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A file the configuration names (secret, CA, password) could not be used.
    #[error("{what} {path}: {reason}")]
    Referenced {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn render_all(path: Option<&std::path::Path>, d: &[Diagnostic]) -> String {
    let errors = d.iter().filter(|d| d.level == Level::Error).count();
    let mut s: Vec<String> = d.iter().map(|d| d.render(path)).collect();
    s.push(format!(
        "configuration refused: {errors} error{}",
        if errors == 1 { "" } else { "s" }
    ));
    s.join("\n\n")
}

/// The closest of `candidates` to `word`, if close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Rewrite serde's "unknown field `x`, expected one of `a`, `b`" and
/// "unknown variant `x`, expected `a` or `b`" into a message and a hint
/// naming the nearest valid key or value (`extra`: valid keys serde did not
/// list). Other messages pass unchanged.
pub fn explain_unknown(message: &str, extra: &[&str]) -> (String, Option<String>) {
    let (what, rest) = if let Some(r) = message.strip_prefix("unknown field `") {
        ("key", r)
    } else if let Some(r) = message.strip_prefix("unknown variant `") {
        ("value", r)
    } else {
        return (message.trim().to_string(), None);
    };
    let Some((word, expected)) = rest.split_once('`') else {
        return (message.trim().to_string(), None);
    };
    let mut candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    if what == "key" {
        candidates.extend_from_slice(extra);
    }
    let msg = format!("unknown {what} `{word}`");
    let help = match suggest(word, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if candidates.is_empty() => "this table takes no keys".to_string(),
        None => {
            let list = candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("valid {what}s: {list}")
        }
    };
    (msg, Some(help))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_rendering() {
        let src = "[server]\nlisten = \"x\"\n  levle = 1\n";
        let at = src.find("levle").unwrap();
        let d = Diagnostic::new(Level::Error, src, at..at + 5, "unknown key `levle`")
            .help("did you mean `level`?");
        assert_eq!((d.line, d.column), (3, 3));
        assert_eq!(d.line_text, "  levle = 1");
        assert_eq!(
            d.render(Some(std::path::Path::new("/etc/lethe/lethe.toml"))),
            "/etc/lethe/lethe.toml:3:3: error: unknown key `levle`\n  |\n3 |   levle = 1\n  |   ^^^^^\n  = help: did you mean `level`?"
        );
        // Past the end, and multibyte text before the span.
        let src = "name = \"é\" x";
        let d = Diagnostic::new(Level::Warning, src, 11..12, "m");
        assert_eq!((d.line, d.column), (1, 11));
        let d = Diagnostic::new(Level::Warning, src, 99..100, "m");
        assert_eq!(d.line, 1);
    }

    #[test]
    fn unknown_keys_and_values_get_the_nearest_suggestion() {
        assert_eq!(
            explain_unknown(
                "unknown field `levle`, expected one of `name`, `match`, `level`",
                &[]
            ),
            (
                "unknown key `levle`".to_string(),
                Some("did you mean `level`?".to_string())
            )
        );
        assert_eq!(
            explain_unknown(
                "unknown variant `purg`, expected `clear` or `purge`\n",
                &["purgatory"]
            ),
            (
                "unknown value `purg`".to_string(),
                Some("did you mean `purge`?".to_string())
            )
        );
        assert_eq!(
            explain_unknown(
                "unknown field `zzzzzz`, expected `name` or `url`",
                &["max_age"]
            )
            .1,
            Some("valid keys: `name`, `url`, `max_age`".to_string())
        );
        assert_eq!(
            explain_unknown("unknown field `x`, there are no fields", &[]).1,
            Some("this table takes no keys".to_string())
        );
        assert_eq!(explain_unknown("invalid type", &[]).0, "invalid type");
    }
}
