//! Sizing: the memory a config needs (mbuf pools, flow tables, Maglev tables) and what EAL
//! will have for it, from `dpdk.args`. Shared by `sluice check` (its memory block),
//! `sluice doctor` (hugepages and ordinary memory against the host) and `sluice run` (what a
//! start that runs out of memory, or a refused MTU, says to change: [`errors`]).
//!
//! Where sluice's memory lives (src/appliance/mod.rs, dataplane/src/flow.rs):
//! - **DPDK memory** (hugepages, or the heap with `--no-huge`): one mbuf pool per interface
//!   (`Mempool::with_default_buffers`, with `dpdk.mbufs` mbufs), the NIC descriptor rings, and
//!   EAL's own memzones.
//! - **ordinary memory**: each worker's flow table (`FlowTable::new`, Rust heap, advised to
//!   transparent huge pages but not from DPDK's hugepages) and the Maglev tables of the
//!   snapshots. These need RAM, not hugepages.
pub mod errors;

use std::fmt::Write as _;
use std::mem::size_of;

use control::config::Config;

use crate::doctor::eal;
use crate::doctor::host::bytes_text;

pub const MIB: u64 = 1 << 20;
/// DPDK's cache line (RTE_CACHE_LINE_SIZE on x86-64): mempool objects are aligned to it.
const CACHE_LINE: usize = 64;

const fn align_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Hugepage bytes per mbuf, as rte_mempool_calc_obj_size works it out for a pktmbuf pool:
/// the object header (cache-line aligned) plus `struct rte_mbuf` and the default data room
/// (RTE_MBUF_DEFAULT_BUF_SIZE: 2048 + 128 headroom), both sizes from the bindings of the
/// installed DPDK. 2368 bytes with DPDK 22.11.
pub const MBUF_OBJECT_BYTES: u64 = (align_up(size_of::<dpdk_sys::rte_mempool_objhdr>(), CACHE_LINE)
    + align_up(
        size_of::<dpdk_sys::rte_mbuf>() + dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as usize,
        CACHE_LINE,
    )) as u64;

/// Bytes per mbuf with `--no-huge`: EAL's memory is then 4 KiB pages and a mempool object
/// may not straddle a page, so each 2368-byte mbuf takes a page of its own (measured: -m 64
/// holds a pool of about 15,960 mbufs, -m 128 about 32,300).
pub const NO_HUGE_MBUF_BYTES: u64 = 4096;

/// Hugepage bytes per pool besides its mbufs: the pool header with one object cache per
/// possible lcore (RTE_MAX_LCORE of them, about 1 MiB in all).
pub const POOL_HEADER_BYTES: u64 = (size_of::<dpdk_sys::rte_mempool>()
    + dpdk_sys::RTE_MAX_LCORE as usize * size_of::<dpdk_sys::rte_mempool_cache>())
    as u64;

/// A fixed allowance for EAL's memzones, the ethdev data, the NIC descriptor rings and
/// hugepage rounding. Not measured from sluice: a margin, generous for a few ports (a ring of
/// 4096 descriptors is well under 1 MiB).
pub const EAL_OVERHEAD_BYTES: u64 = 64 * MIB;

/// The same allowance with `--no-huge`, where there is no page rounding to cover: EAL, the
/// rings and ethdev took under 2 MiB of the fixed heap besides the pool (measured on net_pcap).
pub const NO_HUGE_OVERHEAD_BYTES: u64 = 4 * MIB;

/// EAL's memory with `--no-huge` and no `-m` (MEMSIZE_IF_NO_HUGE_PAGE in DPDK's
/// eal_internal_cfg.h; measured: the largest pool is the same with and without `-m 64`).
pub const NO_HUGE_DEFAULT_BYTES: u64 = 64 * MIB;

