//! The live view's terminal: the alternate screen without a cursor, keys read one at a time
//! without echo, and all of it restored on exit, on SIGINT/SIGTERM/SIGHUP included (their
//! handlers only set a flag, so the [`Screen`]'s drop restores the terminal).
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static STOP: AtomicBool = AtomicBool::new(false);
static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_resize(_: libc::c_int) {
    RESIZED.store(true, Ordering::SeqCst);
}

/// What ended a [`Screen::wait`].
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// `q`, or a stop signal.
    Quit,
    /// The terminal changed size: redraw.
    Resize,
    /// The deadline passed: poll again.
    Tick,
}

/// The terminal while the live view runs; dropping it puts everything back.
pub struct Screen {
    /// The input settings to restore, when stdin is a terminal we changed.
    saved: Option<libc::termios>,
    /// False once stdin reached end of file: nothing more to read.
    input: bool,
}

impl Screen {
    /// Installs the signal handlers, switches input to single keys and enters the alternate
    /// screen.
    pub fn enter() -> io::Result<Screen> {
        for (signal, handler) in [
            (libc::SIGINT, on_stop as extern "C" fn(libc::c_int)),
            (libc::SIGTERM, on_stop),
            (libc::SIGHUP, on_stop),
            (libc::SIGWINCH, on_resize),
        ] {
            // SAFETY: the handlers only store to atomics; no SA_RESTART, so a wait in poll(2)
            // returns EINTR and sees the flag at once.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as usize;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        let saved = raw_input()?;
        let screen = Screen { saved, input: true };
        // Alternate screen, cursor hidden, cleared once (frames then overwrite in place).
        write_out("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")?;
        Ok(screen)
    }

    /// Draws `frame` from the top left corner, cut to the terminal's size.
    pub fn draw(&self, frame: &str) -> io::Result<()> {
        let (cols, rows) = size();
        let lines: Vec<&str> = frame.lines().collect();
        let mut shown: Vec<String> = lines
            .iter()
            .take(rows)
            .map(|l| cut(l, cols).to_owned())
            .collect();
        if lines.len() > rows && rows > 0 {
            shown[rows - 1] = cut(
                &format!(
                    "... {} more lines: enlarge the terminal",
                    lines.len() - rows + 1
                ),
                cols,
            )
            .to_owned();
        }
        // Home, then each line cleared to its end and everything below the frame: redrawing in
        // place instead of clearing the screen first does not flicker.
        let mut out = String::from("\x1b[H");
        out.push_str(&shown.join("\x1b[K\r\n"));
        out.push_str("\x1b[K\x1b[J");
        write_out(&out)
    }

    /// Waits until `deadline` for `q` or a signal.
    pub fn wait(&mut self, deadline: Instant) -> Event {
        loop {
            if STOP.load(Ordering::SeqCst) {
                return Event::Quit;
            }
            if RESIZED.swap(false, Ordering::SeqCst) {
                return Event::Resize;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Event::Tick;
            }
            let ms = left.as_millis().clamp(1, 1000) as libc::c_int;
            let mut fd = libc::pollfd {
                fd: libc::STDIN_FILENO,
                events: libc::POLLIN,
                revents: 0,
            };
            let watched = libc::nfds_t::from(self.input);
            // SAFETY: `fd` outlives the call; with nothing watched poll(2) only sleeps.
            let n = unsafe { libc::poll(&mut fd, watched, ms) };
            if n <= 0 || fd.revents == 0 {
                continue; // timeout, or EINTR from a signal: the flags are checked above
            }
            let mut buf = [0u8; 64];
            // SAFETY: reads at most buf.len() bytes into buf.
            let got = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
            match got {
                // End of input (or a hang-up): only signals and --iterations end the view now.
                0 => self.input = false,
                n if n < 0 => {
                    if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                        self.input = false;
                    }
                }
                n => {
                    // q, or Ctrl-C / Ctrl-D arriving as bytes.
                    if buf[..n as usize]
                        .iter()
                        .any(|b| matches!(b, b'q' | b'Q' | 3 | 4))
                    {
                        return Event::Quit;
                    }
                }
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Cursor back, main screen back: the shell's screen reappears as it was.
        let _ = write_out("\x1b[?25h\x1b[?1049l");
        if let Some(saved) = self.saved {
            // SAFETY: restores settings tcgetattr returned for this same descriptor.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved) };
        }
    }
}

/// Turns off line buffering and echo on stdin when it is a terminal; the settings before.
fn raw_input() -> io::Result<Option<libc::termios>> {
    // SAFETY: isatty/tcgetattr/tcsetattr on our own stdin with a termios they fill in.
    unsafe {
        if libc::isatty(libc::STDIN_FILENO) != 1 {
            return Ok(None);
        }
        let mut saved: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        // ISIG stays on: Ctrl-C is a SIGINT, whose handler ends the view like `q`.
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Some(saved))
    }
}

/// The terminal's (columns, rows): from stdout, else $COLUMNS/$LINES, else 80x24.
pub fn size() -> (usize, usize) {
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        return (usize::from(ws.ws_col), usize::from(ws.ws_row));
    }
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(default)
    };
    (env("COLUMNS", 80), env("LINES", 24))
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDOUT_FILENO) == 1 }
}

fn cut(line: &str, width: usize) -> &str {
    match line.char_indices().nth(width) {
        Some((at, _)) => &line[..at],
        None => line,
    }
}

fn write_out(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()
}
