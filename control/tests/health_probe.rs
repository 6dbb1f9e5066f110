//! The probes and the running health checker against real servers on 127.0.0.1.
//!
//! Timing assertions are bound checks with wide margins (the machine is noisy); the lower
//! bounds (never earlier than the streak allows) are exact, since noise only delays.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use control::health::probe::{dns_query, probe_http, probe_tcp, probe_udp_dns};
use control::health::runner::probers_needed;
use control::health::{
    probe, CheckKind, CheckSettings, HealthCheckSpec, ProbeError, Scheduler, SchedulerOptions,
    Target,
};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(2);

/// A server's thread, told to stop and joined when dropped.
struct Serving {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Serving {
    /// Runs `body` on a thread until the flag it is given is set.
    fn spawn(body: impl FnOnce(&AtomicBool) + Send + 'static) -> Serving {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        Serving {
            stop,
            thread: Some(thread::spawn(move || body(&flag))),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// What the test HTTP server does with a request.
#[derive(Clone, Copy)]
enum HttpMode {
    Status(u16),
    Silent,
    Garbage,
    Hangup,
}

/// A small HTTP server on a fixed port that can be stopped and started again.
struct HttpServer {
    port: u16,
    status: Arc<AtomicU16>,
    /// Answer 500 to request number N (counting from 1); 0 = never.
    fail_request: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    mode: HttpMode,
    running: Option<Serving>,
}

impl HttpServer {
    fn start(mode: HttpMode) -> HttpServer {
        let listener = TcpListener::bind((LOCALHOST, 0)).unwrap();
        let mut server = HttpServer {
            port: listener.local_addr().unwrap().port(),
            status: Arc::new(AtomicU16::new(match mode {
                HttpMode::Status(s) => s,
                _ => 200,
            })),
            fail_request: Arc::new(AtomicUsize::new(0)),
            requests: Arc::new(Mutex::new(Vec::new())),
            mode,
            running: None,
        };
        server.serve(listener);
        server
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST, self.port)
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let (status, fail, requests, mode) = (
            Arc::clone(&self.status),
            Arc::clone(&self.fail_request),
            Arc::clone(&self.requests),
            self.mode,
        );
        self.running = Some(Serving::spawn(move |flag| {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(LONG)).unwrap();
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf[len..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                }
                let mut log = requests.lock().unwrap();
                log.push(String::from_utf8_lossy(&buf[..len]).into_owned());
                let nth = log.len();
                drop(log);
                let code = if fail.load(Ordering::SeqCst) == nth {
                    500
                } else {
                    status.load(Ordering::SeqCst)
                };
                let _ = match mode {
                    HttpMode::Status(_) => conn.write_all(
                        format!(
                            "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    ),
                    HttpMode::Silent => {
                        held.push(conn);
                        continue;
                    }
                    HttpMode::Garbage => conn.write_all(b"SSH-2.0-OpenSSH_9.2\r\n"),
                    HttpMode::Hangup => Ok(()),
                };
            }
        }));
    }

    fn stop(&mut self) {
        self.running = None;
    }

    fn restart(&mut self) {
        let listener = TcpListener::bind((LOCALHOST, self.port)).unwrap();
        self.serve(listener);
    }
}

/// A DNS-like UDP server on a fixed port answering with `rcode`, optionally first with a wrong id.
struct DnsServer {
    port: u16,
    rcode: u8,
    decoy_first: bool,
    silent: bool,
    running: Option<Serving>,
}

impl DnsServer {
    fn start(rcode: u8, decoy_first: bool, silent: bool) -> DnsServer {
        let socket = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        let mut server = DnsServer {
            port: socket.local_addr().unwrap().port(),
            rcode,
            decoy_first,
            silent,
            running: None,
        };
        server.serve(socket);
        server
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST, self.port)
    }

    fn serve(&mut self, socket: UdpSocket) {
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let (rcode, decoy, silent) = (self.rcode, self.decoy_first, self.silent);
        self.running = Some(Serving::spawn(move |flag| {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if silent || n < 12 {
                    continue;
                }
                let mut answer = buf[..n].to_vec();
                answer[2] |= 0x80; // QR
                answer[3] = (answer[3] & 0xf0) | rcode;
                if decoy {
                    let mut wrong = answer.clone();
                    wrong[1] ^= 0xff;
                    socket.send_to(&wrong, peer).unwrap();
                }
                socket.send_to(&answer, peer).unwrap();
            }
        }));
    }

