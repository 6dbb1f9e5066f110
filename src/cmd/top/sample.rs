//! One poll of the appliance: `GET /metrics` (required) and `GET /state` (its detail is optional:
//! when it fails the frame says so and shows the rest).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::openmetrics::{self, Metrics};
use super::state::State;
use crate::cmd::listener::{fail, Failure, Listener};
use sluice::http_client::{self, Request};

/// An answer larger than this is not sluice's (a scrape is tens of KiB per hundred backends).
const MAX_RESPONSE: usize = 32 << 20;

/// What one poll saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metrics: Metrics,
    /// The `/state` detail, or why it is missing.
    pub state: Result<State, String>,
    /// Wall-clock seconds since the epoch when `/metrics` answered, for uptime.
    pub unix: f64,
}

/// Both endpoints of `at`. Exit code 2 when the listener does not answer, 1 when what answers
/// is not sluice's `/metrics`.
pub fn fetch(at: &Listener, timeout: Duration) -> Result<Sample, Failure> {
    let text = get(at, "/metrics", timeout)?;
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let metrics = openmetrics::parse(&text).map_err(|e| {
        fail(
            1,
            format!("{}/metrics is not OpenMetrics text: {e}", at.authority),
        )
    })?;
    let state = get(at, "/state", timeout)
        .map_err(|f| f.message)
        .and_then(|body| State::parse(&body));
    Ok(Sample {
        metrics,
        state,
        unix,
    })
}

fn get(at: &Listener, path: &str, timeout: Duration) -> Result<String, Failure> {
    let request = Request {
        method: "GET",
        path,
        authority: &at.authority,
        user_agent: "sluice-top",
        timeout,
        max_response: MAX_RESPONSE,
    };
    let (status, body) = http_client::send(&request, &at.addrs).map_err(|e| {
        fail(
            2,
            format!("no answer from sluice at {}{}: {e}", at.authority, at.from),
        )
    })?;
    if status != 200 {
        return Err(fail(
            1,
            format!(
                "{}: GET {path} answered {status}: {}",
                at.authority,
                body.lines().next().unwrap_or_default()
            ),
        ));
    }
    Ok(body)
}