/// Bytes per flow-table entry: `flow::Entry` is `#[repr(align(64))]` (one cache line: a
/// 37-byte key, backend, state, expiry); private to dataplane/src/flow.rs, so mirrored here.
pub const FLOW_ENTRY_BYTES: u64 = 64;
/// Bytes per 8-way bucket: `flow::Bucket` is `#[repr(C, align(32))]` with 8 u16 tags and 8
/// u16 expiries (dataplane/src/flow.rs; private there).
pub const FLOW_BUCKET_BYTES: u64 = 32;

/// Bytes per nat side record, one per flow-table slot when a service uses nat or fullnat.
pub const NAT_RECORD_BYTES: u64 = std::mem::size_of::<dataplane::flow::Nat>() as u64;

/// Bytes per Maglev table slot (a u32 backend index, dataplane/src/snapshot.rs).
pub const MAGLEV_SLOT_BYTES: u64 = 4;

/// Bytes per slot a Maglev build holds besides its table while it runs, at most (a weighted
/// build's turn order: maglev/src/table.rs `turn_order`); control builds one table at a time.
pub const MAGLEV_BUILD_BYTES: u64 = 12;

/// An estimate (not a measurement) of the memory a config needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub ports: u64,
    pub mbufs_per_port: u64,
    /// DPDK memory per mbuf: [`MBUF_OBJECT_BYTES`], or [`NO_HUGE_MBUF_BYTES`] with --no-huge.
    pub mbuf_bytes: u64,
    /// DPDK memory: mbuf pools, one per port.
    pub mbuf_pools: u64,
    /// DPDK memory: [`EAL_OVERHEAD_BYTES`] or [`NO_HUGE_OVERHEAD_BYTES`].
    pub eal_overhead: u64,
    /// One per queue.
    pub workers: u64,
    /// Ordinary memory: one flow table per worker.
    pub flow_tables: u64,
    /// Ordinary memory: table and fallback per service, twice (old and new snapshot during
    /// a reload).
    pub maglev_tables: u64,
}

impl Estimate {
    /// DPDK memory (hugepages, or EAL's heap with --no-huge).
    pub fn hugepages(&self) -> u64 {
        self.mbuf_pools + self.eal_overhead
    }

    /// Ordinary (non-hugepage) memory.
    pub fn ordinary(&self) -> u64 {
        self.flow_tables + self.maglev_tables
    }

    /// One port's pool.
    pub fn pool(&self) -> u64 {
        pool_bytes(self.mbufs_per_port, self.mbuf_bytes)
    }

    /// The most mbufs per port whose pools, with the overhead, fit in `have` bytes.
    pub fn max_mbufs(&self, have: u64) -> u64 {
        let per_port = have.saturating_sub(self.eal_overhead) / self.ports.max(1);
        per_port.saturating_sub(POOL_HEADER_BYTES) / self.mbuf_bytes.max(1)
    }
}

/// One pool of `mbufs` of `mbuf_bytes` each, with its header.
pub fn pool_bytes(mbufs: u64, mbuf_bytes: u64) -> u64 {
    mbufs * mbuf_bytes + POOL_HEADER_BYTES
}

/// Flow-table slots for a configured capacity: rounded up to a power of two of 8-way
/// buckets, as `FlowTable::new` does.
pub fn flow_slots(capacity: u64) -> u64 {
    capacity
        .div_ceil(dataplane::flow::WAYS as u64)
        .max(1)
        .next_power_of_two()
        * dataplane::flow::WAYS as u64
}

/// One worker's flow table for a configured capacity, with nat side records when `nat`.
pub fn flow_table_bytes(capacity: u64, nat: bool) -> u64 {
    let slots = flow_slots(capacity);
    let per_slot = FLOW_ENTRY_BYTES + if nat { NAT_RECORD_BYTES } else { 0 };
    slots * per_slot + slots / dataplane::flow::WAYS as u64 * FLOW_BUCKET_BYTES
}

