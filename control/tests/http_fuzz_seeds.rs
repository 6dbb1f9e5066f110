//! Replays the http_request fuzz target's seed corpus and hostile streams through the fuzz body on stable.
mod common;
use control::http::fuzzing::{fuzz_http_request, CONTROL};

#[test]
fn the_seed_corpus_replays_without_panicking() {
    common::replay_seeds("http_request", fuzz_http_request);
}

#[test]
fn hostile_heads_are_refused_not_crashed_on() {
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100_000));
    for head in [
        &b""[..],
        b"\r\n\r\n",
        b"GET",
        b"GET / HTTP/1.1\r\n:\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\n\r\n",
        b"GET \x00 HTTP/1.1\r\n\r\n",
        long.as_bytes(),
    ] {
        // Default limits in whole reads, then small limits in reads of a byte.
        let control: [[u8; CONTROL]; 2] = [[0; CONTROL], [16, 4, 1, 1, 1, 1]];
        for control in control {
            fuzz_http_request(&[&control[..], head].concat());
        }
    }
}
