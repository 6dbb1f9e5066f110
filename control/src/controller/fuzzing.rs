//! The controller's fuzz body: arbitrary event sequences, checked for panics and for actions that contradict each other.
//!
//! The bytes are read as a program: each event takes an opcode byte and its operands (a reload
//! of arbitrary YAML or of a generated config, the checker taking or refusing targets, a health
//! report, an ARP reply / neighbour advertisement / arbitrary frame, its ICMPv6 checksum made
//! good or not, ticks, drains). Shared by the cargo-fuzz target `controller_events` and the
//! seed replay test.
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dataplane::wire::arp::{self, ArpRepr};
use dataplane::wire::ethernet;
use dataplane::wire::icmp::{self, v6, IcmpPacket, NdRepr};
use dataplane::wire::ipv6::{self, Ipv6Packet};
use dataplane::wire::proto;

use super::{Action, Controller, Event};
use crate::config::{self, Config};
use crate::forwarding::{self, PortInfo};
use crate::health::{Target, TargetStatus};
use crate::neighbour;

const PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
/// Events per input: enough for several reloads to interleave with everything else.
const MAX_EVENTS: usize = 512;

/// Reads operands off the input; past its end every read is 0.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// A config from 5 bytes: which of the pool's backends each service has, their weights, health
/// checks, forwarding, `when_all_down`, and now and then a restart-only change (refused). Most
/// are valid, so reloads get past validation; some are not (an empty backend list).
fn generated(b: &mut Bytes<'_>) -> String {
    let (set4, set6, weights, mode, misc) = (b.u8(), b.u8(), b.u8(), b.u8(), b.u8());
    let pool4 = ["192.0.2.11", "192.0.2.12", "192.0.2.13", "203.0.113.50"];
    let pool6 = ["2001:db8::11", "2001:db8::12", "2001:db8:1::50"];
    let forwarding = ["ipip", "gue", "l2-dsr", "ipip"];
    let mut y = String::from(
        "interfaces:\n  - name: uplink\n    device: net_null0\n    address: 192.0.2.10/24\n    \
         address6: 2001:db8::10/64\n    gateway: 192.0.2.1\n    gateway6: 2001:db8::1\n    \
         kernel:\n      name: sluice0\n",
    );
    if misc & 0x40 != 0 {
        y.push_str("flows:\n  capacity: 1024\n");
    }
    y.push_str("services:\n");
    for (name, vip, pool, set) in [
        ("web4", "198.51.100.10", &pool4[..], set4),
        ("web6", "2001:db8:100::10", &pool6[..], set6),
    ] {
        y.push_str(&format!(
            "  - name: {name}\n    vip: {vip}\n    port: 80\n    protocol: tcp\n    \
             table_size: 101\n    forwarding: {}\n    when_all_down: {}\n    backends:\n",
            forwarding[usize::from(mode & 3)],
            if misc & 1 != 0 {
                "forward-anyway"
            } else {
                "drop"
            },
        ));
        for (i, addr) in pool.iter().enumerate() {
            if set & (1 << i) != 0 {
                let weight = [100, 0, 1, 1000][usize::from(weights >> (2 * (i % 4)) & 3)];
                y.push_str(&format!(
                    "      - address: {addr}\n        weight: {weight}\n"
                ));
            }
        }
        if set & 0x80 != 0 {
            y.push_str("    health_check:\n      kind: tcp\n      port: 80\n");
        }
    }
    if misc & 0x80 == 0 {
        y.push_str("announce:\n  table: 100\n");
    }
    y
}

thread_local! {
    /// Generated configs by their 5 bytes: loading YAML is most of an execution's time, and the
    /// loader has its own target (`config`).
    static LOADED: RefCell<HashMap<[u8; 5], Result<Config, String>>> = RefCell::new(HashMap::new());
}

/// Entries `LOADED` holds before it starts afresh, so that a run of 10^7 executions stays small.
const LOADED_MAX: usize = 4096;

/// The generated config of the next 5 bytes, loaded once per distinct 5 bytes.
fn load_generated(b: &mut Bytes<'_>) -> Result<Config, String> {
    let mut key = [0u8; 5];
    key.iter_mut().for_each(|k| *k = b.u8());
    LOADED.with(|m| {
        let mut m = m.borrow_mut();
        // Mutations make new keys all the time; unbounded, the cache would grow for the whole run.
        if m.len() >= LOADED_MAX {
            m.clear();
        }
        m.entry(key)
            .or_insert_with(|| {
                config::load_str(&generated(&mut Bytes(&key)), "fuzz.yaml")
                    .map_err(|e| e.to_string())
            })
            .clone()
    })
}