    fn stop(&mut self) {
        self.running = None;
    }

    fn restart(&mut self) {
        let socket = UdpSocket::bind((LOCALHOST, self.port)).unwrap();
        self.serve(socket);
    }
}

fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind((LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn tcp_probe_connects_or_is_refused() {
    let listener = TcpListener::bind((LOCALHOST, 0)).unwrap();
    probe_tcp(listener.local_addr().unwrap(), LONG).unwrap();
    let err = probe_tcp(closed_port(), LONG).unwrap_err();
    assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
}

#[test]
fn http_probe_wants_a_2xx_status() {
    let server = HttpServer::start(HttpMode::Status(204));
    probe_http(server.addr(), "app.example", "/healthz?full=1", LONG).unwrap();
    let request = server.requests.lock().unwrap()[0].clone();
    assert!(
        request.starts_with("GET /healthz?full=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nHost: app.example\r\n"), "{request}");
    assert!(
        request.contains("\r\nUser-Agent: sluice-health\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nConnection: close\r\n"), "{request}");

    for status in [301, 404, 500, 503] {
        server.status.store(status, Ordering::SeqCst);
        let err = probe_http(server.addr(), "h", "/", LONG).unwrap_err();
        assert!(
            matches!(err, ProbeError::HttpStatus { status: s, .. } if s == status),
            "{err}"
        );
    }
}

#[test]
fn http_probe_default_host_is_the_backend_address() {
    let server = HttpServer::start(HttpMode::Status(200));
    let target = Target {
        service: "web".into(),
        backend: LOCALHOST,
        spec: HealthCheckSpec {
            settings: CheckSettings {
                kind: CheckKind::Http,
                interval: LONG,
                timeout: LONG,
                rise: 1,
                fall: 1,
                path: String::new(),
            },
            port: server.port,
            host: None,
        },
    };
    probe(&target).unwrap();
    let request = server.requests.lock().unwrap()[0].clone();
    assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains(&format!("\r\nHost: 127.0.0.1:{}\r\n", server.port)),
        "{request}"
    );
}

/// A config's `host` (http) and `query` (udp-dns) reach the checker's targets, and the Host
/// header is what a virtual-hosted web server gets.
#[test]
fn the_configured_host_and_query_reach_the_probes() {
    let web = HttpServer::start(HttpMode::Status(200));
    let text = format!(
        "interfaces:
  - name: uplink
    device: net_memif0
    address: 192.0.2.10/24
    gateway: 192.0.2.1
services:
  - name: web
    vip: 198.51.100.10
    port: {}
    protocol: tcp
    backends:
      - address: 127.0.0.1
    health_check:
      kind: http
      host: www.example.org
  - name: dns
    vip: 198.51.100.53
    port: 53
    protocol: udp
    backends:
      - address: 127.0.0.1
    health_check:
      kind: udp-dns
      query: example.org.
",
        web.port
    );
    let cfg = control::config::load_str(&text, "hosts.yaml").unwrap();
    let targets = control::forwarding::health_targets(&cfg);
    let hosts: Vec<Option<&str>> = targets.iter().map(|t| t.spec.host.as_deref()).collect();
    assert_eq!(hosts, [Some("www.example.org"), Some("example.org.")]);
    probe(&targets[0]).unwrap();
    let request = web.requests.lock().unwrap()[0].clone();
    assert!(
        request.contains("\r\nHost: www.example.org\r\n"),
        "{request}"
    );
}

#[test]
fn http_probe_fails_on_silence_garbage_and_hangup() {
    let silent = HttpServer::start(HttpMode::Silent);
    let started = Instant::now();
    let err = probe_http(silent.addr(), "h", "/", SHORT).unwrap_err();
    assert!(matches!(err, ProbeError::Timeout { .. }), "{err}");
    assert!(started.elapsed() >= SHORT);
    assert!(started.elapsed() < SHORT * 10, "the deadline was not kept");

    let garbage = HttpServer::start(HttpMode::Garbage);
    let err = probe_http(garbage.addr(), "h", "/", LONG).unwrap_err();
    assert!(matches!(err, ProbeError::Malformed { .. }), "{err}");

    let hangup = HttpServer::start(HttpMode::Hangup);
    let err = probe_http(hangup.addr(), "h", "/", LONG).unwrap_err();
    assert!(
        matches!(err, ProbeError::Malformed { .. } | ProbeError::Io { .. }),
        "{err}"
    );

    let err = probe_http(closed_port(), "h", "/", LONG).unwrap_err();
    assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
}

#[test]
fn dns_probe_accepts_noerror_and_nxdomain_only() {
    for rcode in [0, 3] {
        let server = DnsServer::start(rcode, true, false);
        probe_udp_dns(server.addr(), "example.org", 0x4242, LONG).unwrap();
    }
    for rcode in [1, 2, 4, 5] {
        let server = DnsServer::start(rcode, false, false);
        let err = probe_udp_dns(server.addr(), ".", 7, LONG).unwrap_err();
        assert!(
            matches!(err, ProbeError::DnsRcode { rcode: r, .. } if r == rcode),
            "{err}"
        );
    }
}

#[test]
fn dns_probe_fails_on_silence_and_closed_port() {
    let silent = DnsServer::start(0, false, true);
    let started = Instant::now();
    let err = probe_udp_dns(silent.addr(), ".", 9, SHORT).unwrap_err();
    assert!(matches!(err, ProbeError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < SHORT * 10, "the deadline was not kept");

    let port = {
        let s = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        s.local_addr().unwrap()
    };
    let err = probe_udp_dns(port, ".", 9, LONG).unwrap_err();
    assert!(matches!(err, ProbeError::Connect { .. }), "{err}");
    assert!(dns_query(".", 9).is_some());
}

fn spec(kind: CheckKind, port: u16, rise: u32, fall: u32) -> HealthCheckSpec {
    HealthCheckSpec {
        settings: CheckSettings {
            kind,
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(500),
            rise,
            fall,
            path: "/healthz".into(),
        },
        port,
        host: None,
    }
}

/// A running checker and a channel of (backend, up, when) for every change it reports.
fn checker(targets: Vec<Target>) -> (Scheduler, mpsc::Receiver<(IpAddr, bool, Instant)>) {
    let (tx, rx) = mpsc::channel();
    let options = SchedulerOptions {
        workers: 2,
        core: None,
    };
    let scheduler = Scheduler::start(targets, options, move |c| {
        let _ = tx.send((c.target.backend, c.up, Instant::now()));
    })
    .unwrap();
    (scheduler, rx)
}

/// The prober pool grows with the targets, so probes do not queue behind connects that get no
/// answer (4 threads for 20 such backends used to stretch a 2 s interval to 5 s); it never shrinks.
#[test]
fn the_prober_pool_grows_with_the_targets() {
    let t = |n: u8| Target {
        service: "svc".into(),
        backend: IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)),
        spec: {
            let mut spec = spec(CheckKind::Tcp, 9, 1, 3);
            spec.settings.interval = Duration::from_secs(2);
            spec.settings.timeout = Duration::from_secs(1);
            spec
        },
    };
    let (mut checker, _changes) = checker(vec![t(1)]);
    // At least SchedulerOptions::workers (2); one target needs 1 + 1.
    assert_eq!(checker.probers(), 2);
    checker.set_targets((1..=40).map(t).collect());
    // 40 targets each busy up to half the time: 20, plus one.
    assert_eq!(checker.probers(), 21);
    checker.set_targets(vec![t(1)]);
    assert_eq!(checker.probers(), 21);
}

