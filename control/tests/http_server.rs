//! The control HTTP listener on 127.0.0.1: routes, methods, limits, slow and excess clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use control::http::{
    HttpServer, Request, Response, Router, ServerOptions, CONTENT_TYPE_JSON,
    CONTENT_TYPE_PROMETHEUS,
};

const METRICS: &str = "# TYPE sluice_config_epoch gauge\nsluice_config_epoch 7\n";

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, _) = text
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let body = raw[head.len() + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    Reply {
        status,
        headers,
        body,
    }
}

/// Sends `raw` and reads the response until the server closes.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(raw).unwrap();
    read_reply(stream)
}

fn read_reply(mut stream: TcpStream) -> Reply {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    parse_reply(&out)
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: sluice\r\n\r\n").as_bytes(),
    )
}

struct Fixture {
    server: HttpServer,
    reloads: Arc<AtomicUsize>,
    last_request: Arc<Mutex<Option<Request>>>,
}

fn fixture(options: ServerOptions) -> Fixture {
    let reloads = Arc::new(AtomicUsize::new(0));
    let last_request = Arc::new(Mutex::new(None));
    let (r, seen) = (Arc::clone(&reloads), Arc::clone(&last_request));
    let seen2 = Arc::clone(&last_request);
    let router = Router::new()
        .get("/metrics", |_| Response::prometheus(METRICS))
        .get("/healthz", |_| Response::text(200, "ok\n"))
        .get("/state", move |req| {
            *seen2.lock().unwrap() = Some(req.clone());
            Response::json(200, r#"{"epoch":7,"services":[]}"#)
        })
        .get("/panic", |_| panic!("handler bug"))
        .get("/slow", |_| {
            thread::sleep(Duration::from_millis(600));
            Response::text(200, "slow\n")
        })
        .post("/-/reload", move |req| {
            r.fetch_add(1, Ordering::SeqCst);
            *seen.lock().unwrap() = Some(req.clone());
            Response::text(200, "reloaded\n")
        });
    let server = HttpServer::bind("127.0.0.1:0", router, options).unwrap();
    Fixture {
        server,
        reloads,
        last_request,
    }
}

#[test]
fn serves_every_route_with_its_content_type() {
    let f = fixture(ServerOptions::default());
    let addr = f.server.local_addr();

    let metrics = get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some(CONTENT_TYPE_PROMETHEUS)
    );
    assert_eq!(metrics.body, METRICS.as_bytes());
    assert_eq!(metrics.header("connection"), Some("close"));
    assert_eq!(
        metrics.header("content-length"),
        Some(METRICS.len().to_string().as_str())
    );

    let health = get(addr, "/healthz");
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));

    let state = get(addr, "/state?service=web");
    assert_eq!(state.status, 200);
    assert_eq!(state.header("content-type"), Some(CONTENT_TYPE_JSON));
    let json: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
    assert_eq!(json["epoch"], 7);
    let seen = f.last_request.lock().unwrap().clone().unwrap();
    assert_eq!(seen.path, "/state");
    assert_eq!(seen.query.as_deref(), Some("service=web"));
    assert_eq!(seen.header("host"), Some("sluice"));
}

#[test]
fn post_reload_invokes_the_handler() {
    let f = fixture(ServerOptions::default());
    let addr = f.server.local_addr();
    // As `curl -X POST` sends it: no body.
    let r = exchange(addr, b"POST /-/reload HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(f.reloads.load(Ordering::SeqCst), 1);

    // A body arriving in pieces is read whole.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"POST /-/reload HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello")
        .unwrap();
    thread::sleep(Duration::from_millis(20));
    stream.write_all(b" world").unwrap();
    assert_eq!(read_reply(stream).status, 200);
    assert_eq!(f.reloads.load(Ordering::SeqCst), 2);
    let seen = f.last_request.lock().unwrap().clone().unwrap();
    assert_eq!(seen.body, b"hello world");

    // Expect: 100-continue gets its interim answer before the body is sent.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"POST /-/reload HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"{}").unwrap();
    assert_eq!(read_reply(stream).status, 200);
    assert_eq!(f.reloads.load(Ordering::SeqCst), 3);
}

#[test]
fn head_unknown_paths_and_wrong_methods() {
    let f = fixture(ServerOptions::default());
    let addr = f.server.local_addr();

    let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(METRICS.len().to_string().as_str())
    );

    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(get(addr, "/metrics/").status, 404);

    let r = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = get(addr, "/-/reload");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(
        exchange(addr, b"DELETE /state HTTP/1.1\r\n\r\n").status,
        405
    );
    assert_eq!(f.reloads.load(Ordering::SeqCst), 0);
}

