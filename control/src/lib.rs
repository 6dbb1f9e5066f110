//! sluice control plane: configuration, reload, health checks and metrics.
