//! The traffic library of `sluice demo`, `sluice-gen` and the tests: client frames for flow i
//! ([`template`]), the payload stamp ([`stamp`]), flow numbering ([`flow`]), reading back what
//! the load balancer forwarded ([`decode`]) and answering its ARP requests ([`arp`]). Every
//! header is read and written through `dataplane::wire`'s views: no offsets of its own.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod arp;
pub mod decode;
pub mod flow;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod stamp;
pub mod template;

pub use decode::{parse, BackendKey, Received, Returned};
pub use template::{Client, Packet, Target, Template, L4};