/// Kind bit of a frame of arbitrary bytes whose ICMPv6 checksum is made good before control
/// sees it: a neighbour advertisement's options are past the checksum, where mutated bytes
/// would otherwise never get.
pub const REPAIR_ICMPV6: u8 = 0x80;

/// A frame for `Event::Frame`: an ARP reply or neighbour advertisement from one of the next
/// hops the controller wants (so it learns), or arbitrary bytes (with a good ICMPv6 checksum
/// for a kind with [`REPAIR_ICMPV6`]).
fn frame(b: &mut Bytes<'_>, c: &Controller) -> Vec<u8> {
    let kind = b.u8();
    let wanted = c.neighbours();
    let mac = [0x02, 0, 0, 0, 0x5c, b.u8()];
    if kind & 1 == 0 || wanted.is_empty() {
        let n = usize::from(b.u8());
        let mut raw = b.take(n).to_vec();
        if kind & 1 == 0 && kind & REPAIR_ICMPV6 != 0 {
            repair_icmpv6(&mut raw);
        }
        return raw;
    }
    match wanted[usize::from(kind >> 1) % wanted.len()].0 {
        IpAddr::V4(ip) => {
            let mut f = [0u8; arp::FRAME_LEN];
            ArpRepr::reply(mac, ip.octets(), PORT_MAC, [192, 0, 2, 10]).emit_frame(&mut f);
            let mut v = f.to_vec();
            v.resize(60, 0);
            v
        }
        IpAddr::V6(ip) => {
            let ours = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
            let flags = v6::ND_FLAG_SOLICITED | v6::ND_FLAG_OVERRIDE;
            let mut f = [0u8; icmp::ND_FRAME_LEN];
            NdRepr::advert(mac, ip.octets(), ours.octets(), flags).emit_frame(&mut f, PORT_MAC);
            f.to_vec()
        }
    }
}

/// Writes the ICMPv6 checksum of `frame` as it should be, when the frame is an ICMPv6
/// packet; leaves anything else as it is. Found without `parse::parse`, which refuses a
/// neighbour advertisement whose checksum is wrong: the frames this repairs.
pub fn repair_icmpv6(frame: &mut [u8]) {
    let Ok(l2) = ethernet::parse_l2(frame) else {
        return;
    };
    if l2.ethertype != ethernet::ETHERTYPE_IPV6 {
        return;
    }
    let Some(rest) = frame.get_mut(l2.len..) else {
        return;
    };
    let Ok(ip) = Ipv6Packet::new_checked(&*rest) else {
        return;
    };
    let (src, dst) = (ip.src(), ip.dst());
    let len = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let Some(packet) = rest.get_mut(..len) else {
        return;
    };
    let Ok(up) = ipv6::walk_extensions(packet) else {
        return;
    };
    if up.protocol != proto::ICMPV6 || up.fragment.is_some() {
        return;
    }
    if let Some(Ok(mut m)) = packet.get_mut(up.offset..).map(IcmpPacket::new_checked) {
        m.fill_checksum_v6(&src, &dst);
    }
}

/// What a frame may do to the neighbour table: nothing, unless it tells a neighbour's MAC
/// (`learned_from`), and then only that neighbour's entry may change, to that MAC; the next
/// hops wanted change only when that answer ends a reload waiting for it.
fn check_neighbours(
    frame: &[u8],
    actions: &[Action],
    before: &[(IpAddr, Option<[u8; 6]>)],
    after: &[(IpAddr, Option<[u8; 6]>)],
) {
    let learned = neighbour::learned_from(frame);
    if let Some((ip, mac)) = learned {
        assert!(!ip.is_unspecified(), "learned {ip} from {frame:02x?}");
        // An advertisement's target is in the frame, and so is the MAC it names (an option, or
        // the Ethernet source).
        let ip_bytes: Vec<u8> = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        assert!(frame.windows(ip_bytes.len()).any(|w| w == ip_bytes));
        assert!(frame.windows(6).any(|w| w == mac));
    }
    let wanted = |t: &[(IpAddr, Option<[u8; 6]>)]| t.iter().map(|(ip, _)| *ip).collect::<Vec<_>>();
    if wanted(before) != wanted(after) {
        assert!(
            learned.is_some()
                && actions
                    .iter()
                    .any(|a| matches!(a, Action::ReloadDone(Ok(())))),
            "a frame changed the wanted next hops: {actions:?}"
        );
    }
    for (ip, now) in after {
        let Some((_, was)) = before.iter().find(|(b, _)| b == ip) else {
            continue;
        };
        if was != now {
            assert_eq!(
                learned,
                Some((*ip, now.unwrap_or_default())),
                "{ip} went from {was:02x?} to {now:02x?} on {frame:02x?}"
            );
        }
    }
}