/// Stop the server: DOWN within fall × interval + one interval (bound-checked with a wide
/// margin), never before (fall - 2) intervals (a probe in flight at the stop may count as
/// the first failure); start it: UP within a bound.
fn stop_and_start(kind: CheckKind, port: u16, stop: &mut dyn FnMut(), start: &mut dyn FnMut()) {
    let (rise, fall) = (2, 3);
    let target = Target {
        service: "svc".into(),
        backend: LOCALHOST,
        spec: spec(kind, port, rise, fall),
    };
    let interval = target.spec.settings.interval;
    let (checker, changes) = checker(vec![target]);
    // A few healthy rounds first: nothing may change.
    thread::sleep(interval * 4);
    assert!(
        changes.try_recv().is_err(),
        "{kind:?}: changed while healthy"
    );
    assert_eq!(checker.is_up("svc", LOCALHOST), Some(true));

    let stopped = Instant::now();
    stop();
    let (_, up, at) = changes.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!up);
    let down_after = at - stopped;
    assert!(
        down_after >= interval * (fall - 2),
        "{kind:?}: down too early"
    );
    assert!(
        down_after < Duration::from_secs(5),
        "{kind:?}: down after {down_after:?}"
    );
    assert_eq!(checker.is_up("svc", LOCALHOST), Some(false));

    let started = Instant::now();
    start();
    let (_, up, at) = changes.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(up);
    let up_after = at - started;
    // No lower bound here: a probe sent late on a busy host and the next one on time can be
    // less than an interval apart. That rise OKs are needed is health_state.rs's
    // rise_needs_consecutive_successes, on an injected clock.
    assert!(
        up_after < Duration::from_secs(5),
        "{kind:?}: up after {up_after:?}"
    );
    let status = &checker.statuses()[0];
    assert!(status.up && status.failures >= u64::from(fall));
    eprintln!(
        "{kind:?}: down {down_after:?} after stop (bound {:?}), up {up_after:?} after start (bound {:?})",
        interval * (fall + 1),
        interval * (rise + 1)
    );
}

