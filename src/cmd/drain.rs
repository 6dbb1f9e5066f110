//! `sluice drain`: withdraw every VIP of a running appliance (`POST /-/drain`), or end the drain
//! (`--undo`, `POST /-/undrain`); forwarding of existing flows goes on either way.
//!
//! Exit 0: done. 1: not allowed (403). 2: no answer, or control did not act within 2 s.
use std::process::ExitCode;
use std::time::Duration;

use super::listener::{self, fail, Failure};

pub use super::listener::Target;

pub fn main(target: Target<'_>, undo: bool, timeout: Duration) -> ExitCode {
    listener::exit(drain(target, undo, timeout))
}

fn drain(target: Target<'_>, undo: bool, timeout: Duration) -> Result<String, Failure> {
    let path = if undo { "/-/undrain" } else { "/-/drain" };
    let listener::Answer {
        authority,
        status,
        body,
    } = listener::post(target, path, "sluice-drain", timeout)?;
    match status {
        200 => Ok(body),
        403 => Err(fail(
            1,
            format!("POST {path} at {authority} not allowed: {body}"),
        )),
        other => Err(fail(
            2,
            format!(
                "{authority}: answer {other} to POST {path}: {}",
                body.lines().next().unwrap_or_default()
            ),
        )),
    }
}