fn statuses(targets: &[Target], up_bits: u8) -> Vec<TargetStatus> {
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| TargetStatus::unprobed(t.clone(), up_bits & (1 << (i % 8)) != 0))
        .collect()
}

/// What a program reached, so the seed replay can show the seeds go past validation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub events: usize,
    pub reloads_applied: usize,
    pub reloads_refused: usize,
    pub publishes: usize,
    pub announces: usize,
    pub sends: usize,
}

/// Runs the program in `data`; panics (a fuzz finding) when an action contradicts another, or
/// the controller's state, or the reload protocol.
pub fn fuzz_controller_events(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let mut b = Bytes(data);
    let first = match load_generated(&mut Bytes(&[0x0f, 0x87, 0, 0, 0])) {
        Ok(c) => c,
        Err(e) => panic!("the base config does not load: {e}"),
    };
    let ports = vec![PortInfo {
        port: 0,
        mac: PORT_MAC,
        ipv4_checksum_offload: false,
    }];
    let Ok((mut c, _)) = Controller::new(first, ports) else {
        panic!("the base config does not build");
    };
    let mut now = Instant::now();
    // The checker: the targets it runs, and those offered by the last SetHealthTargets.
    let mut checker: Vec<Target> = c.health_targets();
    let mut offered: Option<Vec<Target>> = None;
    // The config of the reload in progress, as submitted.
    let mut submitted: Option<Config> = None;
    for _ in 0..MAX_EVENTS {
        if b.0.is_empty() {
            break;
        }
        reached.events += 1;
        let before = c.config().clone();
        let was_pending = c.reload_pending();
        let op = b.u8() % 8;
        let mut reloaded: Option<Result<Config, String>> = None;
        let event = match op {
            0 => {
                let n = usize::from(b.u8()) * 4;
                let text = String::from_utf8_lossy(b.take(n)).into_owned();
                let r = config::load_str(&text, "fuzz.yaml").map_err(|e| e.to_string());
                reloaded = Some(r.clone());
                Event::Reload(r)
            }
            1 => {
                let r = load_generated(&mut b);
                reloaded = Some(r.clone());
                Event::Reload(r)
            }
            2 => {
                let ok = b.u8() & 1 == 0;
                if ok {
                    if let Some(t) = offered.take() {
                        checker = t;
                    }
                }
                Event::HealthTargetsSet(if ok { Ok(()) } else { Err("refused".into()) })
            }
            3 => Event::Health(statuses(&checker, b.u8())),
            4 => {
                let f = frame(&mut b, &c);
                let neighbours = c.neighbours();
                let actions = c.handle(Event::Frame(&f), now);
                check_neighbours(&f, &actions, &neighbours, &c.neighbours());
                check(
                    &c,
                    &actions,
                    &before,
                    was_pending,
                    None,
                    &mut submitted,
                    &mut offered,
                );
                tally(&mut reached, &actions);
                continue;
            }
            5 => {
                now += Duration::from_millis(u64::from(b.u8()) * 20);
                Event::Tick
            }
            6 => Event::Drain(b.u8() & 1 != 0),
            _ => {
                now += Duration::from_secs(u64::from(b.u8()));
                Event::Tick
            }
        };
        let actions = c.handle(event, now);
        check(
            &c,
            &actions,
            &before,
            was_pending,
            reloaded.as_ref(),
            &mut submitted,
            &mut offered,
        );
        tally(&mut reached, &actions);
    }
    reached
}

fn tally(r: &mut Reached, actions: &[Action]) {
    for a in actions {
        match a {
            Action::ReloadDone(Ok(())) => r.reloads_applied += 1,
            Action::ReloadDone(Err(_)) => r.reloads_refused += 1,
            Action::Publish(_) => r.publishes += 1,
            Action::Announce(_) => r.announces += 1,
            Action::Send { .. } => r.sends += 1,
            _ => {}
        }
    }
}