/// The estimate from its inputs: `ports` interfaces with `mbufs` each (in hugepages, or in
/// 4 KiB pages when `no_huge`), `workers` flow tables of `flow_capacity`, and one Maglev
/// table per entry of `table_sizes`.
pub fn estimate(
    ports: u64,
    mbufs: u64,
    no_huge: bool,
    workers: u64,
    flow_capacity: u64,
    nat: bool,
    table_sizes: &[u32],
) -> Estimate {
    let (mbuf_bytes, eal_overhead) = if no_huge {
        (NO_HUGE_MBUF_BYTES, NO_HUGE_OVERHEAD_BYTES)
    } else {
        (MBUF_OBJECT_BYTES, EAL_OVERHEAD_BYTES)
    };
    let maglev: u64 = table_sizes.iter().map(|&s| u64::from(s)).sum();
    let largest = table_sizes.iter().map(|&s| u64::from(s)).max().unwrap_or(0);
    Estimate {
        ports,
        mbufs_per_port: mbufs,
        mbuf_bytes,
        mbuf_pools: ports * pool_bytes(mbufs, mbuf_bytes),
        eal_overhead,
        workers,
        flow_tables: workers * flow_table_bytes(flow_capacity, nat),
        maglev_tables: maglev * MAGLEV_SLOT_BYTES * 2 * 2 + largest * MAGLEV_BUILD_BYTES,
    }
}

/// Whether the workers allocate nat side records (some service translates).
fn uses_nat(c: &Config) -> bool {
    c.services.iter().any(|s| s.forwarding.translates())
}

/// The estimate for a config.
pub fn estimate_config(c: &Config) -> Estimate {
    let workers: u64 = c.interfaces.iter().map(|i| u64::from(i.queues)).sum();
    let sizes: Vec<u32> = c.services.iter().map(|s| s.table_size).collect();
    estimate(
        c.interfaces.len() as u64,
        u64::from(c.dpdk.mbufs),
        eal::has_flag(&c.dpdk.args, "--no-huge"),
        workers,
        c.flows.capacity as u64,
        uses_nat(c),
        &sizes,
    )
}

/// How much memory EAL will have, as far as `dpdk.args` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EalMemory {
    /// A fixed amount, and which arguments fix it (`-m 64 with --no-huge`).
    Fixed { bytes: u64, from: String },
    /// Hugepages taken as they are needed (DPDK's dynamic memory): as many as are free;
    /// `reserved` is what `-m`/`--socket-mem` take at start.
    Hugepages { reserved: Option<u64> },
}

impl EalMemory {
    /// `64 MiB (--no-huge without -m)`, or the hugepage case.
    pub fn text(&self) -> String {
        match self {
            EalMemory::Fixed { bytes, from } => format!("{} ({from})", bytes_text(*bytes)),
            EalMemory::Hugepages { reserved: None } => {
                "hugepages as needed, as many as are free".to_owned()
            }
            EalMemory::Hugepages {
                reserved: Some(bytes),
            } => format!(
                "hugepages as needed, {} of them at start (-m/--socket-mem)",
                bytes_text(*bytes)
            ),
        }
    }
}

/// What EAL gets from `args`: with `--no-huge`, `-m` (or 64 MiB); with `--legacy-mem`,
/// `-m`/`--socket-mem` are all it gets; `--socket-limit` caps it; else hugepages as needed.
pub fn eal_memory(args: &[String]) -> EalMemory {
    let m = eal::memory_mb(args);
    let socket_mem = total_mb(eal::socket_mem_mb(args));
    let socket_limit = eal::option_values(args, "--socket-limit", "--socket-limit")
        .last()
        .map(|v| total_mb(v.split(',').map(|n| n.trim().parse().unwrap_or(0))))
        .unwrap_or(0);
    if eal::has_flag(args, "--no-huge") {
        return match m {
            Some(mb) => EalMemory::Fixed {
                bytes: mib_bytes(mb),
                from: format!("-m {mb} with --no-huge"),
            },
            None => EalMemory::Fixed {
                bytes: NO_HUGE_DEFAULT_BYTES,
                from: "--no-huge without -m".to_owned(),
            },
        };
    }
    let reserved = m.unwrap_or(0).max(socket_mem);
    if eal::has_flag(args, "--legacy-mem") && reserved > 0 {
        return EalMemory::Fixed {
            bytes: mib_bytes(reserved),
            from: "-m/--socket-mem with --legacy-mem".to_owned(),
        };
    }
    if socket_limit > 0 {
        return EalMemory::Fixed {
            bytes: mib_bytes(socket_limit),
            from: "--socket-limit".to_owned(),
        };
    }
    EalMemory::Hugepages {
        reserved: (reserved > 0).then_some(mib_bytes(reserved)),
    }
}

