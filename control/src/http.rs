//! A minimal HTTP/1.1 server for the control endpoint (/metrics, /healthz, /state, POST /-/reload);
//! its head parser and encoder also serve the control socket (`control_socket`).
//!
//! Long (about 900 lines besides tests): the poll loop, its bounded connection table, the
//! deadlines and the serving pool are one state machine over shared state; the head parser is
//! the only part with its own contract, and it is fuzzed here through `fuzzing`.
//!
//! One I/O thread runs a poll(2) readiness loop over the listener and every connection; a few
//! serving threads run the handlers. Every connection carries one request and is closed.
//! Why a readiness loop: a thread blocked reading each connection lets a thousand idle or
//! slow clients starve /metrics; here a connection costs a table slot, not a thread. The I/O
//! thread accepts, reads request heads and bodies as bytes arrive (each connection against
//! its own total deadline), and writes answers without blocking; only complete requests
//! reach the serving threads, whose handlers may block (POST /-/reload waits for a reload).
//! The table is bounded: when it is full, the oldest connection still sending its request is
//! closed to let the newcomer in, so idle clients only displace each other and a scraper
//! that sends its request at once gets in. When every serving thread is busy and the queue
//! of complete requests is full, a request gets a quick 503.
//!
//! Why not a crate: tiny_http serves each connection on a pool thread and adds a thread
//! whenever all are busy, so a thousand idle clients are a thousand threads; hyper bounds
//! slowloris with `header_read_timeout`, but brings tokio and a dozen crates to audit for
//! four routes. What is owned here instead is one fuzzed head parser (`fuzzing`)
//! and this loop, on libc, which the dataplane already links.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE_PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The OpenMetrics text format, for a scraper that asks for it.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const CONTENT_TYPE_JSON: &str = "application/json";
pub const CONTENT_TYPE_TEXT: &str = "text/plain; charset=utf-8";

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// As sent, e.g. `GET`; a HEAD request reaches GET handlers with method `HEAD`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// What followed `?`, if anything.
    pub query: Option<String>,
    /// Header names as sent; look them up with `header`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address, when the connection knows it (handlers may gate on it).
    pub peer: Option<SocketAddr>,
    /// The address the client connected to.
    pub local: Option<SocketAddr>,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response; Content-Length and Connection: close are added when it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type: content_type.to_string(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Plain UTF-8 text.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response::new(status, CONTENT_TYPE_TEXT, body)
    }

    /// A JSON document.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response::new(status, CONTENT_TYPE_JSON, body)
    }

    /// A 200 in the Prometheus text format.
    pub fn prometheus(body: impl Into<Vec<u8>>) -> Self {
        Response::new(200, CONTENT_TYPE_PROMETHEUS, body)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// Serves one route; called on a server thread, so it must not block for long.
pub type Handler = Box<dyn Fn(&Request) -> Response + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// Exact paths to handlers. GET routes also answer HEAD; a known path with another method
/// gets 405 with Allow, an unknown path 404.
#[derive(Default)]
pub struct Router {
    routes: Vec<(Method, String, Handler)>,
}

impl Router {
    pub fn new() -> Self {
        Router::default()
    }

    pub fn get<F>(mut self, path: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        self.routes
            .push((Method::Get, path.to_string(), Box::new(handler)));
        self
    }

    pub fn post<F>(mut self, path: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        self.routes
            .push((Method::Post, path.to_string(), Box::new(handler)));
        self
    }

    /// The response to `request`; a panicking handler gives 500, not a dead server thread,
    /// where panics unwind (tests). sluice's release profile aborts on a panic instead.
    pub fn handle(&self, request: &Request) -> Response {
        let method = match request.method.as_str() {
            "GET" | "HEAD" => Some(Method::Get),
            "POST" => Some(Method::Post),
            _ => None,
        };
        let on_path = || self.routes.iter().filter(|(_, p, _)| *p == request.path);
        if let Some((_, _, handler)) = on_path().find(|(m, _, _)| Some(*m) == method) {
            return catch_unwind(AssertUnwindSafe(|| handler(request)))
                .unwrap_or_else(|_| Response::text(500, "internal error: the handler panicked\n"));
        }
        let allow: Vec<&str> = on_path()
            .map(|(m, _, _)| match m {
                Method::Get => "GET, HEAD",
                Method::Post => "POST",
            })
            .collect();
        if allow.is_empty() {
            return Response::text(404, "not found\n");
        }
        Response::text(405, "method not allowed\n").with_header("Allow", &allow.join(", "))
    }
}

/// Limits of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Threads running handlers (at least one).
    pub workers: usize,
    /// Complete requests waiting for a serving thread; beyond that clients get 503.
    pub queue: usize,
    /// Connections open at once (at most a quarter of RLIMIT_NOFILE); when full, the oldest
    /// one still sending its request is closed to let a newcomer in.
    pub max_connections: usize,
    /// Total time to receive a request, head and body.
    pub read_timeout: Duration,
    /// Total time to send a response.
    pub write_timeout: Duration,
    /// Largest request line plus headers.
    pub max_head_bytes: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Pin the server threads to this core (the control core), if set.
    pub core: Option<usize>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            workers: 2,
            queue: 16,
            max_connections: 1024,
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            max_head_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
            core: None,
        }
    }
}

