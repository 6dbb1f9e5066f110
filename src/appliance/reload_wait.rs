//! `POST /-/reload` answers with the outcome of the reload it asked for, not just "requested".
//!
//! Control counts the reloads it starts and finishes; a request waits for the first reload that
//! starts after it (SIGHUPs and requests that arrive together share one reload, as before).

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use dataplane::runtime::signals;

/// The epoch a reload published, or why it was refused.
pub type Outcome = Result<u64, String>;

#[derive(Default)]
struct Log {
    started: u64,
    finished: u64,
    last: Option<Outcome>,
    /// Set once control stops: no reload will start or end any more, and why.
    closed: Option<String>,
}

/// Reloads started and finished, shared by control (writer) and the HTTP threads (waiters).
#[derive(Default)]
pub struct ReloadWaiter {
    log: Mutex<Log>,
    done: Condvar,
}

impl ReloadWaiter {
    /// Control: a reload begins (call before reading the file).
    pub fn started(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.started += 1;
        }
    }

    /// Control: the reload that began last has ended with `outcome`.
    pub fn finished(&self, outcome: Outcome) {
        if let Ok(mut l) = self.log.lock() {
            l.finished = l.started;
            l.last = Some(outcome);
        }
        self.done.notify_all();
    }

    /// Control: it has stopped taking reloads (the appliance is stopping). Every request
    /// waiting, and every later one, is answered at once with `why` instead of waiting out its
    /// timeout for a reload that will never run (and holding up the HTTP threads' stop).
    pub fn close(&self, why: &str) {
        if let Ok(mut l) = self.log.lock() {
            l.closed = Some(why.to_owned());
        }
        self.done.notify_all();
    }

    /// Asks control for a reload and waits up to `timeout` for one that starts after this
    /// call; `None` if none ended in time (the request stays pending).
    pub fn request_and_wait(&self, timeout: Duration) -> Option<Outcome> {
        let log = self.log.lock().ok()?;
        if let Some(why) = &log.closed {
            return Some(Err(why.clone()));
        }
        let want = log.started + 1;
        signals::request_reload();
        let (log, _) = self
            .done
            .wait_timeout_while(log, timeout, |l| l.finished < want && l.closed.is_none())
            .ok()?;
        if log.finished < want {
            return log.closed.clone().map(Err);
        }
        log.last.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A request is answered by the reload that starts after it, not by one already running.
    #[test]
    fn a_request_waits_for_a_reload_that_starts_after_it() {
        let w = Arc::new(ReloadWaiter::default());
        w.started(); // a reload already running when the request comes
        let waiter = Arc::clone(&w);
        let asker = std::thread::spawn(move || waiter.request_and_wait(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        w.finished(Ok(1)); // the earlier reload ends: not the answer
        std::thread::sleep(Duration::from_millis(20));
        assert!(!asker.is_finished());
        w.started();
        w.finished(Err("bad file".into()));
        assert_eq!(asker.join().unwrap(), Some(Err("bad file".into())));
        // The flag is process-wide: leave it as found.
        signals::take_reload_request();
    }

    /// Stopping answers the requests still waiting at once, with the reason, and refuses later
    /// ones: none waits out its timeout for a reload that will never run.
    #[test]
    fn stopping_answers_every_waiting_request() {
        let w = Arc::new(ReloadWaiter::default());
        let waiter = Arc::clone(&w);
        // Released by `close`, not by its timeout: that would be None.
        let asker = std::thread::spawn(move || waiter.request_and_wait(Duration::from_secs(600)));
        std::thread::sleep(Duration::from_millis(20));
        w.close("sluice is stopping");
        assert_eq!(
            asker.join().unwrap(),
            Some(Err("sluice is stopping".into()))
        );
        assert_eq!(
            w.request_and_wait(Duration::from_secs(600)),
            Some(Err("sluice is stopping".into()))
        );
        signals::take_reload_request();
    }

    #[test]
    fn no_reload_in_time_is_none() {
        let w = ReloadWaiter::default();
        assert_eq!(w.request_and_wait(Duration::from_millis(10)), None);
        signals::take_reload_request();
    }
}
