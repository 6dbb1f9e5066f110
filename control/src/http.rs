//! A minimal HTTP/1.1 server for the control endpoint (/metrics, /healthz, /state, POST /-/reload).
//!
//! std::net only, on its own threads: one accepts, a few serve. Every connection carries
//! one request and is closed; reading the request and writing the answer each have a
//! total deadline, so a slow client holds one server thread for a bounded time, and when
//! every thread is busy and the queue is full new clients get a quick 503.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
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
    /// Threads serving connections (at least one).
    pub workers: usize,
    /// Accepted connections waiting for a thread; beyond that clients get 503.
    pub queue: usize,
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
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            max_head_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
            core: None,
        }
    }
}

/// A running server; dropping it stops and joins its threads.
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
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
        let local_addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let router = Arc::new(router);
        let options = Arc::new(options);
        let (conn_tx, conn_rx) = mpsc::sync_channel::<TcpStream>(options.queue);
        let conn_rx = Arc::new(Mutex::new(conn_rx));
        let mut server = HttpServer {
            local_addr,
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        for n in 0..options.workers.max(1) {
            let (router, options, conn_rx) = (
                Arc::clone(&router),
                Arc::clone(&options),
                Arc::clone(&conn_rx),
            );
            let handle = thread::Builder::new()
                .name(format!("http-{n}"))
                .spawn(move || {
                    pin(options.core);
                    serve_connections(&conn_rx, &router, &options)
                })?;
            server.threads.push(handle);
        }
        let core = options.core;
        let handle = thread::Builder::new()
            .name("http-accept".to_string())
            .spawn(move || {
                pin(core);
                accept_connections(&listener, &conn_tx, &stop)
            })?;
        server.threads.push(handle);
        Ok(server)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests in progress finish (within their deadlines) and joins.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // accept() has no timeout: a connection of our own wakes it to see the flag.
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

fn accept_connections(listener: &TcpListener, conns: &SyncSender<TcpStream>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(stream) => match conns.try_send(stream) {
                Ok(()) => {}
                Err(TrySendError::Full(stream)) => refuse_busy(stream),
                Err(TrySendError::Disconnected(_)) => return,
            },
            // Out of descriptors and the like: back off instead of spinning.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Every server thread is busy: a short 503 so the client retries instead of hanging.
/// Runs on the accept thread, so it never waits: a full socket buffer just loses the answer.
fn refuse_busy(mut stream: TcpStream) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let response = Response::text(503, "busy, retry later\n").with_header("Retry-After", "1");
    let _ = stream.write_all(&encode(&response, false));
    let _ = stream.shutdown(Shutdown::Write);
    // Unread request bytes would turn the close into a reset that can destroy the answer.
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
}

fn serve_connections(conns: &Mutex<Receiver<TcpStream>>, router: &Router, options: &ServerOptions) {
    loop {
        let next = conns.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(stream) = next else { return };
        serve_one(stream, router, options);
    }
}

fn serve_one(mut stream: TcpStream, router: &Router, options: &ServerOptions) {
    let (response, head_only) = match read_request(&mut stream, options) {
        Ok(mut request) => {
            request.peer = stream.peer_addr().ok();
            request.local = stream.local_addr().ok();
            (router.handle(&request), request.method == "HEAD")
        }
        Err(RequestError::Closed) => return,
        Err(RequestError::Reply(status, why)) => {
            (Response::text(status, format!("{why}\n")), false)
        }
    };
    let deadline = Instant::now() + options.write_timeout;
    if write_by(&mut stream, &encode(&response, head_only), deadline).is_ok() {
        // Half-close and drain briefly so unread request bytes don't turn our close into a
        // reset that could destroy the response before the client reads it.
        // Bounded in time and bytes, so a client that keeps sending can't keep the thread.
        let _ = stream.shutdown(Shutdown::Write);
        let drain_until = Instant::now() + Duration::from_millis(100);
        let (mut sink, mut drained) = (Vec::with_capacity(4096), 0);
        while drained < options.max_body_bytes {
            sink.clear();
            match read_some(&mut stream, &mut sink, 4096, drain_until) {
                Ok(n) if n > 0 => drained += n,
                _ => break,
            }
        }
    }
}

enum RequestError {
    /// The client went away (or never spoke): nothing to answer.
    Closed,
    /// Answer with this status and reason.
    Reply(u16, &'static str),
}

fn read_request(stream: &mut TcpStream, options: &ServerOptions) -> Result<Request, RequestError> {
    let deadline = Instant::now() + options.read_timeout;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() > options.max_head_bytes {
            return Err(RequestError::Reply(431, "request head too large"));
        }
        let want = options.max_head_bytes + 4 - buf.len();
        match read_some(stream, &mut buf, want.min(4096), deadline) {
            Ok(0) => return Err(RequestError::Closed),
            Ok(_) => {}
            Err(e) if is_timeout(&e) && !buf.is_empty() => {
                return Err(RequestError::Reply(408, "request timeout"))
            }
            Err(_) => return Err(RequestError::Closed),
        }
    };
    if head_end > options.max_head_bytes {
        return Err(RequestError::Reply(431, "request head too large"));
    }
    let mut request = parse_head(&buf[..head_end])?;
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
        let _ = write_by(stream, b"HTTP/1.1 100 Continue\r\n\r\n", deadline);
    }
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let want = length - body.len();
        match read_some(stream, &mut body, want, deadline) {
            Ok(0) => return Err(RequestError::Closed),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(RequestError::Reply(408, "request timeout")),
            Err(_) => return Err(RequestError::Closed),
        }
    }
    body.truncate(length);
    request.body = body;
    Ok(request)
}

