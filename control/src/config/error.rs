//! Config diagnostics: what is wrong, where (file:line:column and key path), error or warning.
use std::fmt;

/// A position in the config text, both 1-based (column counts characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// An error makes the config unusable; a warning is printed and the config is still used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// What is wrong with one key or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("cannot read the config: {0}")]
    Io(String),
    #[error("invalid YAML: {0}")]
    Syntax(String),
    #[error("unknown key `{key}`, expected one of: {}", .allowed.join(", "))]
    UnknownKey {
        key: String,
        allowed: &'static [&'static str],
    },
    #[error("missing required key `{key}` ({expected})")]
    MissingKey {
        key: &'static str,
        expected: &'static str,
    },
    #[error("expected {expected}, got {got}")]
    Invalid { expected: String, got: String },
    #[error("duplicate {what}, first defined at {first}")]
    Duplicate { what: String, first: String },
}

/// One diagnostic about a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {}{}{problem}", At(.location), Label(*.severity), PathPrefix(.path))]
pub struct ConfigError {
    pub file: String,
    /// Where in the text; `None` when the node cannot be located (e.g. it came from a YAML alias).
    pub location: Option<Location>,
    /// The key path such as `services[1].table_size`; empty for the whole document.
    pub path: String,
    pub severity: Severity,
    pub problem: Problem,
}

impl ConfigError {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

struct At<'a>(&'a Option<Location>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, ":{}:{}", l.line, l.column),
            None => Ok(()),
        }
    }
}

struct Label(Severity);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Severity::Error => Ok(()),
            Severity::Warning => f.write_str("warning: "),
        }
    }
}

struct PathPrefix<'a>(&'a str);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

/// Every error found in one config (never empty when returned by the loader), in text order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }
}

struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}
