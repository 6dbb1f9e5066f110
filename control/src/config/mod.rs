//! The config file: load YAML, check every rule, and report every problem with file:line:column.
//!
//! Loading has three stages, so that *all* errors are reported, each with its place:
//! 1. saphyr-parser walks the text as events and records where each key path
//!    (`services[1].table_size`) starts ([`location`]), because yaml_serde's `Value` keeps no
//!    positions. It also refuses nesting deeper than 64 levels up front (libyaml, under
//!    yaml_serde, gets slow on megabytes of `[[[[`). Nodes without their own place (inside an
//!    alias expansion, or merged by `<<`) get their nearest ancestor's.
//! 2. `yaml_serde` parses the text into its `Value` tree (aliases resolved, `<<` merges applied,
//!    duplicate keys and alias bombs refused). A YAML syntax error stops here: it is the only
//!    error, located by yaml_serde.
//! 3. Our own walk over the `Value` ([`decode`]) builds the typed [`Config`] and records every
//!    unknown key, missing key, wrong type and bad value instead of stopping at the first (serde
//!    derive with `deny_unknown_fields` stops at the first). Rules across sections follow
//!    ([`validate`]). A value that failed is left out of the later rules that depend on it, so
//!    one mistake gives one error, not a cascade.
//!
//! Choices (every key, default and rule is in docs/design.md, "Configuration"): a service's `port`
//! and `protocol` are required (a forgotten port must not silently mean "every port"); `dpdk`,
//! `flows`, `metrics` and `health_check` keys have the defaults in [`schema`]; `services` may be
//! absent (a warning) or empty; explicit `null` counts as absent. Limits: table_size is a prime
//! up to maglev::MAX_SIZE (2^24; 16,777,213), weights 0..=1,000,000, queues 1..=1024,
//! mtu 68..=9702, flow capacity 1..=2^27.
mod decode;
pub mod duration;
pub mod eal_args;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod lcores;
mod locate;
mod location;
mod nat;
pub mod schema;
mod summary;
mod validate;

use std::io::Read;
use std::path::Path;

pub use decode::{MAX_TABLE_SIZE, MAX_WEIGHT};
pub use error::{ConfigError, ConfigErrors, Location, Problem, Severity};
pub use locate::locate;
pub use nat::PORTS_PER_LOCAL_ADDRESS;
pub use schema::*;
pub use summary::summary;
pub use validate::endpoint;

/// Larger files are refused before parsing (a real config is a few KiB).
pub const MAX_CONFIG_BYTES: usize = 4 << 20;

/// The outcome of checking one config: the config or its errors, and the warnings either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub result: Result<Config, ConfigErrors>,
    pub warnings: Vec<ConfigError>,
}

/// Load and validate the config file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    check_file(path).result
}

/// Load and validate config `text`; `file_name` is used in error messages.
pub fn load_str(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    check_str(text, file_name).result
}

/// Like [`load_file`], also returning the warnings.
pub fn check_file(path: &Path) -> Checked {
    let file = path.display().to_string();
    let failed = |message: String| Checked {
        result: Err(ConfigErrors(vec![ConfigError {
            file: file.clone(),
            location: None,
            path: String::new(),
            severity: Severity::Error,
            problem: Problem::Io(message),
        }])),
        warnings: Vec::new(),
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_CONFIG_BYTES as u64 => {
            return failed(format!(
                "{} bytes is larger than the limit of {MAX_CONFIG_BYTES}",
                m.len()
            ))
        }
        Ok(_) => {}
        Err(e) => return failed(e.to_string()),
    }
    // A pipe or device has no size to check first: read one byte past the limit at most.
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES as u64 + 1).read_to_end(&mut bytes));
    match read {
        Ok(n) if n > MAX_CONFIG_BYTES => failed(format!(
            "it is larger than the limit of {MAX_CONFIG_BYTES} bytes (read until past it)"
        )),
        Ok(_) => match String::from_utf8(bytes) {
            Ok(text) => check_str(&text, &file),
            Err(_) => failed("it is not UTF-8 text".to_owned()),
        },
        Err(e) => failed(e.to_string()),
    }
}

