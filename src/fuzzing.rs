//! The fuzz body of the command line's readers of the appliance's answers, shared by the
//! cargo-fuzz target `cli_responses` (`fuzz/`) and the seed replay test (`tests/cli_responses_fuzz_seeds.rs`).
//! [`cli_inputs`] is the body of the readers of what the operator types and the host holds.
use std::collections::BTreeSet;
use std::io;
use std::time::{Duration, Instant};

use control::http::fuzzing::Chunked;

use crate::http_client::{self, Request, Timeouts, READ_CHUNK};
use crate::openmetrics::{self, Labels, Metrics};
use crate::state::State;

pub mod cli_inputs;

/// Input bytes before the stream: the answer limit, then four read sizes.
pub const CONTROL: usize = 5;
/// `sluice top`'s limit on an answer, for a limit byte of 0.
const TOP_LIMIT: usize = 32 << 20;

/// Input: `[answer limit, 4 read sizes, stream...]`. The stream is read as `sluice top`,
/// `reload` and `drain` read an answer, in reads of those sizes in turn (0: as much as asked
/// for) against the limit (0: top's 32 MiB, else the byte, so its edge is within reach); the body
/// of a 200 is then parsed as `/metrics` text and as `/state` JSON, as `sluice top` does, and so
/// is the whole stream. None may panic, and each must keep the promises its checks spell out.
pub fn fuzz_cli_responses(data: &[u8]) {
    let Some((control, stream)) = data.split_at_checked(CONTROL) else {
        return;
    };
    let limit = match control[0] {
        0 => TOP_LIMIT,
        n => usize::from(n),
    };
    let sizes = [control[1], control[2], control[3], control[4]].map(usize::from);
    let text = String::from_utf8_lossy(stream);
    check_metrics(&text);
    check_state(&text);
    if let Ok((200, body)) = check_answer(stream, sizes, limit) {
        check_metrics(&body);
        check_state(&body);
    }
}

impl Timeouts for Chunked<'_> {
    fn read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn write_timeout(&self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// Reads `stream` as an answer of at most `limit` bytes, in reads of `sizes`: the answer, and
/// how many bytes it took.
fn read(stream: &[u8], sizes: [usize; 4], limit: usize) -> (Result<(u16, String), String>, usize) {
    let request = Request {
        method: "GET",
        path: "/metrics",
        authority: "fuzz",
        user_agent: "fuzz",
        timeout: Duration::from_secs(3600),
        max_response: limit,
    };
    let mut reader = Chunked::new(stream, sizes);
    let deadline = Instant::now() + request.timeout;
    let answer = http_client::read_answer(&mut reader, &request, deadline);
    (answer, reader.taken)
}

/// Reads `stream` as an answer; panics unless the reader kept to its limit, came to the same
/// answer however the stream was cut, stopped early only on an answer that no later byte
/// changes, and took its status and body from where they are.
fn check_answer(stream: &[u8], sizes: [usize; 4], limit: usize) -> Result<(u16, String), String> {
    let (answer, taken) = read(stream, sizes, limit);
    assert!(
        taken <= limit + READ_CHUNK,
        "{taken} bytes for a limit of {limit}"
    );
    let over = format!("an answer over {limit} bytes");
    if answer.as_ref().err() == Some(&over) {
        assert!(
            taken > limit,
            "refused {taken} bytes for a limit of {limit}"
        );
        return answer;
    }
    // A read that carries the stream past the limit may refuse what smaller reads finished.
    let (whole, _) = read(stream, [0; 4], limit);
    if whole.as_ref().err() != Some(&over) {
        assert_eq!(
            answer, whole,
            "reads of {sizes:?} against reads as large as asked"
        );
    }
    if taken < stream.len() {
        let (read, done) = (&stream[..taken], Some(&answer));
        assert_eq!(http_client::complete(read, false).as_ref(), done);
        assert_eq!(http_client::complete(read, true).as_ref(), done);
        assert_eq!(http_client::complete(stream, false).as_ref(), done);
        assert_eq!(http_client::complete(stream, true).as_ref(), done);
    }
    if let Ok((status, body)) = &answer {
        check_success(&stream[..taken], *status, body);
    }
    answer
}

/// An answer read from `read` as `(status, body)`: the status is its status line's code; the
/// body is what follows the head, all of it without a Content-Length, as many bytes as a sole
/// plain one says.
fn check_success(read: &[u8], status: u16, body: &str) {
    let end = read.windows(4).position(|w| w == b"\r\n\r\n");
    let Some(end) = end else {
        panic!("an answer without a blank line after its head");
    };
    let head = String::from_utf8_lossy(&read[..end]);
    let mut lines = head.split("\r\n");
    let mut words = lines.next().unwrap_or_default().split(' ');
    assert!(words.next().is_some_and(|v| v.starts_with("HTTP/1.")));
    assert_eq!(
        words.next().and_then(|c| c.parse::<u16>().ok()),
        Some(status)
    );
    let lengths: Vec<&str> = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| value.trim())
        .collect();
    let rest = &read[end + 4..];
    match lengths[..] {
        [] => assert_eq!(String::from_utf8_lossy(rest), body),
        // Digits that fit a usize; several or odd lengths are not pinned down.
        [n] if (1..16).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) => {
            let n = n.parse::<usize>().unwrap_or(usize::MAX);
            assert!(rest.len() >= n, "a {n}-byte body from {} bytes", rest.len());
            assert_eq!(String::from_utf8_lossy(&rest[..n]), body);
        }
        _ => {}
    }
}

