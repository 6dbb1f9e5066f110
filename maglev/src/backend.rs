//! A backend as the table builder sees it: an identity (its address, or an explicit name) and a weight.
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// One backend. Its `name` is its identity: the permutation is derived from these bytes alone, so
/// every instance that lists the same names gets the same table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Backend {
    /// Identity: the backend's address in canonical text form (e.g. `203.0.113.11`,
    /// `2001:db8::1`: what the appliance hashes), or a name.
    pub name: String,
    /// Relative share of the table; 0 = no entries (draining).
    pub weight: u32,
}

/// The identity of a backend known by its address: the address in canonical text form (IPv6
/// as RFC 5952 writes it). The appliance and `NAME` parsing both name backends this way.
pub fn address_name(address: std::net::IpAddr) -> String {
    address.to_string()
}

impl Backend {
    /// A backend named `name` with weight `weight`.
    pub fn new(name: impl Into<String>, weight: u32) -> Self {
        Backend {
            name: name.into(),
            weight,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.weight)
    }
}

/// Why a `NAME[=WEIGHT]` string is not a backend.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseBackendError {
    #[error("backend {input:?}: the name is empty (expected NAME or NAME=WEIGHT)")]
    EmptyName { input: String },
    #[error("backend {input:?}: weight {weight:?} is not an integer in 0..=4294967295 (expected NAME or NAME=WEIGHT)")]
    BadWeight { input: String, weight: String },
}

impl FromStr for Backend {
    type Err = ParseBackendError;

    /// Parses `NAME` (weight 100, as a config backend without `weight`) or `NAME=WEIGHT`; the
    /// weight follows the last `=`. A NAME that is an IP address is rewritten to its canonical
    /// form (`2001:0DB8::1` -> `2001:db8::1`), the name the appliance gives a configured
    /// backend, so `sluice maglev` prints the table and fingerprint the appliance exports.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, weight) = match s.rsplit_once('=') {
            None => (s, 100),
            Some((name, w)) => {
                let weight = w.parse::<u32>().map_err(|_| ParseBackendError::BadWeight {
                    input: s.to_owned(),
                    weight: w.to_owned(),
                })?;
                (name, weight)
            }
        };
        if name.is_empty() {
            return Err(ParseBackendError::EmptyName {
                input: s.to_owned(),
            });
        }
        match name.parse() {
            Ok(address) => Ok(Backend::new(address_name(address), weight)),
            Err(_) => Ok(Backend::new(name, weight)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_weight() {
        assert_eq!("a".parse(), Ok(Backend::new("a", 100)));
        assert_eq!(
            "203.0.113.11=7".parse(),
            Ok(Backend::new("203.0.113.11", 7))
        );
        assert_eq!("2001:db8::1=0".parse(), Ok(Backend::new("2001:db8::1", 0)));
        assert_eq!("x=y=3".parse(), Ok(Backend::new("x=y", 3)));
        assert_eq!("a=4294967295".parse(), Ok(Backend::new("a", u32::MAX)));
    }

    #[test]
    fn addresses_are_named_in_canonical_form() {
        assert_eq!(
            "2001:0DB8:0:0::1=5".parse(),
            Ok(Backend::new("2001:db8::1", 5))
        );
        assert_eq!(
            "::ffff:c000:0201".parse::<Backend>().unwrap().name,
            "::ffff:192.0.2.1"
        );
        // Not addresses: kept as written.
        assert_eq!("web-1".parse::<Backend>().unwrap().name, "web-1");
        assert_eq!(
            "203.0.113.11:80".parse::<Backend>().unwrap().name,
            "203.0.113.11:80"
        );
        assert_eq!("ABC".parse::<Backend>().unwrap().name, "ABC");
    }

    #[test]
    fn rejects_bad_input_with_what_was_wrong() {
        for (input, weight) in [
            ("a=", ""),
            ("a=x", "x"),
            ("a=-1", "-1"),
            ("a=4294967296", "4294967296"),
            ("a=1.5", "1.5"),
        ] {
            assert_eq!(
                input.parse::<Backend>(),
                Err(ParseBackendError::BadWeight {
                    input: input.into(),
                    weight: weight.into()
                })
            );
        }
        assert!(matches!(
            "".parse::<Backend>(),
            Err(ParseBackendError::EmptyName { .. })
        ));
        assert!(matches!(
            "=3".parse::<Backend>(),
            Err(ParseBackendError::EmptyName { .. })
        ));
        let msg = "a=x".parse::<Backend>().unwrap_err().to_string();
        assert!(
            msg.contains("\"x\"") && msg.contains("NAME=WEIGHT"),
            "{msg}"
        );
    }
}