/// Like [`load_str`], also returning the warnings.
pub fn check_str(text: &str, file_name: &str) -> Checked {
    let index_none = location::LocationIndex::default();
    let mut ctx = decode::Ctx {
        file: file_name,
        index: &index_none,
        diags: Vec::new(),
    };
    if text.len() > MAX_CONFIG_BYTES {
        let problem = Problem::Io(format!(
            "{} bytes is larger than the limit of {MAX_CONFIG_BYTES}",
            text.len()
        ));
        ctx.push(Severity::Error, "", None, problem);
        return finish(ctx.diags, None);
    }
    let index = match location::LocationIndex::build(text) {
        Ok(index) => index,
        Err(at) => {
            let problem = Problem::Syntax(format!(
                "nesting deeper than {} levels",
                location::MAX_NESTING
            ));
            ctx.push(Severity::Error, "", Some(at), problem);
            return finish(ctx.diags, None);
        }
    };
    let mut value: yaml_serde::Value = match yaml_serde::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let location = e.location().map(|l| Location {
                line: l.line(),
                column: l.column(),
            });
            ctx.push(
                Severity::Error,
                "",
                location,
                Problem::Syntax(strip_position(&e.to_string())),
            );
            return finish(ctx.diags, None);
        }
    };
    // yaml_serde says what was wrong with a merge but not where; looked for before it
    // merges, which leaves the document half merged when it fails.
    let merge_at = bad_merge(&value, "")
        .and_then(|path| index.exact(&path))
        .map(|s| s.key.unwrap_or(s.value));
    if let Err(e) = value.apply_merge() {
        ctx.push(
            Severity::Error,
            "",
            merge_at,
            Problem::Syntax(strip_position(&e.to_string())),
        );
        return finish(ctx.diags, None);
    }
    ctx.index = &index;
    let parts = decode::document(&mut ctx, &value);
    validate::cross_checks(&mut ctx, &value, &parts);
    let config = parts.complete();
    if config.is_none() && ctx.errors() == 0 {
        // Every failed part reports an error; this only guards that invariant.
        ctx.invalid(
            "",
            "a complete config",
            "an incomplete one with no error reported (a bug in sluice)",
        );
    }
    finish(ctx.diags, config)
}

fn finish(diags: Vec<ConfigError>, config: Option<Config>) -> Checked {
    let (mut errors, mut warnings): (Vec<_>, Vec<_>) =
        diags.into_iter().partition(ConfigError::is_error);
    // Text order; unlocated diagnostics last.
    let key = |e: &ConfigError| (e.location.is_none(), e.location);
    errors.sort_by_key(key);
    warnings.sort_by_key(key);
    let result = match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(ConfigErrors(errors)),
    };
    Checked { result, warnings }
}

/// The path of the first merge key (`<<`) whose value is not a mapping or a list of mappings,
/// in document order (as [`location::LocationIndex`] names paths).
fn bad_merge(v: &yaml_serde::Value, path: &str) -> Option<String> {
    use yaml_serde::Value;
    match v {
        Value::Mapping(m) => m.iter().find_map(|(k, v)| {
            let key = k.as_str()?;
            let here = decode::join(path, key);
            let mergeable = match v {
                Value::Mapping(_) => true,
                Value::Sequence(items) => items.iter().all(Value::is_mapping),
                _ => false,
            };
            if key == "<<" && !mergeable {
                Some(here)
            } else {
                bad_merge(v, &here)
            }
        }),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| bad_merge(v, &format!("{path}[{i}]"))),
        Value::Tagged(t) => bad_merge(&t.value, path),
        _ => None,
    }
}

/// yaml_serde says " at line L column C" at the end or before ", while ..."; our prefix
/// already says where.
fn strip_position(message: &str) -> String {
    if let Some(i) = message.rfind(" at line ") {
        let tail = &message[i + " at line ".len()..];
        let (place, rest) = tail.split_once(", ").unwrap_or((tail, ""));
        let ok = place.split_once(" column ").is_some_and(|(l, c)| {
            !l.is_empty() && !c.is_empty() && l.bytes().chain(c.bytes()).all(|b| b.is_ascii_digit())
        });
        if ok {
            return if rest.is_empty() {
                message[..i].to_owned()
            } else {
                format!("{}, {rest}", &message[..i])
            };
        }
    }
    message.to_owned()
}