#[test]
fn checker_follows_a_tcp_server_stopped_and_started() {
    let mut listener = Some(TcpListener::bind((LOCALHOST, 0)).unwrap());
    let port = listener.as_ref().unwrap().local_addr().unwrap().port();
    let slot = Arc::new(Mutex::new(listener.take()));
    let (a, b) = (Arc::clone(&slot), Arc::clone(&slot));
    stop_and_start(
        CheckKind::Tcp,
        port,
        &mut || drop(a.lock().unwrap().take()),
        &mut || *b.lock().unwrap() = Some(TcpListener::bind((LOCALHOST, port)).unwrap()),
    );
}

#[test]
fn checker_follows_an_http_server_stopped_and_started() {
    let server = Arc::new(Mutex::new(HttpServer::start(HttpMode::Status(200))));
    let port = server.lock().unwrap().port;
    let (a, b) = (Arc::clone(&server), Arc::clone(&server));
    stop_and_start(
        CheckKind::Http,
        port,
        &mut || a.lock().unwrap().stop(),
        &mut || b.lock().unwrap().restart(),
    );
    let requests = server.lock().unwrap().requests.lock().unwrap().clone();
    assert!(requests
        .iter()
        .all(|r| r.starts_with("GET /healthz HTTP/1.1")));
}

#[test]
fn checker_follows_a_dns_server_stopped_and_started() {
    let server = Arc::new(Mutex::new(DnsServer::start(0, false, false)));
    let port = server.lock().unwrap().port;
    let (a, b) = (Arc::clone(&server), Arc::clone(&server));
    stop_and_start(
        CheckKind::UdpDns,
        port,
        &mut || a.lock().unwrap().stop(),
        &mut || b.lock().unwrap().restart(),
    );
}

#[test]
fn checker_rides_out_one_lost_probe() {
    let server = HttpServer::start(HttpMode::Status(200));
    server.fail_request.store(3, Ordering::SeqCst);
    let target = Target {
        service: "svc".into(),
        backend: LOCALHOST,
        spec: spec(CheckKind::Http, server.port, 2, 2),
    };
    let (checker, changes) = checker(vec![target]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while checker.statuses()[0].probes < 8 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let status = checker.statuses()[0].clone();
    assert!(status.probes >= 8, "only {} probes", status.probes);
    assert_eq!(status.failures, 1);
    assert!(status.up);
    assert!(
        changes.try_recv().is_err(),
        "one lost probe flipped the backend"
    );
}

#[test]
fn checker_reload_keeps_state_and_drops_removed_targets() {
    let live = TcpListener::bind((LOCALHOST, 0)).unwrap();
    let dead = closed_port();
    let good = Target {
        service: "a".into(),
        backend: LOCALHOST,
        spec: spec(CheckKind::Tcp, live.local_addr().unwrap().port(), 1, 1),
    };
    let bad = Target {
        service: "b".into(),
        backend: LOCALHOST,
        spec: spec(CheckKind::Tcp, dead.port(), 1, 1),
    };
    let (mut checker, changes) = checker(vec![good.clone(), bad.clone()]);
    let (_, up, _) = changes.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!up);
    assert_eq!(checker.is_up("b", LOCALHOST), Some(false));

    // Reload with the same targets: no change, "b" stays DOWN.
    checker.set_targets(vec![bad.clone(), good.clone()]);
    thread::sleep(Duration::from_millis(200));
    assert!(changes.try_recv().is_err());
    assert_eq!(checker.is_up("b", LOCALHOST), Some(false));

    // "b" loses its check: UP at once, reported; "a" is removed.
    let mut unchecked = bad.clone();
    unchecked.spec = HealthCheckSpec::none();
    checker.set_targets(vec![unchecked]);
    let (_, up, _) = changes.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(up);
    assert_eq!(checker.is_up("a", LOCALHOST), None);
    assert_eq!(checker.statuses().len(), 1);
    checker.stop();
}

