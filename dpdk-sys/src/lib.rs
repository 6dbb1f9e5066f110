//! Raw FFI to DPDK (placeholder until the dpdk-sys work lands).
