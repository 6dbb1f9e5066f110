//! Property tests: no input panics the pipeline or escapes its bounds, a flow stays on one
//! backend for its lifetime, and the flow table never answers wrongly under any operations.

mod common;

use common::*;
use dataplane::flow::FlowKey;
use dataplane::fuzzing::fuzz_process;
use dataplane::{FlowConfig, FlowTable, Pipeline, PipelineConfig, Verdict};
use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/process");
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("seed-"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_process(&data);
    }

    #[test]
    fn mutated_golden_packets_never_panic(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let seeds = seeds();
        prop_assume!(!seeds.is_empty());
        let mut p = seeds[pick.index(seeds.len())].clone();
        for (at, b) in flips {
            let i = at.index(p.len());
            p[i] ^= b;
        }
        if do_cut {
            p.truncate(cut.index(p.len() + 1));
        }
        fuzz_process(&p);
    }

    #[test]
    fn a_flow_stays_on_one_backend(
        packets in proptest::collection::vec((0u8..8, 0u16..4, any::<bool>()), 1..200),
    ) {
        let snap = snapshot();
        let mut p = Pipeline::new(&PipelineConfig {
            flows: FlowConfig { capacity: 4096, ..FlowConfig::default() },
            ptb_per_second: 1000,
        });
        let mut backend_of = std::collections::HashMap::new();
        for (i, (client, sport, tcp)) in packets.into_iter().enumerate() {
            let src = [203, 0, 113, 100 + client];
            let pkt = if tcp {
                tcp4(src, VIP4_MULTI, 1000 + sport, 80, Tcp::Ack, b"")
            } else {
                udp4(src, VIP4_MULTI, 1000 + sport, 80, b"")
            };
            let mut buf = buffer(&pkt);
            let mut f = frame(&mut buf, pkt.len());
            let v = p.process(&mut f, PORT, &snap, i as u64 * 1000);
            // Only UDP has a port-0 service on this VIP.
            if tcp {
                prop_assert!(matches!(v, Verdict::Drop(_)));
                continue;
            }
            prop_assert_eq!(v, Verdict::Forward { port: PORT });
            let dst: [u8; 4] = f.data()[30..34].try_into().unwrap();
            let prev = *backend_of.entry((client, sport)).or_insert(dst);
            prop_assert_eq!(prev, dst);
        }
    }
}

/// One flow-table operation: which of 48 keys (several share buckets in a 64-slot table),
/// how far time moves first (up to ~3 h: past the coarse expiry's 73-minute wrap), the TCP
/// flags and a backend handle.
#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u64, u8, u32),
    Find(u8, u64),
    Touch(u8, u64, u8),
    Sweep(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let dt = prop_oneof![8 => 0u64..50_000_000_000, 1 => 0u64..11_000_000_000_000];
    let flags = prop_oneof![Just(0x02u8), Just(0x10), Just(0x11), Just(0x04)];
    prop_oneof![
        (0u8..48, dt.clone(), flags.clone(), 0u32..6)
            .prop_map(|(k, t, f, b)| Op::Insert(k, t, f, b)),
        (0u8..48, dt.clone()).prop_map(|(k, t)| Op::Find(k, t)),
        (0u8..48, dt.clone(), flags).prop_map(|(k, t, f)| Op::Touch(k, t, f)),
        dt.prop_map(Op::Sweep),
    ]
}

fn flow_key(k: u8) -> FlowKey {
    let mut key = FlowKey {
        sport: 1000 + u16::from(k),
        dport: 80,
        proto: 6,
        ..FlowKey::default()
    };
    key.src[12..].copy_from_slice(&[203, 0, 113, k % 7]);
    key
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Against a model of what was stored: the table only ever returns a flow's latest
    /// backend before its expiry, finds what it just stored, and its counts add up. It may
    /// forget a live flow only by evicting it for room, which it counts: until it has, it
    /// finds every live flow (the sweep never removes one, whatever the idle gaps).
    #[test]
    fn the_flow_table_never_answers_wrongly(ops in proptest::collection::vec(op(), 1..400)) {
        let cfg = FlowConfig { capacity: 64, ..FlowConfig::default() };
        let secs = |d: std::time::Duration| d.as_nanos() as u64;
        // FIN or RST: closing (and closing stays); a bare SYN: half-open; else established.
        let timeout = |flags: u8| match flags {
            f if f & 0x05 != 0 => secs(cfg.tcp_closing_timeout),
            0x02 => secs(cfg.tcp_syn_timeout),
            _ => secs(cfg.tcp_established_timeout),
        };
        let mut t = FlowTable::new(&cfg);
        // key -> (backend, expires, closing)
        let mut model = std::collections::HashMap::<u8, (u32, u64, bool)>::new();
        let mut now = 0u64;
        let mut inserts = 0u64;
        for op in ops {
            match op {
                Op::Insert(k, dt, flags, b) => {
                    now += dt;
                    let key = flow_key(k);
                    t.insert(&key, key.hash(), b, flags, now);
                    inserts += 1;
                    let closing = flags & 0x05 != 0;
                    model.insert(k, (b, now + timeout(flags), closing));
                    let slot = t.find(&key, key.hash(), now);
                    prop_assert!(slot.is_some(), "a flow just stored is not found");
                    prop_assert_eq!(t.backend(slot.unwrap()), b);
                }
                Op::Find(k, dt) | Op::Touch(k, dt, _) if !model.contains_key(&k) => {
                    now += dt;
                    let key = flow_key(k);
                    prop_assert!(t.find(&key, key.hash(), now).is_none(), "a flow never stored");
                }
                Op::Find(k, dt) => {
                    now += dt;
                    let key = flow_key(k);
                    let (b, expires, _) = model[&k];
                    let found = t.find(&key, key.hash(), now);
                    if t.stats.evicted_capacity == 0 {
                        prop_assert_eq!(found.is_some(), expires > now, "flow {} at {}", k, now);
                    }
                    if let Some(slot) = found {
                        prop_assert!(expires > now, "an expired flow was returned");
                        prop_assert_eq!(t.backend(slot), b);
                    }
                }
                Op::Touch(k, dt, flags) => {
                    now += dt;
                    let key = flow_key(k);
                    let (b, expires, closing) = model[&k];
                    let found = t.find(&key, key.hash(), now);
                    if t.stats.evicted_capacity == 0 {
                        prop_assert_eq!(found.is_some(), expires > now, "flow {} at {}", k, now);
                    }
                    if let Some(slot) = found {
                        prop_assert!(expires > now, "an expired flow was returned");
                        t.touch(slot, now, flags);
                        let closing = closing || flags & 0x05 != 0;
                        let until = if closing {
                            secs(cfg.tcp_closing_timeout)
                        } else {
                            timeout(flags)
                        };
                        model.insert(k, (b, now + until, closing));
                    } else {
                        model.remove(&k);
                    }
                }
                Op::Sweep(dt) => {
                    now += dt;
                    t.sweep(now);
                }
            }
            let counted: u64 = t.flows_per_backend().iter().sum();
            prop_assert_eq!(counted, t.len() as u64);
            prop_assert!(t.len() <= t.capacity());
            let s = t.stats;
            prop_assert_eq!(s.created, inserts);
            prop_assert!(s.evicted_timeout + s.evicted_capacity + t.len() as u64 <= inserts);
        }
    }
}

#[test]
fn seed_corpus_replays_cleanly() {
    let seeds = seeds();
    assert!(
        seeds.len() >= 50,
        "seed corpus missing: {} files",
        seeds.len()
    );
    for s in seeds {
        fuzz_process(&s);
    }
}