/// Parses the request line and headers (without the blank line).
fn parse_head(head: &[u8]) -> Result<Request, RequestError> {
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

fn content_length(request: &Request) -> Result<usize, RequestError> {
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

fn encode(response: &Response, head_only: bool) -> Vec<u8> {
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

/// Reads up to `max` more bytes into `buf`, waiting no later than `deadline`.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    max: usize,
    deadline: Instant,
) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let max = max.min(chunk.len());
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut chunk[..max]) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `bytes` by `deadline`, however slowly the client reads.
fn write_by(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Time left before `deadline`, never zero (a zero socket timeout is an error).
fn remaining(deadline: Instant) -> io::Result<Duration> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(io::ErrorKind::TimedOut.into()),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("sluice http: could not pin thread to core {id}; running unpinned");
        }
    }
}

/// The request parser's fuzz body, shared by the cargo-fuzz target and the seed replay test.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::{content_length, encode, find, parse_head, RequestError, Response, Router};

    /// Parses arbitrary bytes as a request head and routes it: never a panic, and a request
    /// is either refused with 400/505 or well formed and answered 200/404/405.
    pub fn fuzz_http_request(data: &[u8]) {
        let head = find(data, b"\r\n\r\n").map_or(data, |end| &data[..end]);
        let request = match parse_head(head) {
            Ok(request) => request,
            Err(RequestError::Reply(status, _)) => {
                assert!(status == 400 || status == 505, "refused with {status}");
                return;
            }
            Err(RequestError::Closed) => panic!("parsing closed the connection"),
        };
        assert!(request.path.starts_with('/') && !request.path.contains('?'));
        assert!(request.method.bytes().all(|b| b.is_ascii_uppercase()));
        assert!(!request.method.is_empty());
        let _ = content_length(&request);
        let router = Router::new()
            .get("/metrics", |_| Response::prometheus("m 1\n"))
            .post("/-/reload", |_| Response::text(200, "ok\n"));
        let response = router.handle(&request);
        assert!(matches!(response.status, 200 | 404 | 405));
        let bytes = encode(&response, request.method == "HEAD");
        assert!(bytes.starts_with(b"HTTP/1.1 "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Request, u16> {
        parse_head(text.as_bytes()).map_err(|e| match e {
            RequestError::Reply(status, _) => status,
            RequestError::Closed => 0,
        })
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
