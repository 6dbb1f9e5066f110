//! sluice control plane: configuration, reload, health checks and metrics.

pub mod config;
pub mod control_socket;
pub mod controller;
pub mod forwarding;
pub mod health;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod neighbour;