/// RFC 9110 15.2: a client must parse 1xx answers before the final one even if it did not
/// ask for them (103 Early Hints, an unsolicited 100 Continue). A backend answering
/// `103` then `200` answers 2xx; one answering `100` then `503` does not.
#[test]
fn http_probe_skips_interim_1xx_answers() {
    let serve = |answer: &'static [u8]| {
        let listener = TcpListener::bind((LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(LONG)).unwrap();
            let mut buf = [0u8; 1024];
            let mut len = 0;
            while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf[len..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
            }
            // Byte by byte: every boundary falls between two reads somewhere.
            for b in answer {
                if conn.write_all(&[*b]).is_err() {
                    break;
                }
            }
            thread::sleep(Duration::from_millis(50));
        });
        (addr, handle)
    };
    let hints: &'static [u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nLink: </script.js>; rel=preload; as=script\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (addr, handle) = serve(hints);
    let result = probe_http(addr, "h", "/", LONG);
    handle.join().unwrap();
    assert!(
        result.is_ok(),
        "103 then 200 taken for a failure: {result:?}"
    );

    let (addr, handle) = serve(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\n\r\n");
    let result = probe_http(addr, "h", "/", LONG);
    handle.join().unwrap();
    assert!(
        matches!(result, Err(ProbeError::HttpStatus { status: 503, .. })),
        "{result:?}"
    );

    // Interim answers alone, then a hangup: no final status, a failure.
    let (addr, handle) = serve(b"HTTP/1.1 103 Early Hints\r\n\r\n");
    let result = probe_http(addr, "h", "/", LONG);
    handle.join().unwrap();
    assert!(result.is_err(), "{result:?}");
}

/// Probes never wait for a thread behind probes that run to their timeout: ten targets checked
/// every 2 s (timeout 1 s) beside ten every 20 s. The pool sized by the sum of timeout /
/// interval is below what the first targets' staggered probes need at once (their first
/// probes go out 0.1 s apart and each holds its thread for 1 s against a silent server), so
/// the scheduler must add threads while they are in flight.
#[test]
fn the_pool_grows_when_more_probes_are_in_flight_than_threads() {
    // Silent UDP "DNS servers": bound, never read, never answering.
    let sockets: Vec<UdpSocket> = (0..20)
        .map(|_| UdpSocket::bind((LOCALHOST, 0)).unwrap())
        .collect();
    let targets: Vec<Target> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut spec = spec(CheckKind::UdpDns, s.local_addr().unwrap().port(), 1, 3);
            spec.settings.interval = Duration::from_secs(if i < 10 { 2 } else { 20 });
            spec.settings.timeout = Duration::from_secs(1);
            Target {
                service: format!("s{i}"),
                backend: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
                spec,
            }
        })
        .collect();
    let sized = probers_needed(&targets);
    let (checker, _changes) = checker(targets);
    assert_eq!(checker.probers(), sized);
    // Bounded: the first ten probes are all out within a second of the start.
    let until = Instant::now() + Duration::from_secs(10);
    while checker.probers() <= sized && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    let grown = checker.probers();
    drop(checker);
    drop(sockets);
    assert!(
        grown > sized,
        "the pool stayed at {grown} threads with more probes in flight"
    );
}
