//! Maglev consistent hashing: deterministic lookup tables, flow hashing and table diffs.

mod backend;
pub mod diff;
mod fill;
pub mod flow;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod hash;
mod prime;
mod sizing;
mod table;

pub use backend::{address_name, Backend, ParseBackendError};
pub use diff::{diff, moves, BackendDiff, Diff, Move, Moves};
pub use prime::is_prime;
pub use sizing::{expected_excess_points, recommended_size, SLOTS_PER_BACKEND};
pub use table::{permutation, Balance, Fingerprint, MaglevError, Table, MAX_SIZE};