/// How long an answered, half-closed connection is drained before it is closed.
const DRAIN_FOR: Duration = Duration::from_millis(100);
/// Connections accepted per wake-up, so a burst of newcomers can't starve open ones.
const ACCEPT_BURST: usize = 64;

/// A running server; dropping it stops and joins its threads.
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    wake: Arc<UnixStream>,
    threads: Vec<JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on `addr` (port 0 picks one; see `local_addr`) and serves `router`.
    pub fn bind(
        addr: impl ToSocketAddrs,
        router: Router,
        options: ServerOptions,
    ) -> io::Result<HttpServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        let wake_tx = Arc::new(wake_tx);
        let stop = Arc::new(AtomicBool::new(false));
        let router = Arc::new(router);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(options.queue);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let mut server = HttpServer {
            local_addr,
            stop: Arc::clone(&stop),
            wake: Arc::clone(&wake_tx),
            threads: Vec::new(),
        };
        let core = options.core;
        for n in 0..options.workers.max(1) {
            let (router, job_rx, done_tx, wake) = (
                Arc::clone(&router),
                Arc::clone(&job_rx),
                done_tx.clone(),
                Arc::clone(&wake_tx),
            );
            let handle = thread::Builder::new()
                .name(format!("http-{n}"))
                .spawn(move || {
                    pin(core);
                    serve_requests(&job_rx, &done_tx, &wake, &router)
                })?;
            server.threads.push(handle);
        }
        drop(done_tx);
        let max_connections = options.max_connections.min(descriptor_budget()).max(1);
        let io = IoLoop {
            listener: Some(listener),
            wake: wake_rx,
            stop,
            jobs: job_tx,
            done: done_rx,
            options,
            max_connections,
            conns: BTreeMap::new(),
            next_id: 0,
            accept_paused_until: None,
        };
        let handle = thread::Builder::new()
            .name("http-io".to_string())
            .spawn(move || {
                pin(core);
                io.run()
            })?;
        server.threads.push(handle);
        Ok(server)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes connections still sending their request, lets requests in
    /// progress finish (within their deadlines) and joins.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        wake_up(&self.wake);
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

/// A quarter of the soft descriptor limit: a flood of HTTP clients must not take the
/// descriptors health checks and the rest of the process need.
fn descriptor_budget() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid, exclusive pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 256;
    }
    usize::try_from(limit.rlim_cur / 4).unwrap_or(usize::MAX)
}

/// Tells the I/O thread to look at its channels and flags.
fn wake_up(wake: &UnixStream) {
    let mut wake = wake;
    // A full socket means a wake-up is already pending.
    let _ = wake.write(&[1]);
}

/// A complete request for a serving thread.
struct Job {
    id: u64,
    request: Request,
}

/// The encoded answer to a job.
struct Done {
    id: u64,
    bytes: Vec<u8>,
}

fn serve_requests(
    jobs: &Mutex<Receiver<Job>>,
    done: &Sender<Done>,
    wake: &UnixStream,
    router: &Router,
) {
    loop {
        let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else { return };
        let response = router.handle(&job.request);
        let bytes = encode(&response, job.request.method == "HEAD");
        if done.send(Done { id: job.id, bytes }).is_err() {
            return;
        }
        wake_up(wake);
    }
}