#[test]
fn malformed_and_oversized_requests_are_refused() {
    let options = ServerOptions {
        max_head_bytes: 512,
        max_body_bytes: 16,
        ..ServerOptions::default()
    };
    let f = fixture(options);
    let addr = f.server.local_addr();
    assert_eq!(exchange(addr, b"hello\r\n\r\n").status, 400);
    assert_eq!(exchange(addr, b"GET /metrics HTTP/2.0\r\n\r\n").status, 505);
    assert_eq!(exchange(addr, b"GET /metrics\r\n\r\n").status, 400);
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(600));
    assert_eq!(exchange(addr, big.as_bytes()).status, 431);
    let r = exchange(
        addr,
        b"POST /-/reload HTTP/1.1\r\nContent-Length: 17\r\n\r\n01234567890123456",
    );
    assert_eq!(r.status, 413);
    let r = exchange(
        addr,
        b"POST /-/reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 501);
    let r = exchange(
        addr,
        b"POST /-/reload HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    );
    assert_eq!(r.status, 400);
    assert_eq!(f.reloads.load(Ordering::SeqCst), 0);
    // Still serving.
    assert_eq!(get(addr, "/healthz").status, 200);
}

#[test]
fn a_panicking_handler_gives_500_and_the_server_lives_on() {
    let f = fixture(ServerOptions {
        workers: 1,
        ..ServerOptions::default()
    });
    let addr = f.server.local_addr();
    assert_eq!(get(addr, "/panic").status, 500);
    assert_eq!(get(addr, "/healthz").status, 200);
}

#[test]
fn a_slow_client_holds_a_thread_only_until_its_deadline() {
    let read_timeout = Duration::from_millis(300);
    let f = fixture(ServerOptions {
        workers: 1,
        read_timeout,
        ..ServerOptions::default()
    });
    let addr = f.server.local_addr();
    // Dribbles a request one byte at a time, never finishing within the deadline.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /met").unwrap();
    let dribble = thread::spawn(move || {
        for b in b"rics HTTP/1.1\r\n" {
            thread::sleep(Duration::from_millis(100));
            if slow.write_all(&[*b]).is_err() {
                break;
            }
        }
        slow
    });
    thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let r = get(addr, "/healthz");
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
    let slow = dribble.join().unwrap();
    let mut out = Vec::new();
    let mut slow = slow;
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = slow.read_to_end(&mut out);
    assert_eq!(parse_reply(&out).status, 408);
}

#[test]
fn a_client_that_keeps_sending_is_cut_off() {
    let f = fixture(ServerOptions {
        workers: 1,
        ..ServerOptions::default()
    });
    let addr = f.server.local_addr();
    let mut flood = TcpStream::connect(addr).unwrap();
    flood.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
    let flood_for = Duration::from_secs(4);
    let flooder = thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < flood_for && flood.write_all(&[b'x'; 512]).is_ok() {}
    });
    thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    assert_eq!(get(addr, "/healthz").status, 200);
    // Served while the flood still runs: the flooder only held the thread briefly.
    assert!(started.elapsed() < flood_for - Duration::from_millis(500));
    flooder.join().unwrap();
}

/// Stalled clients no longer take a serving thread (see the idle and slow tests below), so
/// 503 now means what it says: every thread runs a handler and the queue of complete requests
/// is full.
#[test]
fn excess_requests_get_a_quick_503() {
    let f = fixture(ServerOptions {
        workers: 1,
        queue: 1,
        ..ServerOptions::default()
    });
    let addr = f.server.local_addr();
    // Three requests to a 600 ms handler for one thread and one queue slot: at least one is
    // turned away, at once.
    let started = Instant::now();
    let clients: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    let readers: Vec<_> = clients
        .into_iter()
        .map(|s| thread::spawn(move || (read_reply(s).status, started.elapsed())))
        .collect();
    let replies: Vec<(u16, Duration)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    // Before the first handler could have finished: the 503 did not wait for a thread.
    let busy = replies.iter().find(|(status, _)| *status == 503);
    assert!(
        busy.is_some_and(|(_, took)| *took < Duration::from_millis(500)),
        "{replies:?}"
    );
    assert!(
        replies.iter().all(|(s, _)| *s == 503 || *s == 200),
        "{replies:?}"
    );
    assert_eq!(get(addr, "/healthz").status, 200);
}