/// `mb` MiB in bytes. The MiB counts of `dpdk.args` are the operator's to write: one past
/// u64 in bytes is as much as can be, not an overflow.
pub fn mib_bytes(mb: u64) -> u64 {
    mb.saturating_mul(MIB)
}

/// The sum of MiB counts (`--socket-mem 1024,1024`), as much as can be past u64.
pub fn total_mb(mb: impl IntoIterator<Item = u64>) -> u64 {
    mb.into_iter().fold(0, u64::saturating_add)
}

/// `-m` to suggest for `need` bytes: whole MiB, rounded up to a multiple of 64.
pub fn suggested_m(need: u64) -> u64 {
    need.div_ceil(64 * MIB) * 64
}

/// Whole MiB, rounded up (what the messages compare: "needs 1029 MiB").
pub fn mib(n: u64) -> u64 {
    n.div_ceil(MIB)
}

/// The change to `args` that gives EAL `mb` MiB, where `from` says what fixes it now.
pub fn more_memory(args: &[String], from: &str, mb: u64) -> String {
    if from.contains("--socket") {
        format!("raise --socket-mem/--socket-limit to {mb} MiB")
    } else if eal::memory_mb(args).is_some() {
        format!("raise -m to {mb} in dpdk.args")
    } else {
        format!("add -m {mb} to dpdk.args")
    }
}

/// What to change when the flow tables do not fit (doctor's fix and the start error's).
pub fn ordinary_fix(c: &Config) -> String {
    let nat = if uses_nat(c) { NAT_RECORD_BYTES } else { 0 };
    format!(
        "lower flows.capacity ({} B per slot per worker) or the queues, or free memory",
        FLOW_ENTRY_BYTES + FLOW_BUCKET_BYTES / dataplane::flow::WAYS as u64 + nat
    )
}

/// Why the flow and Maglev tables of `c` cannot fit in the memory `meminfo` (the text of
/// /proc/meminfo) calls available; None when they fit or it does not say. Checked before the
/// workers fill their tables: past MemAvailable the kernel would kill sluice mid-fill, without
/// a word, or the allocation would abort it.
pub fn ordinary_shortfall(c: &Config, meminfo: &str) -> Option<String> {
    let e = estimate_config(c);
    let available = *crate::doctor::host::parse_meminfo(meminfo).get("MemAvailable")?;
    (available < e.ordinary()).then(|| {
        format!(
            "the flow tables ({} worker(s) x {} for flows.capacity {}) and Maglev tables need about {} of ordinary memory, but only {} is available (MemAvailable): {}",
            e.workers,
            bytes_text(e.flow_tables / e.workers.max(1)),
            c.flows.capacity,
            bytes_text(e.ordinary()),
            bytes_text(available),
            ordinary_fix(c)
        )
    })
}

/// When EAL's fixed memory (from `args`) is less than the DPDK memory the config needs: the
/// warning, with what to change.
pub fn shortfall(e: &Estimate, args: &[String]) -> Option<String> {
    let EalMemory::Fixed { bytes: have, from } = eal_memory(args) else {
        return None;
    };
    let need = e.hugepages();
    if need <= have {
        return None;
    }
    let m_fix = more_memory(args, &from, suggested_m(need));
    Some(format!(
        "EAL gets {} MiB ({from}) but the mbuf pools need {} MiB, and EAL about {} MiB more: {m_fix}, or lower dpdk.mbufs to {}",
        mib(have),
        mib(e.mbuf_pools),
        mib(e.eal_overhead),
        e.max_mbufs(have)
    ))
}