enum Phase {
    /// Receiving the request; `parsed` holds the head and body length once the head is in,
    /// and `buf` the head, then the body, so far.
    Reading { parsed: Option<(Request, usize)> },
    /// A serving thread has the request.
    Handling,
    /// Sending `buf[sent..]`.
    Writing { sent: usize },
    /// Answered and half-closed: discarding what the client still sends, briefly, so unread
    /// bytes don't turn our close into a reset that destroys the answer before it is read.
    Draining { drained: usize },
}

struct Conn {
    stream: TcpStream,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    phase: Phase,
    buf: Vec<u8>,
    /// When this phase ends, answered or not; none while a handler runs.
    deadline: Option<Instant>,
}

/// What a connection needs after it made progress.
enum Step {
    Wait,
    Close,
    Answer(Response),
    Dispatch(Request),
}

impl Conn {
    fn start_writing(&mut self, bytes: Vec<u8>, write_timeout: Duration) {
        self.phase = Phase::Writing { sent: 0 };
        self.buf = bytes;
        self.deadline = Some(Instant::now() + write_timeout);
    }

    /// Reads what has arrived (one read per readiness, so no client hogs the loop).
    fn read(&mut self, options: &ServerOptions) -> Step {
        let Phase::Reading { parsed } = &mut self.phase else {
            return Step::Wait;
        };
        let mut chunk = [0u8; READ_CHUNK];
        let want = read_budget(&self.buf, parsed, options);
        match self.stream.read(&mut chunk[..want]) {
            Ok(0) => return Step::Close,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_transient(&e) => return Step::Wait,
            Err(_) => return Step::Close,
        }
        match advance(&mut self.buf, parsed, &mut &self.stream, options) {
            Ok(Some(mut request)) => {
                request.peer = self.peer;
                request.local = self.local;
                Step::Dispatch(request)
            }
            Ok(None) => Step::Wait,
            Err(RequestError::Reply(status, why)) => {
                Step::Answer(Response::text(status, format!("{why}\n")))
            }
        }
    }