#[test]
fn an_idle_connection_is_closed_without_an_answer() {
    let f = fixture(ServerOptions {
        read_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    });
    let mut idle = TcpStream::connect(f.server.local_addr()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    idle.read_to_end(&mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn dropping_the_server_closes_the_port() {
    let f = fixture(ServerOptions::default());
    let addr = f.server.local_addr();
    assert_eq!(get(addr, "/healthz").status, 200);
    let started = Instant::now();
    drop(f);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(addr).is_err());
}

/// Raises this process's soft descriptor limit to the hard one; returns the soft limit now.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid, exclusive pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit through a valid pointer; raising soft to hard is allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    limit.rlim_cur
}

/// `wanted`, after checking the descriptor limit holds them twice (client and server end live
/// in this process) beside the other tests running in parallel: a test that quietly opened
/// fewer would pass without checking what it says.
fn connections_to_open(wanted: usize) -> usize {
    let limit = usize::try_from(raise_fd_limit()).unwrap_or(usize::MAX);
    let affordable = limit.saturating_sub(1024) / 4;
    assert!(
        affordable >= wanted,
        "RLIMIT_NOFILE {limit} holds {affordable} test connections, not {wanted}: raise the \
         hard limit (ulimit -Hn {})",
        wanted * 4 + 1024
    );
    wanted
}

/// GET /metrics as a scraper does, timed.
fn scrape(addr: SocketAddr) -> (u16, Duration) {
    let started = Instant::now();
    let r = get(addr, "/metrics");
    assert_eq!(r.status == 200, r.body == METRICS.as_bytes());
    (r.status, started.elapsed())
}

#[test]
fn a_thousand_idle_connections_do_not_stop_metrics() {
    let f = fixture(ServerOptions::default());
    let addr = f.server.local_addr();
    let n = connections_to_open(1000);
    let idle: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Let the server see them all before the scrape arrives behind them.
    thread::sleep(Duration::from_millis(200));
    let (status, took) = scrape(addr);
    eprintln!("{n} idle connections: /metrics answered {status} in {took:?}");
    assert_eq!(status, 200, "after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    drop(idle);
}

#[test]
fn slow_header_senders_do_not_stop_metrics() {
    let f = fixture(ServerOptions::default());
    let addr = f.server.local_addr();
    let n = connections_to_open(200);
    let mut slow: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // One header byte a second from every connection, for 3 s (past the 2 s read deadline).
    let dribbler = thread::spawn(move || {
        for b in b"X-S" {
            for s in &mut slow {
                let _ = s.write_all(&[*b]);
            }
            thread::sleep(Duration::from_secs(1));
        }
        slow
    });
    thread::sleep(Duration::from_millis(1200));
    let (status, took) = scrape(addr);
    eprintln!("{n} slow header senders: /metrics answered {status} in {took:?}");
    assert_eq!(status, 200, "after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let slow = dribbler.join().unwrap();
    // Each was cut off at its deadline with 408 (or a busy 503), not left open.
    for s in slow.into_iter().step_by(20) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let status = read_reply(s).status;
        assert!(status == 408 || status == 503, "{status}");
    }
}

#[test]
fn a_full_table_closes_its_oldest_idle_connection_for_a_newcomer() {
    let f = fixture(ServerOptions {
        max_connections: 64,
        read_timeout: Duration::from_secs(10),
        ..ServerOptions::default()
    });
    let addr = f.server.local_addr();
    let n = connections_to_open(200);
    let idle: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    thread::sleep(Duration::from_millis(200));
    let (status, took) = scrape(addr);
    assert_eq!(status, 200, "after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // The oldest was closed long before its 10 s deadline; the newest is still open.
    let mut oldest = &idle[0];
    oldest
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut byte = [0u8; 1];
    match oldest.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the oldest idle connection is still open: {other:?}"),
    }
    let mut newest = &idle[n - 1];
    newest
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let e = newest.read(&mut byte).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e:?}"
    );
}
