//! Safe wrappers over dpdk-sys (placeholder until the dpdk work lands).
