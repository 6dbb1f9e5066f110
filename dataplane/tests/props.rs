//! Property tests: no input panics the pipeline or escapes its bounds, and a flow stays on
//! one backend for its lifetime.

mod common;

use common::*;
use dataplane::fuzzing::fuzz_process;
use dataplane::{FlowConfig, Pipeline, PipelineConfig, Verdict};
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