/// The invariants of one `handle` call's actions.
fn check(
    c: &Controller,
    actions: &[Action],
    before: &Config,
    was_pending: bool,
    reload: Option<&Result<Config, String>>,
    submitted: &mut Option<Config>,
    offered: &mut Option<Vec<Target>>,
) {
    let outcomes: Vec<&Result<(), String>> = actions
        .iter()
        .filter_map(|a| match a {
            Action::ReloadDone(r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(outcomes.len() <= 1, "two reload outcomes: {actions:?}");
    let publishes = actions
        .iter()
        .filter(|a| matches!(a, Action::Publish(_)))
        .count();
    match outcomes.first() {
        Some(Err(why)) => {
            assert_eq!(publishes, 0, "published with a refused reload ({why})");
            assert_eq!(
                c.config(),
                before,
                "a refused reload changed the config ({why})"
            );
            assert!(
                !actions
                    .iter()
                    .any(|a| matches!(a, Action::SetHealthTargets(_))),
                "refused ({why}) yet new health targets"
            );
            if !was_pending {
                assert!(reload.is_some(), "a refusal with no reload asked for");
            } else if reload.is_none() {
                // The checker refused the targets: the reload is over, nothing applied.
                assert!(!c.reload_pending(), "the refused reload is still pending");
                *submitted = None;
            }
        }
        Some(Ok(())) => {
            assert!(was_pending, "a reload ended that never started");
            assert!(!c.reload_pending(), "the reload ended but is still pending");
            let Some(Action::Publish(built)) = actions
                .iter()
                .rev()
                .skip_while(|a| !matches!(a, Action::ReloadDone(_)))
                .find(|a| matches!(a, Action::Publish(_)))
            else {
                panic!("a reload applied without publishing: {actions:?}");
            };
            let applied = submitted.take();
            assert_eq!(applied.as_ref(), Some(c.config()), "applied another config");
            assert_eq!(built.tables.len(), c.config().services.len());
        }
        None => {}
    }
    if let Some(r) = reload {
        match (was_pending, r) {
            (true, _) => assert!(
                matches!(outcomes.first(), Some(Err(_))) && actions.len() == 1,
                "a reload during a reload: {actions:?}"
            ),
            (false, Err(_)) => assert!(matches!(outcomes.first(), Some(Err(_)))),
            (false, Ok(new)) => {
                if outcomes.is_empty() {
                    let Some(Action::SetHealthTargets(t)) = actions.first() else {
                        panic!(
                            "an accepted reload did not hand the checker its targets: {actions:?}"
                        );
                    };
                    assert_eq!(*t, forwarding::health_targets(new));
                    assert!(c.reload_pending());
                    *offered = Some(t.clone());
                    *submitted = Some(new.clone());
                }
            }
        }
    } else {
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::SetHealthTargets(_))),
            "health targets changed without a reload: {actions:?}"
        );
    }
    let published: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(b) => Some(b),
            _ => None,
        })
        .collect();
    if let Some(last) = published.last() {
        assert_eq!(last.tables.len(), c.config().services.len());
        let fp = |t: &[forwarding::ServiceTable]| -> Vec<_> {
            t.iter()
                .map(|s| (s.service.clone(), s.fingerprint))
                .collect()
        };
        assert_eq!(
            fp(&last.tables),
            fp(c.tables()),
            "tables() is not what went out"
        );
    }
    let vips: HashSet<IpAddr> = c.config().services.iter().map(|s| s.vip).collect();
    for a in actions {
        match a {
            Action::Announce(v) => {
                assert!(v.windows(2).all(|w| w[0] < w[1]), "unsorted: {v:?}");
                assert_eq!(v, c.announced());
                assert!(!c.draining() || v.is_empty(), "announced while draining");
                assert!(v.iter().all(|ip| vips.contains(ip)), "not a VIP: {v:?}");
            }
            Action::Send { iface, frame } => {
                assert!(*iface < c.config().interfaces.len() && !frame.is_empty());
            }
            _ => {}
        }
    }
    let checked: HashSet<(String, IpAddr)> = c
        .health_targets()
        .into_iter()
        .map(|t| (t.service, t.backend))
        .collect();
    // Down: checked and reported down (or not reported since), or held back for a next hop a
    // reload added that has not answered.
    let unresolved: HashSet<IpAddr> = c
        .neighbours()
        .into_iter()
        .filter(|(_, mac)| mac.is_none())
        .map(|(ip, _)| ip)
        .collect();
    for (service, backend) in c.down() {
        let held_back = forwarding::egress_of(c.config(), *backend)
            .is_some_and(|(_, next_hop)| unresolved.contains(&next_hop));
        assert!(
            checked.contains(&(service.clone(), *backend)) || held_back,
            "{backend} of {service} down but neither checked nor held back"
        );
    }
}
