//! `sluice reload`: ask a running appliance to reload (`POST /-/reload` on its metrics listener)
//! and report the outcome, so `systemctl reload` fails when the file is refused.
//!
//! Exit 0: reloaded. 1: refused (500, the reason printed) or not allowed (403), or `-c` names a
//! file whose listen address cannot be read. 2: no answer, or no outcome (202: still running).
use std::process::ExitCode;
use std::time::Duration;

use super::http_client::{self, Request};
use super::listener::{self, fail, Failure};

pub use super::listener::Target;

/// An answer larger than this is not sluice's; the reason of a refusal is a few lines.
const MAX_RESPONSE: usize = 64 << 10;

pub fn main(target: Target<'_>, timeout: Duration) -> ExitCode {
    match reload(target, timeout) {
        Ok(body) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("sluice: {}", f.message.trim_end());
            ExitCode::from(f.code)
        }
    }
}

fn reload(target: Target<'_>, timeout: Duration) -> Result<String, Failure> {
    let listener::Listener {
        authority,
        addrs,
        from,
    } = listener::resolve(target, &["/-/reload"])?;
    let request = Request {
        method: "POST",
        path: "/-/reload",
        authority: &authority,
        user_agent: "sluice-reload",
        timeout,
        max_response: MAX_RESPONSE,
    };
    let (status, body) = http_client::send(&request, &addrs).map_err(|e| {
        fail(
            2,
            format!("no answer from sluice at {authority}{from}: {e}"),
        )
    })?;
    match status {
        200 => Ok(body),
        500 => Err(fail(1, body)),
        403 => Err(fail(
            1,
            format!("POST /-/reload at {authority} not allowed: {body}"),
        )),
        202 => Err(fail(
            2,
            format!("{authority}: {body} (the outcome is in sluice's log and /metrics)"),
        )),
        other => Err(fail(
            2,
            format!(
                "{authority}: unexpected answer {other} to POST /-/reload: {}",
                body.lines().next().unwrap_or_default()
            ),
        )),
    }
}
