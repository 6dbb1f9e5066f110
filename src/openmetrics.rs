//! The sample lines of an OpenMetrics text exposition (`name{labels} value`), which is all
//! `sluice top` needs from `/metrics`: metadata lines (`# TYPE`, `# HELP`, `# EOF`) are skipped.
use std::collections::BTreeMap;

/// One sample's labels, in exposition order.
pub type Labels = Vec<(String, String)>;

/// Every sample of one scrape, by sample name (`sluice_rx_packets_total`), in exposition order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    by_name: BTreeMap<String, Vec<(Labels, f64)>>,
}

impl Metrics {
    /// The samples named `name`, in exposition order.
    pub fn series(&self, name: &str) -> &[(Labels, f64)] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// The value of the sample `name` whose labels include every pair of `want`.
    pub fn get(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        self.series(name)
            .iter()
            .find(|(labels, _)| matches(labels, want))
            .map(|&(_, v)| v)
    }

    /// The sum of every sample named `name` (0 when there is none).
    pub fn sum(&self, name: &str) -> f64 {
        self.series(name).iter().map(|&(_, v)| v).sum()
    }

    pub fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

/// Whether `labels` include every pair of `want`.
pub fn matches(labels: &Labels, want: &[(&str, &str)]) -> bool {
    want.iter()
        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
}

/// The value of label `key`, or "".
pub fn label<'a>(labels: &'a Labels, key: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// A line that is not a sample, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Every sample line of `text`; the first line that is neither a sample nor metadata is an error.
pub fn parse(text: &str) -> Result<Metrics, ParseError> {
    let mut m = Metrics::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = sample(line).map_err(|message| ParseError {
            line: i + 1,
            message: format!("{message}: {}", shorten(line)),
        })?;
        m.by_name
            .entry(name.to_owned())
            .or_default()
            .push((labels, value));
    }
    Ok(m)
}

/// The line as quoted in an error: long lines are cut.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((at, _)) => format!("{:?}...", &line[..at]),
        None => format!("{line:?}"),
    }
}

/// `name{labels} value [timestamp] [# exemplar]`.
fn sample(line: &str) -> Result<(&str, Labels, f64), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(after)?;
        labels = parsed;
        rest = after;
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value = rest.split(' ').next().unwrap_or_default();
    Ok((name, labels, number(value)?))
}

/// `k="v",k2="v2"}` (after the `{`): the labels and what follows the `}`.
fn label_set(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    loop {
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("a label without '='")?;
        let key = &s[..eq];
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {key:?}"));
        }
        let quoted = s[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key} has no quoted value"))?;
        let (value, after) =
            label_value(quoted).ok_or_else(|| format!("label {key}: unterminated value"))?;
        labels.push((key.to_owned(), value));
        s = after.strip_prefix(',').unwrap_or(after);
        if !(s.starts_with('}') || after.starts_with(',')) {
            return Err(format!("expected ',' or '}}' after label {key}"));
        }
    }
}

/// An escaped label value up to its closing quote (`\\`, `\"`, `\n`), and what follows it.
fn label_value(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN`.
fn number(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s
            .parse()
            .map_err(|_| format!("value {s:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "# HELP sluice_rx_packets Packets received.\n\
        # TYPE sluice_rx_packets counter\n\
        sluice_rx_packets_total{port=\"wire\",queue=\"0\"} 498964\n\
        sluice_worker_busy_seconds_total{core=\"1\"} 1.262840402\n\
        sluice_flows_created_total 27349\n\
        sluice_packet_latency_seconds_bucket{le=\"+Inf\"} 12 # {trace_id=\"x\"} 0.5\n\
        sluice_table_info{service=\"we\\\"b\\\\x\\ny\",fingerprint=\"67ca39b65836e116\"} 1 1700000000\n\
        # EOF\n";

    #[test]
    fn top_parses_samples_and_skips_metadata() {
        let m = parse(SCRAPE).unwrap();
        assert_eq!(
            m.get("sluice_rx_packets_total", &[("port", "wire")]),
            Some(498964.0)
        );
        assert_eq!(
            m.get("sluice_worker_busy_seconds_total", &[("core", "1")]),
            Some(1.262840402)
        );
        assert_eq!(m.get("sluice_flows_created_total", &[]), Some(27349.0));
        assert_eq!(
            m.get("sluice_packet_latency_seconds_bucket", &[("le", "+Inf")]),
            Some(12.0)
        );
        let info = m.series("sluice_table_info");
        assert_eq!(label(&info[0].0, "service"), "we\"b\\x\ny");
        assert_eq!(label(&info[0].0, "fingerprint"), "67ca39b65836e116");
        assert!(!m.has("sluice_rx_packets"));
        assert_eq!(m.sum("nothing"), 0.0);
    }

    #[test]
    fn top_parses_special_values() {
        let m = parse("a +Inf\nb -Inf\nc NaN\nd 1e3\ne{} -2\n").unwrap();
        assert_eq!(m.get("a", &[]), Some(f64::INFINITY));
        assert_eq!(m.get("b", &[]), Some(f64::NEG_INFINITY));
        assert!(m.get("c", &[]).unwrap().is_nan());
        assert_eq!(m.get("d", &[]), Some(1000.0));
        assert_eq!(m.get("e", &[]), Some(-2.0));
    }

    #[test]
    fn top_reports_the_bad_line() {
        for (text, line) in [
            ("ok 1\nbroken\n", 2),
            ("x{a=\"1\" 2\n", 1),
            ("x{a=1} 2\n", 1),
            ("x{a=\"1\"b=\"2\"} 2\n", 1),
            ("x{=\"1\"} 2\n", 1),
            ("x 1\n\nx{a=\"\\\"} 2\n", 3),
            ("x twelve\n", 1),
            ("{a=\"1\"} 2\n", 1),
            ("9x 1\n", 1),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        let e = parse("x twelve\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: value \"twelve\" is not a number: \"x twelve\""
        );
    }
}
