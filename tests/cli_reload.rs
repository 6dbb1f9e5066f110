//! `sluice reload` against a stand-in for the appliance's listener: each answer maps to the
//! exit code `systemctl reload` sees (0 reloaded, 1 refused or not allowed, 2 no outcome).
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A one-connection HTTP server on 127.0.0.1 answering `response`; joins to the request it read.
fn serve(response: &'static str) -> (u16, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let request = read_head(&mut conn);
        conn.write_all(response.as_bytes()).unwrap();
        request
    });
    (port, handle)
}

fn read_head(conn: &mut TcpStream) -> String {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    read_head_of(conn)
}

fn read_head_of(conn: &mut impl Read) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the client closed before a whole request");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

/// A one-connection stand-in for the control socket of an appliance listening on `listen`,
/// started from `config` (`control::control_socket`), answering `response`; joins to the
/// request it read.
fn serve_socket(listen: &str, config: &Path, response: &'static str) -> JoinHandle<String> {
    let addr = control::control_socket::address(listen.parse().unwrap(), Some(config)).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let request = read_head_of(&mut conn);
        conn.write_all(response.as_bytes()).unwrap();
        request
    })
}

/// A loopback address no other test (nor another run of this one) configures.
fn own_loopback(k: u8) -> String {
    let p = std::process::id();
    format!("127.{}.{}.{k}", (p >> 8) & 0xff, p & 0xff)
}

fn answer(status: &str, body: &str) -> &'static str {
    Box::leak(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nServer: sluice\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    )
}

fn reload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("reload")
        .args(args)
        .output()
        .unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn temp_config(name: &str, text: &str) -> PathBuf {
    common::temp_config("cli-reload", name, text)
}

