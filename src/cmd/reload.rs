//! `sluice reload`: ask a running appliance to reload (`POST /-/reload` on its metrics listener)
//! and report the outcome, so `systemctl reload` fails when the file is refused.
//!
//! Exit 0: reloaded. 1: refused (500, the reason printed) or not allowed (403), or `-c` names a
//! file whose listen address cannot be read. 2: no answer, or no outcome (202: still running).
use std::process::ExitCode;
use std::time::Duration;

use super::listener::{self, fail, Failure};

pub use super::listener::Target;

pub fn main(target: Target<'_>, timeout: Duration) -> ExitCode {
    listener::exit(reload(target, timeout))
}

fn reload(target: Target<'_>, timeout: Duration) -> Result<String, Failure> {
    let listener::Answer {
        authority,
        status,
        body,
    } = listener::post(target, "/-/reload", "sluice-reload", timeout)?;
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
