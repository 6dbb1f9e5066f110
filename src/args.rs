//! The command line's readers of what the operator types: `--url`, `--interval`, and the
//! `metrics.listen` of a config file the validator refuses (`sluice reload`, `drain` and `top`).
//! In the library so that their fuzz target (`fuzz/`, `cli_inputs`) reaches them.
use std::net::SocketAddr;
use std::time::Duration;

use control::config::DEFAULT_METRICS_LISTEN;
use yaml_serde::Value;

/// The shortest and longest poll interval of `sluice top`: faster only measures the polling,
/// slower is no view.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// `--interval`: `0.5`, `2s` or `500ms`, between 100 ms and an hour.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 1e-3)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    let secs: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 1s, 0.5, 250ms)"))?;
    let d = Duration::try_from_secs_f64(secs * scale)
        .map_err(|_| format!("{s:?} is not a duration (e.g. 1s, 0.5, 250ms)"))?;
    if d < MIN_INTERVAL || d > MAX_INTERVAL {
        return Err(format!("{s:?} is outside 100ms..3600s"));
    }
    Ok(d)
}

/// `--url`: `HOST:PORT` out of `http://HOST:PORT[/]` (or `HOST:PORT[PATH]` with PATH one of
/// `paths`).
pub fn authority_of<'u>(url: &'u str, paths: &[&str]) -> Result<&'u str, String> {
    if url.starts_with("https://") {
        return Err("sluice serves plain http".into());
    }
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !(path.is_empty() || path == "/" || paths.contains(&path)) {
        return Err(format!(
            "the path {path} is not {} (give the listener's address, e.g. http://127.0.0.1:9610)",
            paths.join(" or ")
        ));
    }
    if authority.is_empty() {
        return Err("no host:port".into());
    }
    if !authority.contains(':') || authority.ends_with(']') {
        return Err("no port (e.g. http://127.0.0.1:9610)".into());
    }
    Ok(authority)
}

/// `metrics.listen` of a YAML document, or the default when the document leaves it out: what
/// the CLI reads of a config file the validator refuses.
pub fn listen_in(text: &str) -> Result<SocketAddr, String> {
    let doc: Value = yaml_serde::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let metrics = match &doc {
        Value::Mapping(m) => m.get("metrics"),
        Value::Null => None,
        _ => return Err("the document is not a mapping".into()),
    };
    let listen = match metrics {
        None | Some(Value::Null) => None,
        Some(Value::Mapping(m)) => m.get("listen"),
        Some(_) => return Err("metrics is not a mapping".into()),
    };
    match listen {
        None | Some(Value::Null) => Ok(DEFAULT_METRICS_LISTEN),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| format!("metrics.listen {s:?} is not an address:port")),
        Some(_) => Err("metrics.listen is not an address:port".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_intervals() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        for bad in ["", "fast", "-1", "50ms", "2h", "1e400", "NaN"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_in_a_document() {
        assert_eq!(listen_in("services: []\n"), Ok(DEFAULT_METRICS_LISTEN));
        assert_eq!(listen_in(""), Ok(DEFAULT_METRICS_LISTEN));
        assert_eq!(
            listen_in("metrics:\n  lifecycle: any\n"),
            Ok(DEFAULT_METRICS_LISTEN)
        );
        assert_eq!(
            listen_in("metrics:\n  listen: \"[::]:9700\"\nservices: [{weight: -5}]\n"),
            Ok("[::]:9700".parse().unwrap())
        );
        assert!(listen_in("metrics:\n  listen: nowhere\n").is_err());
        assert!(listen_in("metrics: [1]\n").is_err());
        assert!(listen_in("metrics: {listen: [\n").is_err());
        assert!(listen_in("- 1\n").is_err());
    }

    #[test]
    fn urls() {
        let reload = &["/-/reload"][..];
        assert_eq!(
            authority_of("http://127.0.0.1:9610", reload),
            Ok("127.0.0.1:9610")
        );
        assert_eq!(authority_of("http://[::1]:9610/", reload), Ok("[::1]:9610"));
        assert_eq!(
            authority_of("localhost:9610/-/reload", reload),
            Ok("localhost:9610")
        );
        assert!(authority_of("https://127.0.0.1:9610", reload).is_err());
        assert!(authority_of("http://127.0.0.1", reload).is_err());
        assert!(authority_of("http://[::1]", reload).is_err());
        assert!(authority_of("http://127.0.0.1:9610/metrics", reload).is_err());
        assert!(authority_of("http://", reload).is_err());
        let top = &["/metrics", "/state"][..];
        assert_eq!(
            authority_of("http://127.0.0.1:9610/metrics", top),
            Ok("127.0.0.1:9610")
        );
        assert_eq!(
            authority_of("http://127.0.0.1:9610/-/reload", top),
            Err("the path /-/reload is not /metrics or /state (give the listener's address, e.g. http://127.0.0.1:9610)".into())
        );
    }
}