    /// Sends as much of the answer as the socket takes; once sent, half-closes and drains.
    fn write(&mut self) -> Step {
        let Phase::Writing { sent } = &mut self.phase else {
            return Step::Wait;
        };
        while *sent < self.buf.len() {
            match self.stream.write(&self.buf[*sent..]) {
                Ok(0) => return Step::Close,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                Err(_) => return Step::Close,
            }
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        self.phase = Phase::Draining { drained: 0 };
        self.buf = Vec::new();
        self.deadline = Some(Instant::now() + DRAIN_FOR);
        Step::Wait
    }

    /// Discards what the client still sends, bounded in bytes as well as time.
    fn drain(&mut self, options: &ServerOptions) -> Step {
        let Phase::Draining { drained } = &mut self.phase else {
            return Step::Wait;
        };
        let mut sink = [0u8; 4096];
        match self.stream.read(&mut sink) {
            Ok(n) if n > 0 && *drained + n < options.max_body_bytes => {
                *drained += n;
                Step::Wait
            }
            Err(e) if is_transient(&e) => Step::Wait,
            _ => Step::Close,
        }
    }
}

/// The most one read of a request takes.
const READ_CHUNK: usize = 4096;

/// How many bytes the next read of a request may take: up to the head limit and its blank
/// line, then up to the end of the body, so a request is never read past what it may hold.
fn read_budget(buf: &[u8], parsed: &Option<(Request, usize)>, options: &ServerOptions) -> usize {
    let want = match parsed {
        None => (options.max_head_bytes + 4).saturating_sub(buf.len()),
        Some((_, length)) => length.saturating_sub(buf.len()),
    };
    want.clamp(1, READ_CHUNK)
}

/// Parses what has arrived: None while more is needed, the request once it is whole. A
/// `100 Continue` goes to `interim` (the connection; a buffer when fuzzed).
fn advance(
    buf: &mut Vec<u8>,
    parsed: &mut Option<(Request, usize)>,
    interim: &mut impl Write,
    options: &ServerOptions,
) -> Result<Option<Request>, RequestError> {
    if parsed.is_none() {
        let Some(head_end) = find(buf, b"\r\n\r\n") else {
            // Not before: a head of up to the limit may still lack part of its blank line.
            if buf.len() >= options.max_head_bytes + 4 {
                return Err(RequestError::Reply(431, "request head too large"));
            }
            return Ok(None);
        };
        if head_end > options.max_head_bytes {
            return Err(RequestError::Reply(431, "request head too large"));
        }
        let request = parse_head(&buf[..head_end])?;
        if request.header("transfer-encoding").is_some() {
            return Err(RequestError::Reply(
                501,
                "transfer-encoding is not supported",
            ));
        }
        let length = content_length(&request)?;
        if length > options.max_body_bytes {
            return Err(RequestError::Reply(413, "request body too large"));
        }
        if length > 0
            && request
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            // Best effort, as the client sends the body anyway after a wait; a fresh
            // connection's empty send buffer takes these 25 bytes whole.
            let _ = interim.write(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        buf.drain(..head_end + 4);
        *parsed = Some((request, length));
    }
    match parsed.take() {
        Some((mut request, length)) if buf.len() >= length => {
            buf.truncate(length);
            request.body = std::mem::take(buf);
            Ok(Some(request))
        }
        not_yet => {
            *parsed = not_yet;
            Ok(None)
        }
    }
}

/// The readiness loop: accepts, reads, writes and times out every connection.
struct IoLoop {
    /// None once stopping.
    listener: Option<TcpListener>,
    wake: UnixStream,
    stop: Arc<AtomicBool>,
    jobs: SyncSender<Job>,
    done: Receiver<Done>,
    options: ServerOptions,
    max_connections: usize,
    /// By accept order, so the first entry of a phase is its oldest connection.
    conns: BTreeMap<u64, Conn>,
    next_id: u64,
    /// Accepting failed for want of resources: try again then.
    accept_paused_until: Option<Instant>,
}

impl IoLoop {
    fn run(mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut ids: Vec<u64> = Vec::new();
        loop {
            if self.stop.load(Ordering::SeqCst) && self.listener.is_some() {
                self.listener = None;
                self.conns
                    .retain(|_, c| !matches!(c.phase, Phase::Reading { .. }));
            }
            self.take_answers();
            self.expire(Instant::now());
            if self.listener.is_none() && self.conns.is_empty() {
                return;
            }

            let now = Instant::now();
            fds.clear();
            ids.clear();
            fds.push(pollfd(self.wake.as_raw_fd(), libc::POLLIN));
            let mut next = None;
            let accepting = match (&self.listener, self.accept_paused_until) {
                (Some(_), Some(until)) if now < until => {
                    next = Some(until);
                    false
                }
                (Some(listener), _) => {
                    fds.push(pollfd(listener.as_raw_fd(), libc::POLLIN));
                    true
                }
                (None, _) => false,
            };
            let first_conn = fds.len();
            for (id, conn) in &self.conns {
                let events = match conn.phase {
                    Phase::Reading { .. } | Phase::Draining { .. } => libc::POLLIN,
                    Phase::Writing { .. } => libc::POLLOUT,
                    Phase::Handling => continue,
                };
                fds.push(pollfd(conn.stream.as_raw_fd(), events));
                ids.push(*id);
                next = earliest(next, conn.deadline);
            }
            let timeout = next.map_or(-1, |t| {
                let ms = t
                    .saturating_duration_since(now)
                    .as_nanos()
                    .div_ceil(1_000_000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            });
            let nfds = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
            // SAFETY: `fds` is a live, exclusively borrowed array of `nfds` pollfds for the call.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), nfds, timeout) };
            if ready < 0 {
                if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    // ENOMEM and the like: back off instead of spinning.
                    thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            if fds[0].revents != 0 {
                let mut sink = [0u8; 64];
                while matches!((&self.wake).read(&mut sink), Ok(n) if n > 0) {}
            }
            for (fd, id) in fds[first_conn..].iter().zip(&ids) {
                if fd.revents != 0 {
                    self.progress(*id);
                }
            }
            if accepting && fds[1].revents != 0 {
                self.accept();
            }
        }
    }

    /// Hands finished answers back to their connections for writing.
    fn take_answers(&mut self) {
        loop {
            match self.done.try_recv() {
                Ok(Done { id, bytes }) => {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.start_writing(bytes, self.options.write_timeout);
                    }
                }
                Err(TryRecvError::Empty) => return,
                // Every serving thread is gone: nothing will answer what they held.
                Err(TryRecvError::Disconnected) => {
                    self.conns
                        .retain(|_, c| !matches!(c.phase, Phase::Handling));
                    return;
                }
            }
        }
    }

    /// Ends every connection past its deadline: 408 if it had started a request, else close.
    fn expire(&mut self, now: Instant) {
        let late: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            let started =
                !conn.buf.is_empty() || matches!(conn.phase, Phase::Reading { parsed: Some(_) });
            if matches!(conn.phase, Phase::Reading { .. }) && started {
                let answer = Response::text(408, "request timeout\n");
                conn.start_writing(encode(&answer, false), self.options.write_timeout);
            } else {
                self.conns.remove(&id);
            }
        }
    }

    fn progress(&mut self, id: u64) {
        let options = &self.options;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let step = match conn.phase {
            Phase::Reading { .. } => conn.read(options),
            Phase::Writing { .. } => conn.write(),
            Phase::Draining { .. } => conn.drain(options),
            Phase::Handling => Step::Wait,
        };
        match step {
            Step::Wait => {}
            Step::Close => {
                self.conns.remove(&id);
            }
            Step::Answer(response) => {
                conn.start_writing(encode(&response, false), options.write_timeout)
            }
            Step::Dispatch(request) => match self.jobs.try_send(Job { id, request }) {
                Ok(()) => {
                    conn.phase = Phase::Handling;
                    conn.buf = Vec::new();
                    conn.deadline = None;
                }
                // Every serving thread is busy and the queue is full: a quick 503 so the
                // client retries instead of hanging.
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    let busy =
                        Response::text(503, "busy, retry later\n").with_header("Retry-After", "1");
                    conn.start_writing(encode(&busy, false), options.write_timeout);
                }
            },
        }
    }

    fn accept(&mut self) {
        for _ in 0..ACCEPT_BURST {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of descriptors: shed our oldest idle connection, else wait a little
                    // instead of spinning on a listener that stays readable.
                    let no_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    if !(no_fds && self.evict_oldest()) {
                        self.accept_paused_until = Some(Instant::now() + Duration::from_millis(10));
                        return;
                    }
                }
            }
        }
    }

    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        // A full table with nothing to evict (every connection has a handler) turns the
        // newcomer away; dropping it closes it.
        if self.conns.len() >= self.max_connections && !self.evict_oldest() {
            return;
        }
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let local = stream.local_addr().ok();
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            id,
            Conn {
                stream,
                peer: Some(peer),
                local,
                phase: Phase::Reading { parsed: None },
                buf: Vec::new(),
                deadline: Some(Instant::now() + self.options.read_timeout),
            },
        );
    }

    /// Closes the oldest connection still sending its request, else the oldest being
    /// answered; never one a handler holds. False if there is none.
    fn evict_oldest(&mut self) -> bool {
        let reading = |c: &Conn| matches!(c.phase, Phase::Reading { .. });
        let handling = |c: &Conn| matches!(c.phase, Phase::Handling);
        let victim = self
            .conns
            .iter()
            .find(|(_, c)| reading(c))
            .or_else(|| self.conns.iter().find(|(_, c)| !handling(c)))
            .map(|(id, _)| *id);
        victim.and_then(|id| self.conns.remove(&id)).is_some()
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

pub(crate) enum RequestError {
    /// Answer with this status and reason.
    Reply(u16, &'static str),
}

/// Parses the request line and headers (without the blank line).
pub(crate) fn parse_head(head: &[u8]) -> Result<Request, RequestError> {
    const BAD: RequestError = RequestError::Reply(400, "bad request");
    let head = std::str::from_utf8(head).map_err(|_| BAD)?;
    let mut lines = head.split("\r\n");
    let line = lines.next().ok_or(BAD)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(BAD);
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BAD);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(RequestError::Reply(505, "HTTP version not supported"));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(BAD)?;
        // An empty or space-bearing name (incl. obsolete line folding) is refused, as RFC 9112 asks.
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BAD);
        }
        headers.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    Ok(Request {
        method: method.to_string(),
        path,
        query,
        headers,
        body: Vec::new(),
        peer: None,
        local: None,
    })
}

