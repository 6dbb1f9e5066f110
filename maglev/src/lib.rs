//! Maglev consistent hashing: deterministic lookup tables, flow hashing and table diffs.

pub mod flow;