/// `sluice check`'s memory block, and its warnings (also in the block).
pub fn memory_block(c: &Config) -> (String, Vec<String>) {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let warnings = write_memory_block(&mut out, c).unwrap_or_default();
    (out, warnings)
}

fn write_memory_block(out: &mut String, c: &Config) -> Result<Vec<String>, std::fmt::Error> {
    let e = estimate_config(c);
    let m = eal_memory(&c.dpdk.args);
    let page = if e.mbuf_bytes == NO_HUGE_MBUF_BYTES {
        " (--no-huge: one mbuf per 4 KiB page)"
    } else {
        ""
    };
    writeln!(out, "memory (an estimate):")?;
    for i in &c.interfaces {
        writeln!(
            out,
            "  mbuf pool {} ({}): {} x {} B{page} + {} header = {}",
            i.name,
            i.device,
            e.mbufs_per_port,
            e.mbuf_bytes,
            bytes_text(POOL_HEADER_BYTES),
            bytes_text(e.pool())
        )?;
    }
    writeln!(
        out,
        "  flow tables: {} worker(s) x {} (flows.capacity {} -> {} slots x {} B{} + buckets) = {}, on the heap",
        e.workers,
        bytes_text(flow_table_bytes(c.flows.capacity as u64, uses_nat(c))),
        c.flows.capacity,
        flow_slots(c.flows.capacity as u64),
        FLOW_ENTRY_BYTES,
        if uses_nat(c) {
            format!(" + {NAT_RECORD_BYTES} B of nat record")
        } else {
            String::new()
        },
        bytes_text(e.flow_tables)
    )?;
    let slots: u64 = c.services.iter().map(|s| u64::from(s.table_size)).sum();
    let largest = c.services.iter().map(|s| s.table_size).max().unwrap_or(0);
    writeln!(
        out,
        "  maglev tables: {} service(s), {slots} slots x {MAGLEV_SLOT_BYTES} B x 2 (table and fallback) x 2 (old and new during a reload) + {largest} x {MAGLEV_BUILD_BYTES} B while the largest builds = {}, on the heap",
        c.services.len(),
        bytes_text(e.maglev_tables)
    )?;
    writeln!(
        out,
        "  DPDK memory: {} of mbuf pools + {} for EAL = {}; EAL gets {}",
        bytes_text(e.mbuf_pools),
        bytes_text(e.eal_overhead),
        bytes_text(e.hugepages()),
        m.text()
    )?;
    writeln!(
        out,
        "  heap (ordinary memory): {}",
        bytes_text(e.ordinary())
    )?;
    let warnings: Vec<String> = shortfall(&e, &c.dpdk.args).into_iter().collect();
    for w in &warnings {
        writeln!(out, "  warning: {w}")?;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::flow::{FlowConfig, FlowTable};

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flow_tables_past_mem_available_refuse_the_start() {
        let c = control::config::load_str(
            include_str!("../../control/tests/fixtures/minimal.yaml"),
            "minimal.yaml",
        )
        .unwrap();
        let need = estimate_config(&c).ordinary();
        let meminfo = |kb: u64| format!("MemTotal: 99999999 kB\nMemAvailable: {kb} kB\n");
        assert_eq!(ordinary_shortfall(&c, &meminfo(need / 1024 + 1)), None);
        let why = ordinary_shortfall(&c, &meminfo(need / 1024 / 2)).unwrap();
        assert!(
            why.contains("flows.capacity 1048576")
                && why.contains("(MemAvailable): lower flows.capacity"),
            "{why}"
        );
        // No figure, no refusal: the start goes on (doctor says what it cannot read).
        assert_eq!(ordinary_shortfall(&c, "MemTotal: 1 kB\n"), None);
        assert_eq!(ordinary_shortfall(&c, ""), None);
        // The figure per slot is the entry, its share of a bucket and, with nat, its record.
        assert!(ordinary_fix(&c).contains("(68 B per slot per worker)"));
        let nat = include_str!("../../control/tests/fixtures/minimal.yaml").replace(
            "    protocol: tcp\n",
            "    protocol: tcp\n    forwarding: nat\n",
        );
        let nat = control::config::load_str(&nat, "nat.yaml").unwrap();
        let per_slot = 68 + NAT_RECORD_BYTES;
        assert!(
            ordinary_fix(&nat).contains(&format!("({per_slot} B per slot per worker)")),
            "{}",
            ordinary_fix(&nat)
        );
    }

    #[test]
    fn mbuf_objects_match_dpdk_22_11() {
        // 64-byte header + 128-byte rte_mbuf + 2176 bytes of data room.
        assert_eq!(MBUF_OBJECT_BYTES, 2368);
        const { assert!(POOL_HEADER_BYTES > 1 << 20 && POOL_HEADER_BYTES < 2 << 20) };
    }

    #[test]
    fn flow_slots_round_like_the_flow_table() {
        for capacity in [1, 7, 8, 9, 1000, 4096, 5000] {
            let t = FlowTable::new(&FlowConfig {
                capacity,
                ..FlowConfig::default()
            });
            assert_eq!(
                flow_slots(capacity as u64),
                t.capacity() as u64,
                "{capacity}"
            );
        }
        assert_eq!(flow_slots(1 << 20), 1 << 20);
        assert_eq!(flow_slots((1 << 20) + 1), 2 << 20);
    }

    #[test]
    fn nat_adds_one_side_record_per_slot() {
        let plain = estimate(1, 1000, false, 2, 1 << 16, false, &[]);
        let nat = estimate(1, 1000, false, 2, 1 << 16, true, &[]);
        assert_eq!(
            nat.flow_tables - plain.flow_tables,
            2 * (1 << 16) * NAT_RECORD_BYTES
        );
    }

    #[test]
    fn the_estimate_adds_up() {
        // The example config: one port, 16383 mbufs, 2 workers of 2^20 flows, one 65537 table.
        let e = estimate(1, 16383, false, 2, 1 << 20, false, &[65537]);
        assert_eq!(e.mbuf_pools, 16383 * 2368 + POOL_HEADER_BYTES);
        assert_eq!(e.hugepages(), e.mbuf_pools + 64 * MIB);
        // 2^20 slots x 64 B + 2^17 buckets x 32 B = 68 MiB per worker.
        assert_eq!(e.flow_tables, 2 * 68 * MIB);
        assert_eq!(e.maglev_tables, 65537 * 4 * 2 * 2 + 65537 * 12);
        assert_eq!(e.ordinary(), e.flow_tables + e.maglev_tables);
        // About 103 MiB of hugepages: 37 MiB of mbufs, 1 MiB of pool header, 64 MiB for EAL.
        assert_eq!(e.hugepages().div_ceil(MIB), 103);

        let two = estimate(2, 1000, false, 0, 0, false, &[]);
        assert_eq!(two.mbuf_pools, 2 * (1000 * 2368 + POOL_HEADER_BYTES));
        assert_eq!(two.flow_tables, 0);
        assert_eq!(two.maglev_tables, 0);

        // --no-huge: a page per mbuf, and a smaller allowance for EAL.
        let small = estimate(1, 16383, true, 1, 8, false, &[]);
        assert_eq!(small.mbuf_pools, 16383 * 4096 + POOL_HEADER_BYTES);
        assert_eq!(small.hugepages(), small.mbuf_pools + 4 * MIB);
    }

    #[test]
    fn max_mbufs_is_what_fits() {
        let e = estimate(2, 100_000, true, 1, 8, false, &[]);
        let have = 256 * MIB;
        let n = e.max_mbufs(have);
        let fits = estimate(2, n, true, 1, 8, false, &[]);
        assert!(fits.hugepages() <= have);
        assert!(estimate(2, n + 1, true, 1, 8, false, &[]).hugepages() > have);
        assert_eq!(e.max_mbufs(MIB), 0);
    }

    #[test]
    fn eal_memory_from_the_args() {
        let fixed = |a: &[&str]| match eal_memory(&args(a)) {
            EalMemory::Fixed { bytes, .. } => Some(bytes),
            EalMemory::Hugepages { .. } => None,
        };
        assert_eq!(fixed(&["--no-huge"]), Some(64 * MIB));
        assert_eq!(fixed(&["--no-huge", "-m", "256"]), Some(256 * MIB));
        assert_eq!(fixed(&["--no-huge", "-m512"]), Some(512 * MIB));
        assert_eq!(fixed(&["-m", "512"]), None);
        assert_eq!(
            fixed(&["--legacy-mem", "--socket-mem=512,512"]),
            Some(1024 * MIB)
        );
        assert_eq!(fixed(&["--socket-limit", "300"]), Some(300 * MIB));
        assert_eq!(
            eal_memory(&args(&["--socket-mem", "128"])),
            EalMemory::Hugepages {
                reserved: Some(128 * MIB)
            }
        );
        assert_eq!(
            eal_memory(&args(&["--no-huge"])).text(),
            "64 MiB (--no-huge without -m)"
        );
    }

    /// MiB counts past u64 in bytes (a fuzz finding: `-m 99999999999999999` overflowed the
    /// multiplication, a panic in `sluice check` built for debugging) are as much as can be.
    #[test]
    fn eal_memory_past_u64_is_as_much_as_can_be() {
        let huge = "99999999999999999";
        for a in [
            &["--no-huge", "-m", huge][..],
            &["--legacy-mem", "-m", huge],
            &["--legacy-mem", "--socket-mem", "18446744073709551615,1"],
            &["--socket-limit", &format!("{huge},{huge}")],
        ] {
            assert!(
                matches!(
                    eal_memory(&args(a)),
                    EalMemory::Fixed {
                        bytes: u64::MAX,
                        ..
                    }
                ),
                "{a:?}"
            );
        }
        assert_eq!(
            eal_memory(&args(&["-m", huge])),
            EalMemory::Hugepages {
                reserved: Some(u64::MAX)
            }
        );
        let e = estimate(1, 16383, false, 1, 8, false, &[]);
        assert_eq!(shortfall(&e, &args(&["--no-huge", "-m", huge])), None);
    }

    #[test]
    fn the_shortfall_says_what_to_change() {
        let no_huge = args(&["--no-huge"]);
        // The default 16383 mbufs do not fit in --no-huge's 64 MiB (measured: about 15,960 do).
        let e = estimate(1, 16383, true, 1, 8, false, &[]);
        let w = shortfall(&e, &no_huge).unwrap_or_default();
        assert!(
            w.starts_with("EAL gets 64 MiB (--no-huge without -m) but the mbuf pools need 66 MiB, and EAL about 4 MiB more: add -m 128 to dpdk.args"),
            "{w}"
        );
        assert!(
            w.ends_with(&format!("lower dpdk.mbufs to {}", e.max_mbufs(64 * MIB))),
            "{w}"
        );
        assert!(shortfall(&estimate(1, 4095, true, 1, 8, false, &[]), &no_huge).is_none());
        let w = shortfall(&e, &args(&["--no-huge", "-m", "32"])).unwrap_or_default();
        assert!(w.contains("raise -m to 128 in dpdk.args"), "{w}");
        // Hugepages as needed: nothing to compare against here (doctor checks the host).
        let e = estimate(1, 1 << 20, false, 1, 8, false, &[]);
        assert!(shortfall(&e, &args(&["-m", "64"])).is_none());
        let legacy = args(&["--legacy-mem", "--socket-mem", "64"]);
        assert!(shortfall(&e, &legacy).is_some_and(|w| w.contains("raise --socket-mem")));
    }

    #[test]
    fn suggested_m_rounds_up_to_64() {
        assert_eq!(suggested_m(1), 64);
        assert_eq!(suggested_m(64 * MIB), 64);
        assert_eq!(suggested_m(64 * MIB + 1), 128);
        assert_eq!(suggested_m(1029 * MIB), 1088);
    }
}