pub(crate) fn content_length(request: &Request) -> Result<usize, RequestError> {
    const BAD: RequestError = RequestError::Reply(400, "bad content-length");
    let mut length = None;
    for (_, value) in request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BAD);
        }
        // Too many digits to be a size we'd accept anyway: saturate, then 413.
        let n = value.parse::<usize>().unwrap_or(usize::MAX);
        if length.is_some_and(|l| l != n) {
            return Err(BAD);
        }
        length = Some(n);
    }
    Ok(length.unwrap_or(0))
}

pub(crate) fn encode(response: &Response, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nServer: sluice\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    )
    .into_bytes();
    for (name, value) in &response.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("sluice http: could not pin thread to core {id}; running unpinned");
        }
    }
}

/// The request readers' fuzz body, shared by the cargo-fuzz target `http_request` and the seed
/// replay test: the listener's reader (`advance` over reads of `read_budget`), the control
/// socket's (`control_socket::read_head`), and the head parser and router behind both.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use std::io::{self, Read};

    use super::{
        advance, content_length, encode, find, parse_head, read_budget, Request, RequestError,
        Response, Router, ServerOptions, READ_CHUNK,
    };
    use crate::control_socket;

    /// Input bytes before the stream: the head limit, the body limit, then four read sizes.
    pub const CONTROL: usize = 6;
    /// What a listener sends before the body of an `Expect: 100-continue` request.
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

    /// How reading one request from a stream ended.
    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        /// The request, body included.
        Whole(Request),
        /// Refused with this status.
        Refused(u16),
        /// The stream ended first.
        Cut,
    }

    /// A stream handed out in reads of the sizes given, in turn (0: as much as asked for); the
    /// CLI's answer readers are fuzzed through it too (the root crate's `fuzzing`).
    pub struct Chunked<'a> {
        rest: &'a [u8],
        sizes: [usize; 4],
        reads: usize,
        /// Bytes handed out so far.
        pub taken: usize,
    }

    impl<'a> Chunked<'a> {
        pub fn new(stream: &'a [u8], sizes: [usize; 4]) -> Self {
            Chunked {
                rest: stream,
                sizes,
                reads: 0,
                taken: 0,
            }
        }
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = match self.sizes[self.reads % self.sizes.len()] {
                0 => usize::MAX,
                n => n,
            };
            self.reads += 1;
            let n = buf.len().min(self.rest.len()).min(size);
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            self.taken += n;
            Ok(n)
        }
    }

    /// Input: `[head limit, body limit, 4 read sizes, stream...]`; a limit byte of 0 is the
    /// default (8 KiB, 64 KiB), else the head limit is the byte and the body limit one less, so
    /// small limits put their edges within reach. Both readers read the stream in those sizes;
    /// neither may panic, read past its limits, or answer anything but what the whole stream
    /// asks for, however it is cut. The head alone goes through the parser and router too.
    pub fn fuzz_http_request(data: &[u8]) {
        let Some((control, stream)) = data.split_at_checked(CONTROL) else {
            return;
        };
        let defaults = ServerOptions::default();
        let options = ServerOptions {
            max_head_bytes: match control[0] {
                0 => defaults.max_head_bytes,
                n => usize::from(n),
            },
            max_body_bytes: match control[1] {
                0 => defaults.max_body_bytes,
                n => usize::from(n - 1),
            },
            ..defaults
        };
        let sizes = [control[2], control[3], control[4], control[5]].map(usize::from);
        route_head(stream);

        let (want, want_continue) = expected(stream, &options);
        let (got, taken, interim) = serve(stream, sizes, &options);
        assert_eq!(got, want, "listener, reads of {sizes:?}, {options:?}");
        let continued: &[u8] = if want_continue { CONTINUE } else { b"" };
        assert_eq!(interim, continued, "100 Continue once, only when asked");
        assert!(taken <= options.max_head_bytes + 4 + options.max_body_bytes);
        if let Outcome::Whole(request) = &got {
            let response = router().handle(request);
            assert!(matches!(response.status, 200 | 404 | 405));
        }

        let mut reader = Chunked::new(stream, sizes);
        let got = match control_socket::read_head(&mut reader, options.max_head_bytes, |_| true) {
            Ok(request) => Outcome::Whole(request),
            Err(RequestError::Reply(status, _)) => Outcome::Refused(status),
        };
        let want = expected_socket(stream, options.max_head_bytes);
        assert_eq!(got, want, "control socket, reads of {sizes:?}, {options:?}");
        // It reads only while a head within the limit may still be coming in.
        assert!(reader.taken < options.max_head_bytes + 4 + control_socket::READ_CHUNK);
    }

    /// Reads one request from `stream` as a listener connection does: each read at most
    /// `read_budget`, then `advance`. Also how many bytes it took and what it sent meanwhile.
    fn serve(
        stream: &[u8],
        sizes: [usize; 4],
        options: &ServerOptions,
    ) -> (Outcome, usize, Vec<u8>) {
        let mut reader = Chunked::new(stream, sizes);
        let (mut buf, mut parsed, mut interim) = (Vec::new(), None, Vec::new());
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let want = read_budget(&buf, &parsed, options);
            let n = match reader.read(&mut chunk[..want]) {
                Ok(0) | Err(_) => return (Outcome::Cut, reader.taken, interim),
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            match &parsed {
                None => assert!(
                    buf.len() <= options.max_head_bytes + 4,
                    "head over its limit"
                ),
                Some((_, length)) => assert!(buf.len() <= *length, "read past the body"),
            }
            let outcome = match advance(&mut buf, &mut parsed, &mut interim, options) {
                Ok(None) => continue,
                Ok(Some(request)) => Outcome::Whole(request),
                Err(RequestError::Reply(status, _)) => Outcome::Refused(status),
            };
            return (outcome, reader.taken, interim);
        }
    }

    /// Where the head of `stream` ends (before its blank line) if that is within `max_head`
    /// bytes; else `Err(true)` when the stream goes on past the limit, `Err(false)` when it ends.
    fn head_end(stream: &[u8], max_head: usize) -> Result<usize, bool> {
        let window = &stream[..stream.len().min(max_head + 4)];
        find(window, b"\r\n\r\n").ok_or(window.len() == max_head + 4)
    }

    /// What the listener must come to on `stream`, however it is cut, and whether it sends a
    /// 100 Continue: a head within the limit is parsed, a longer one refused (431), then the
    /// body of its Content-Length is read.
    fn expected(stream: &[u8], options: &ServerOptions) -> (Outcome, bool) {
        let end = match head_end(stream, options.max_head_bytes) {
            Ok(end) => end,
            Err(true) => return (Outcome::Refused(431), false),
            Err(false) => return (Outcome::Cut, false),
        };
        let mut request = match parse_head(&stream[..end]) {
            Ok(request) => request,
            Err(RequestError::Reply(status, _)) => return (Outcome::Refused(status), false),
        };
        if request.header("transfer-encoding").is_some() {
            return (Outcome::Refused(501), false);
        }
        let length = match content_length(&request) {
            Ok(length) if length > options.max_body_bytes => return (Outcome::Refused(413), false),
            Ok(length) => length,
            Err(RequestError::Reply(status, _)) => return (Outcome::Refused(status), false),
        };
        let interim = length > 0
            && request
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        match stream.get(end + 4..end + 4 + length) {
            Some(body) => {
                request.body = body.to_vec();
                (Outcome::Whole(request), interim)
            }
            None => (Outcome::Cut, interim),
        }
    }

    /// What the control socket must come to on `stream`, however it is cut: a head within
    /// `max_head` bytes and no body; a stream that ends first is a bad request (400).
    fn expected_socket(stream: &[u8], max_head: usize) -> Outcome {
        let end = match head_end(stream, max_head) {
            Ok(end) => end,
            Err(true) => return Outcome::Refused(431),
            Err(false) => return Outcome::Refused(400),
        };
        let request = match parse_head(&stream[..end]) {
            Ok(request) => request,
            Err(RequestError::Reply(status, _)) => return Outcome::Refused(status),
        };
        match content_length(&request) {
            Ok(0) => Outcome::Whole(request),
            Ok(_) => Outcome::Refused(413),
            Err(RequestError::Reply(status, _)) => Outcome::Refused(status),
        }
    }

    fn router() -> Router {
        Router::new()
            .get("/metrics", |_| Response::prometheus("m 1\n"))
            .post("/-/reload", |_| Response::text(200, "ok\n"))
    }

    /// Parses what precedes the first blank line (or all of it) as a head, without limits, and
    /// routes it: a request is either refused with 400/505 or well formed and answered
    /// 200/404/405.
    fn route_head(data: &[u8]) {
        let head = find(data, b"\r\n\r\n").map_or(data, |end| &data[..end]);
        let request = match parse_head(head) {
            Ok(request) => request,
            Err(RequestError::Reply(status, _)) => {
                assert!(status == 400 || status == 505, "refused with {status}");
                return;
            }
        };
        assert!(request.path.starts_with('/') && !request.path.contains('?'));
        assert!(request.method.bytes().all(|b| b.is_ascii_uppercase()));
        assert!(!request.method.is_empty());
        let _ = content_length(&request);
        let response = router().handle(&request);
        assert!(matches!(response.status, 200 | 404 | 405));
        let bytes = encode(&response, request.method == "HEAD");
        assert!(bytes.starts_with(b"HTTP/1.1 "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Request, u16> {
        parse_head(text.as_bytes()).map_err(|RequestError::Reply(status, _)| status)
    }

    #[test]
    fn parses_request_heads() {
        let r = head("GET /state?service=web HTTP/1.1\r\nHost: x\r\nAccept:  text/plain ").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/state");
        assert_eq!(r.query.as_deref(), Some("service=web"));
        assert_eq!(r.header("accept"), Some("text/plain"));
        assert_eq!(r.header("HOST"), Some("x"));
        assert_eq!(head("GET / HTTP/2.0"), Err(505));
        assert_eq!(head("GET  / HTTP/1.1"), Err(400));
        assert_eq!(head("get / HTTP/1.1"), Err(400));
        assert_eq!(head("GET http://x/ HTTP/1.1"), Err(400));
        assert_eq!(head("GET / HTTP/1.1\r\n folded"), Err(400));
        assert_eq!(head("GET / HTTP/1.1\r\nNoColon"), Err(400));
        assert_eq!(head("GET / HTTP/1.1\r\nBad Name: v"), Err(400));
    }

    #[test]
    fn content_lengths() {
        let mut r = head("POST / HTTP/1.1\r\nContent-Length: 5").unwrap();
        assert!(matches!(content_length(&r), Ok(5)));
        r.headers.push(("content-length".into(), "6".into()));
        assert!(matches!(
            content_length(&r),
            Err(RequestError::Reply(400, _))
        ));
        let r = head("POST / HTTP/1.1\r\nContent-Length: -1").unwrap();
        assert!(matches!(
            content_length(&r),
            Err(RequestError::Reply(400, _))
        ));
        let r = head("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999").unwrap();
        assert!(matches!(content_length(&r), Ok(usize::MAX)));
    }

    /// A head of exactly the limit is read however it is cut (a read ending inside its blank
    /// line got 431); one byte longer is refused.
    #[test]
    fn a_head_at_the_limit_is_read_however_it_is_cut() {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let at_limit = ServerOptions {
            max_head_bytes: request.len() - 4,
            ..ServerOptions::default()
        };
        for cut in 1..request.len() {
            let (mut buf, mut parsed, mut interim) = (request[..cut].to_vec(), None, Vec::new());
            let first = advance(&mut buf, &mut parsed, &mut interim, &at_limit);
            assert!(matches!(first, Ok(None)), "cut at {cut}");
            buf.extend_from_slice(&request[cut..]);
            let rest = advance(&mut buf, &mut parsed, &mut interim, &at_limit);
            assert!(matches!(rest, Ok(Some(_))), "cut at {cut}");
        }
        let over = ServerOptions {
            max_head_bytes: request.len() - 5,
            ..ServerOptions::default()
        };
        let mut buf = request.to_vec();
        let refused = advance(&mut buf, &mut None, &mut Vec::new(), &over);
        assert!(matches!(refused, Err(RequestError::Reply(431, _))));
    }

    #[test]
    fn encodes_head_without_body() {
        let r = Response::json(200, "{}").with_header("X-Epoch", "3");
        let full = String::from_utf8(encode(&r, false)).unwrap();
        assert!(full.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"));
        assert!(full.contains("Content-Length: 2\r\n"));
        assert!(full.contains("Connection: close\r\n"));
        assert!(full.ends_with("X-Epoch: 3\r\n\r\n{}"));
        let head = String::from_utf8(encode(&r, true)).unwrap();
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 2\r\n"));
    }
}
