//! `sluice top`: a live terminal view of a running appliance, polled from its metrics listener
//! (`GET /metrics` and `GET /state`): rates per service and backend, drops by reason, flows and
//! worker busy %. `--once` prints one plain frame (rates over two polls) for scripts.
//!
//! Exit 0 when the view ends (`q`, SIGINT, `--iterations`); with `--once` 1 when what answers
//! is not sluice's `/metrics`, 2 when nothing answers; 2 for a bad `--url`, 1 for a `-c` file
//! that names no address (as `reload` and `drain`).
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use control::config::DEFAULT_METRICS_LISTEN;

use super::listener::{self, Failure, Listener, Target};
use sluice::args::parse_interval;
use sluice::{openmetrics, state};

mod render;
mod sample;
mod terminal;

use sample::Sample;

#[derive(clap::Args)]
pub struct Args {
    /// The config sluice runs with: its metrics.listen is where to poll (0.0.0.0 and :: as
    /// loopback). Without -c or --url, the default listener http://127.0.0.1:9610.
    #[arg(short, long, conflicts_with = "url")]
    config: Option<PathBuf>,
    /// The metrics listener instead, e.g. http://127.0.0.1:9610.
    #[arg(long)]
    url: Option<String>,
    /// Time between polls: seconds (0.5) or with a unit (500ms, 2s).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// Print one plain-text frame (two polls an interval apart, for the rates) and exit.
    #[arg(long, conflicts_with = "iterations")]
    once: bool,
    /// Exit after drawing this many frames.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    iterations: Option<u64>,
}

pub fn main(args: &Args) -> ExitCode {
    let default = format!("http://{DEFAULT_METRICS_LISTEN}");
    let target = match (&args.config, &args.url) {
        (Some(path), _) => Target::Config(path),
        (None, Some(url)) => Target::Url(url),
        (None, None) => Target::Url(&default),
    };
    let outcome = listener::resolve(target, &["/metrics", "/state"]).and_then(|at| {
        if args.once {
            once(&at, args.interval)
        } else {
            live(&at, args.interval, args.iterations)
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sluice: {}", f.message.trim_end());
            ExitCode::from(f.code)
        }
    }
}

/// How long one request may take: an interval, within 1 to 5 s (the listener answers in 5).
fn request_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// Two polls `interval` apart, then one frame on stdout.
fn once(at: &Listener, interval: Duration) -> Result<(), Failure> {
    let timeout = request_timeout(interval);
    let started = Instant::now();
    let first = sample::fetch(at, timeout)?;
    std::thread::sleep(interval.saturating_sub(started.elapsed()));
    let dt = started.elapsed().as_secs_f64();
    let second = sample::fetch(at, timeout)?;
    // A terminal gets a frame that fits; a pipe gets whole lines.
    let width = if terminal::stdout_is_terminal() {
        terminal::size().0
    } else {
        usize::MAX
    };
    let title = format!("sluice top   {}   rates over {dt:.2}s", at.authority);
    print!(
        "{}\n{}",
        cut_title(&title, width),
        render::render(Some(&first), &second, dt, width)
    );
    Ok(())
}

/// The full-screen view, redrawn every `interval` until `q`, a signal or `iterations` frames.
fn live(at: &Listener, interval: Duration, iterations: Option<u64>) -> Result<(), Failure> {
    let timeout = request_timeout(interval);
    let mut screen = terminal::Screen::enter()
        .map_err(|e| listener::fail(1, format!("cannot set up the terminal: {e}")))?;
    let mut prev: Option<(Instant, Sample)> = None;
    let mut frames = 0u64;
    let mut next = Instant::now();
    loop {
        let polled = Instant::now();
        let (cols, _) = terminal::size();
        let title = format!(
            "sluice top   {}{}   every {}s   q quits",
            at.authority,
            at.from,
            interval.as_secs_f64()
        );
        let body = match sample::fetch(at, timeout) {
            Ok(cur) => {
                let last = prev.as_ref();
                let dt = last.map_or(0.0, |(t, _)| (polled - *t).as_secs_f64());
                let body = render::render(last.map(|(_, s)| s), &cur, dt, cols);
                prev = Some((polled, cur));
                body
            }
            // The appliance may be restarting: say so and keep polling.
            Err(f) => format!(
                "{}\n(polling again every {}s)\n",
                f.message,
                interval.as_secs_f64()
            ),
        };
        let frame = format!("{}\n{body}", cut_title(&title, cols));
        let _ = screen.draw(&frame);
        frames += 1;
        if iterations.is_some_and(|n| frames >= n) {
            return Ok(());
        }
        next += interval;
        if next < Instant::now() {
            // A slow poll: start the next interval now rather than polling back to back.
            next = Instant::now() + interval;
        }
        loop {
            match screen.wait(next) {
                terminal::Event::Quit => return Ok(()),
                terminal::Event::Resize => {
                    let _ = screen.draw(&frame);
                }
                terminal::Event::Tick => break,
            }
        }
    }
}

fn cut_title(title: &str, width: usize) -> &str {
    match title.char_indices().nth(width) {
        Some((at, _)) => &title[..at],
        None => title,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts() {
        assert_eq!(
            request_timeout(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
    }
}