/// The example config, listening on `listen`.
fn example_on(listen: &str) -> String {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sluice.example.yaml");
    let text = std::fs::read_to_string(example).unwrap();
    assert!(text.contains("listen: 127.0.0.1:9610"));
    text.replace("listen: 127.0.0.1:9610", &format!("listen: \"{listen}\""))
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn reloaded_is_exit_0_with_the_epoch() {
    let (port, server) = serve(answer("200 OK", "reloaded (epoch 4)\n"));
    let out = reload(&["--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "reloaded (epoch 4)\n");
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /-/reload HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains(&format!("Host: 127.0.0.1:{port}\r\n")));
    assert!(request.contains("Content-Length: 0\r\n"));
}

/// `reload -c` of the example config listening on `host` at the test server's port reaches
/// that server and succeeds.
fn reloads_through_the_config(name: &str, host: &str) {
    let (port, server) = serve(answer("200 OK", "reloaded (epoch 2)\n"));
    let path = temp_config(name, &example_on(&format!("{host}:{port}")));
    let out = reload(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    server.join().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn the_address_comes_from_the_config() {
    reloads_through_the_config("valid", "127.0.0.1");
}

/// A wildcard listener is asked on loopback, which `metrics.lifecycle: local` admits.
#[test]
fn a_wildcard_listen_address_is_asked_on_loopback() {
    reloads_through_the_config("wildcard", "0.0.0.0");
}

/// The new file is invalid: its listen address is still read, and the appliance's reason shown.
#[test]
fn refused_is_exit_1_with_the_reason() {
    let reason = "reload refused, nothing changed:\nsluice.yaml:14:17: services[0].backends[0].weight: must be 0..=65535\n";
    let (port, server) = serve(answer("500 Internal Server Error", reason));
    let text = format!(
        "metrics:\n  listen: 127.0.0.1:{port}\nservices:\n  - name: web\n    backends:\n      - address: 203.0.113.11\n        weight: -5\n"
    );
    let path = temp_config("invalid", &text);
    let out = reload(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sluice.yaml:14:17: services[0].backends[0].weight"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    server.join().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn not_allowed_is_exit_1_with_the_reason() {
    let (port, server) = serve(answer(
        "403 Forbidden",
        "POST /-/reload is for clients on this host (metrics.lifecycle: local)\n",
    ));
    let out = reload(&["--url", &format!("127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics.lifecycle: local"));
    server.join().unwrap();
}

#[test]
fn still_running_is_exit_2() {
    let (port, server) = serve(answer("202 Accepted", "reload requested, still running\n"));
    let out = reload(&["--url", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("still running"));
    server.join().unwrap();
}

#[test]
fn an_answer_without_a_length_ends_at_close() {
    let (port, server) = serve("HTTP/1.0 200 OK\r\n\r\nreloaded (epoch 9)\n");
    let out = reload(&["--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "reloaded (epoch 9)\n");
    server.join().unwrap();
}

#[test]
fn unreachable_is_exit_2_naming_the_address() {
    let port = closed_port();
    let path = temp_config("closed", &example_on(&format!("127.0.0.1:{port}")));
    let out = reload(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("metrics.listen"),
        "{stderr}"
    );
    std::fs::remove_file(path).unwrap();
}

/// A listener that accepts and never answers: the client gives up at --timeout.
#[test]
fn a_silent_listener_times_out_with_exit_2() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let start = Instant::now();
    let out = reload(&["--url", &format!("127.0.0.1:{port}"), "--timeout", "0.5"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no complete answer"));
    drop(listener);
}

/// A file that is not YAML names no address: nothing is sent, and the parse error is shown.
#[test]
fn a_file_that_does_not_parse_is_exit_1_and_sends_nothing() {
    let path = temp_config("unparsable", "metrics: {listen: [\n");
    let out = reload(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nothing was sent") && stderr.contains(path.to_str().unwrap()),
        "{stderr}"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn port_0_is_exit_2_asking_for_url() {
    let path = temp_config("port0", &example_on("127.0.0.1:0"));
    let out = reload(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
    std::fs::remove_file(path).unwrap();
}

/// With a config file, the control socket is asked first (it answers whatever
/// `metrics.lifecycle` says); port 0 is no obstacle there, since the name is the configured address.
#[test]
fn the_control_socket_comes_first() {
    let listen = format!("{}:0", own_loopback(3));
    let path = temp_config("socket", &example_on(&listen));
    let server = serve_socket(&listen, &path, answer("200 OK", "reloaded (epoch 9)\n"));
    let out = reload(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "reloaded (epoch 9)\n");
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /-/reload HTTP/1.1\r\n"),
        "{request}"
    );
    // Another file with the same port-0 address names another appliance: not this socket's.
    let other = temp_config("socket-other", &example_on(&listen));
    let _server = serve_socket(&listen, &path, answer("200 OK", "reloaded (epoch 9)\n"));
    let out = reload(&["-c", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--url"),
        "{}",
        show(&out)
    );
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(other).unwrap();
}

/// A socket that refuses this user leaves the listener to decide; both reasons are shown when
/// it refuses too.
#[test]
fn a_socket_refusing_this_user_falls_back_to_http() {
    let socket_says =
        "the control socket answers root and the appliance's own user (uid 0) only, not uid 1000\n";
    let (port, http) = serve(answer("200 OK", "reloaded (epoch 3)\n"));
    let listen = format!("127.0.0.1:{port}");
    let path = temp_config("socket-refuses", &example_on(&listen));
    let socket = serve_socket(&listen, &path, answer("403 Forbidden", socket_says));
    let out = reload(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "reloaded (epoch 3)\n");
    socket.join().unwrap();
    http.join().unwrap();

    let (port, http) = serve(answer(
        "403 Forbidden",
        "lifecycle endpoints are off over HTTP (metrics.lifecycle: off)\n",
    ));
    let listen = format!("127.0.0.1:{port}");
    let socket = serve_socket(&listen, &path, answer("403 Forbidden", socket_says));
    std::fs::write(&path, example_on(&listen)).unwrap();
    let out = reload(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metrics.lifecycle: off") && stderr.contains("not uid 1000"),
        "{stderr}"
    );
    socket.join().unwrap();
    http.join().unwrap();
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_missing_file_is_exit_1() {
    let out = reload(&["-c", "/nonexistent/sluice.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sluice.yaml"));
}

/// `drain` and `top` read a config file's address as `reload` does, and say so the same way.
#[test]
fn a_missing_file_is_exit_1_for_drain_and_top_too() {
    for args in [&["drain"][..], &["top", "--once"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .args(["-c", "/nonexistent/sluice.yaml"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sluice.yaml"));
    }
}

#[test]
fn config_and_url_are_exclusive_and_one_is_needed() {
    assert_eq!(reload(&[]).status.code(), Some(2));
    assert_eq!(
        reload(&["-c", "x.yaml", "--url", "127.0.0.1:1"])
            .status
            .code(),
        Some(2)
    );
}

/// `--timeout` is what the operator types: a very long one is as good as waiting for ever (no
/// panic adding it to the clock), and 0 or a negative one is refused before anything is sent,
/// naming the option.
#[test]
fn any_timeout_the_operator_types_is_an_answer_not_a_panic() {
    let (port, server) = serve(answer("200 OK", "reloaded (epoch 5)\n"));
    let url = format!("http://127.0.0.1:{port}");
    let out = reload(&["--url", &url, "--timeout", "1e19"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "reloaded (epoch 5)\n");
    server.join().unwrap();
    for bad in ["0", "-1", "nan", "inf"] {
        let out = reload(&["--url", &url, &format!("--timeout={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--timeout"), "{bad}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bad}: {stderr}");
    }
}
