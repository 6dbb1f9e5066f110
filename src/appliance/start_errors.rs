//! Appliance::start's mapping of DPDK failures to errors that say what to change
//! ([`crate::sizing::errors`]); any other failure stays a plain DPDK error.
use std::path::Path;

use control::config::Config;
use dataplane::dpdk::DpdkError;

use super::StartError;
use crate::sizing::errors::{mtu_error, pool_error};

/// Interface `index`'s mbuf pool could not be created.
pub(super) fn pool(c: &Config, index: usize, e: DpdkError) -> StartError {
    pool_error(c, index, e).map_or_else(StartError::Dpdk, |s| StartError::Sizing(Box::new(s)))
}

/// Interface `index`'s port could not be opened (`file`: the config, to name the mtu line).
pub(super) fn port(c: &Config, index: usize, file: Option<&Path>, e: DpdkError) -> StartError {
    mtu_error(c, index, file, e).map_or_else(StartError::Dpdk, |s| StartError::Sizing(Box::new(s)))
}
