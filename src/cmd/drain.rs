//! `sluice drain`: withdraw every VIP of a running appliance (`POST /-/drain`), or end the drain
//! (`--undo`, `POST /-/undrain`); forwarding of existing flows goes on either way.
//!
//! Exit 0: done. 1: not allowed (403). 2: no answer, or control did not act within 2 s.
use std::process::ExitCode;
use std::time::Duration;

use super::http_client::{self, Request};
use super::listener::{self, fail, Failure};

pub use super::listener::Target;

const MAX_RESPONSE: usize = 64 << 10;

pub fn main(target: Target<'_>, undo: bool, timeout: Duration) -> ExitCode {
    match drain(target, undo, timeout) {
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

fn drain(target: Target<'_>, undo: bool, timeout: Duration) -> Result<String, Failure> {
    let path = if undo { "/-/undrain" } else { "/-/drain" };
    let listener::Listener {
        authority,
        addrs,
        from,
    } = listener::resolve(target, &[path])?;
    let request = Request {
        method: "POST",
        path,
        authority: &authority,
        user_agent: "sluice-drain",
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