/// The sample lines of an exposition (not empty, not `#`), as the parser sees them.
fn sample_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses `text` as `/metrics`; panics unless every sample line became one sample under its
/// well-formed name, the samples read back the same when written out again, or the error names
/// the first line that is not a sample.
fn check_metrics(text: &str) {
    let metrics = match openmetrics::parse(text) {
        Ok(metrics) => metrics,
        Err(e) => {
            let lines: Vec<&str> = text.lines().collect();
            assert!((1..=lines.len()).contains(&e.line), "{e}");
            let bad = lines[e.line - 1].trim_end_matches('\r');
            assert!(!bad.is_empty() && !bad.starts_with('#'), "{e}");
            let before = lines[..e.line - 1].join("\n");
            assert!(
                openmetrics::parse(&before).is_ok(),
                "{e}: not the first bad line"
            );
            return;
        }
    };
    let names: BTreeSet<&str> = sample_lines(text)
        .map(|line| &line[..line.find(|c| !is_name_char(c)).unwrap_or(line.len())])
        .collect();
    let samples: usize = names.iter().map(|name| metrics.series(name).len()).sum();
    assert_eq!(samples, sample_lines(text).count(), "a sample line lost");
    for name in &names {
        assert!(name.chars().all(is_name_char) && !name.starts_with(|c: char| c.is_ascii_digit()));
        assert!(metrics.has(name));
        for (labels, _) in metrics.series(name) {
            for (key, _) in labels {
                assert!(
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                );
            }
        }
    }
    let written = write_out(&metrics, &names);
    let again = openmetrics::parse(&written);
    let Ok(again) = again else {
        panic!("its own samples written out do not parse: {written:?}");
    };
    for name in &names {
        let (before, after) = (metrics.series(name), again.series(name));
        assert_eq!(before.len(), after.len(), "{name}");
        for ((l1, v1), (l2, v2)) in before.iter().zip(after) {
            assert_eq!(l1, l2, "{name}");
            assert!(
                v1 == v2 || (v1.is_nan() && v2.is_nan()),
                "{name}: {v1} read back {v2}"
            );
        }
    }
}

/// The samples of `metrics` named `names` as exposition text.
fn write_out(metrics: &Metrics, names: &BTreeSet<&str>) -> String {
    let mut out = String::new();
    for name in names {
        for (labels, value) in metrics.series(name) {
            out.push_str(name);
            out.push_str(&label_set(labels));
            out.push(' ');
            out.push_str(&number(*value));
            out.push('\n');
        }
    }
    out
}

fn label_set(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{key}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        (if v > 0.0 { "+Inf" } else { "-Inf" }).into()
    } else {
        // Debug is the shortest text that parses back to the same value.
        format!("{v:?}")
    }
}

/// Parses `text` as `/state`; panics unless only JSON is read as a state, and its lookups find
/// the first service and backend of a name.
fn check_state(text: &str) {
    let state = match State::parse(text) {
        Ok(state) => state,
        Err(e) => {
            assert!(e.starts_with("not the /state JSON: "), "{e}");
            return;
        }
    };
    let json = serde_json::from_str::<serde_json::Value>(text);
    assert!(json.is_ok(), "read as /state but not JSON");
    for service in &state.services {
        let first = state.services.iter().find(|s| s.name == service.name);
        assert_eq!(state.service(&service.name), first);
        for backend in &service.backends {
            let health = first
                .and_then(|s| s.backends.iter().find(|b| b.address == backend.address))
                .and_then(|b| b.health_check.as_ref());
            assert_eq!(state.health(&service.name, &backend.address), health);
        }
    }
}
