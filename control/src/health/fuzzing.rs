//! The probe-answer parsers' fuzz body, shared by the cargo-fuzz target and the seed replay test.

use super::probe::{check_dns_answer, dns_query, parse_status_line, DnsAnswer};

/// Feeds arbitrary bytes to every parser of what a backend answers (and of the DNS name
/// from the config): none may panic, and what they accept must hold up.
pub fn fuzz_probe_answer(data: &[u8]) {
    // The id comes from the data itself, so the "answer to our query" path is reached.
    let id = data
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let Some(query) = dns_query("example.org", id) else {
        panic!("a valid name was refused");
    };
    let question = &query[12..];
    match check_dns_answer(data, id, question) {
        DnsAnswer::Rcode(rcode) => {
            assert!(data.len() >= 12 && rcode < 16);
            assert!(data[2] & 0x80 != 0, "a query taken for an answer");
            if rcode == 0 || rcode == 3 {
                assert!(data[12..].len() >= question.len(), "no question echoed");
            }
        }
        DnsAnswer::NotOurs | DnsAnswer::Malformed(_) => {}
    }
    if let Some(status) = parse_status_line(data) {
        assert!((100..=599).contains(&status));
    }
    if let Ok(name) = std::str::from_utf8(data) {
        if let Some(q) = dns_query(name, id) {
            // Header, at most 255 bytes of name, type and class.
            assert!(q.len() <= 12 + 255 + 4);
            assert_eq!(q[..2], id.to_be_bytes());
        }
    }
}
