//! The control core driven by events with an injected clock: reloads and their outcomes,
//! health, next hops, `when_all_down` and fingerprints, with no threads, ports or DPDK.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use control::config::{self, Config, Forwarding};
use control::controller::{Action, Controller, Event, RESOLVE_WAIT};
use control::forwarding::{Built, PortInfo};
use control::health::{Target, TargetStatus};
use control::neighbour::REACHABLE;
use dataplane::wire::arp::{self, ArpRepr};
use dataplane::wire::icmp::{self, v6, NdRepr};
use dataplane::{Frame, Pipeline, PipelineConfig, Snapshot, Verdict};

const PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const B1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Two backends on the link, one behind the gateway; a TCP health check.
const BASE: &str = "
interfaces:
  - name: uplink
    device: net_null0
    address: 192.0.2.10/24
    gateway: 192.0.2.1
services:
  - name: web
    vip: 198.51.100.10
    port: 80
    protocol: tcp
    backends:
      - address: 192.0.2.11
      - address: 192.0.2.12
      - address: 203.0.113.50
    health_check:
      kind: tcp
      port: 80
";

fn load(text: &str) -> Config {
    config::load_str(text, "sluice.yaml").unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ports() -> Vec<PortInfo> {
    vec![PortInfo {
        port: 0,
        mac: PORT_MAC,
        ipv4_checksum_offload: false,
    }]
}

fn start(text: &str) -> (Controller, Built) {
    Controller::new(load(text), ports()).unwrap()
}

/// Starts on `text` with `key: mac` added after its line `gateway` (a gateway given its MAC).
fn start_with_static_mac(
    text: &str,
    gateway: &str,
    key: &str,
    mac: [u8; 6],
) -> (Controller, Built) {
    let mac = config::format_mac(mac);
    start(&text.replace(gateway, &format!("{gateway}\n    {key}: \"{mac}\"")))
}

/// The checker's report: every target of `c`'s config, up unless listed in `down`.
fn report(c: &Controller, down: &[&str]) -> Vec<TargetStatus> {
    c.health_targets()
        .into_iter()
        .map(|target: Target| {
            let up = !down.contains(&target.backend.to_string().as_str());
            TargetStatus::unprobed(target, up)
        })
        .collect()
}

/// An ARP reply from `from` at `mac`, to the appliance, padded to the Ethernet minimum.
fn arp_reply(from: [u8; 4], mac: [u8; 6]) -> Vec<u8> {
    let mut f = [0u8; arp::FRAME_LEN];
    ArpRepr::reply(mac, from, PORT_MAC, [192, 0, 2, 10]).emit_frame(&mut f);
    let mut v = f.to_vec();
    v.resize(60, 0);
    v
}

/// The published snapshots and the reload outcome among `actions`; fails on anything else
/// unexpected (a send, a health-target change).
fn published(actions: &[Action]) -> Vec<&Built> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish(b) => Some(&**b),
            _ => None,
        })
        .collect()
}

fn reload_outcome(actions: &[Action]) -> Option<&Result<(), String>> {
    actions.iter().find_map(|a| match a {
        Action::ReloadDone(r) => Some(r),
        _ => None,
    })
}

/// The backend names of the service's Maglev table (None: no usable backend).
fn table_of(b: &Built) -> Option<Vec<String>> {
    b.tables[0]
        .table
        .as_ref()
        .map(|t| t.backends().iter().map(|b| b.name.clone()).collect())
}

fn backend_mac(c: &Controller, snap: &Snapshot, addr: &str) -> Option<[u8; 6]> {
    let id = c.ids().backend_id("web", ip(addr)).unwrap();
    snap.backend_state(id).unwrap().next_hop_mac
}

/// Every next hop of BASE answers; the last snapshot published.
fn resolve_all(c: &mut Controller, now: Instant) -> Built {
    let mut last = None;
    for (from, mac) in [
        ([192, 0, 2, 1], GW_MAC),
        ([192, 0, 2, 11], B1_MAC),
        ([192, 0, 2, 12], [0x02, 0, 0, 0, 0, 0x12]),
    ] {
        let mut a = c.handle(Event::Frame(&arp_reply(from, mac)), now);
        if let Some(i) = a.iter().position(|a| matches!(a, Action::Publish(_))) {
            if let Action::Publish(b) = a.swap_remove(i) {
                last = Some(*b);
            }
        }
    }
    last.expect("each answer publishes")
}

/// A full reload: the file, then the checker taking its targets (`health` answers).
fn reload(c: &mut Controller, text: &str, health: Result<(), String>, now: Instant) -> Vec<Action> {
    let first = c.handle(Event::Reload(Ok(load(text))), now);
    let Some(Action::SetHealthTargets(_)) = first.first() else {
        return first;
    };
    assert_eq!(
        first.len(),
        1,
        "only the targets before the checker answers"
    );
    c.handle(Event::HealthTargetsSet(health), now)
}

#[test]
fn start_asks_for_each_next_hop_with_every_backend_in_the_table() {
    let t0 = Instant::now();
    let (mut c, built) = start(BASE);
    assert_eq!(
        table_of(&built).unwrap().len(),
        3,
        "no next hop known yet: all in the table, drops say unresolved_next_hop"
    );
    assert_eq!(backend_mac(&c, &built.snapshot, "192.0.2.11"), None);
    let id = c.ids().backend_id("web", ip("192.0.2.11")).unwrap();
    assert!(
        built.snapshot.backend_state(id).unwrap().up,
        "up, only unresolved"
    );
    let sent: Vec<(usize, Vec<u8>)> = c
        .handle(Event::Tick, t0)
        .into_iter()
        .map(|a| match a {
            Action::Send { iface, frame } => (iface, frame),
            other => panic!("a first tick only sends requests, got {other:?}"),
        })
        .collect();
    // Two on-link backends and the gateway of the third: one ARP request each.
    let targets: Vec<[u8; 4]> = sent
        .iter()
        .map(|(i, f)| {
            assert_eq!(*i, 0);
            assert_eq!(&f[12..14], &[0x08, 0x06], "ARP");
            f[38..42].try_into().unwrap()
        })
        .collect();
    assert_eq!(targets, [[192, 0, 2, 1], [192, 0, 2, 11], [192, 0, 2, 12]]);
    assert!(
        c.handle(Event::Tick, t0 + Duration::from_millis(150))
            .is_empty(),
        "asked within the retry interval: nothing new"
    );
    assert_eq!(
        c.handle(Event::Tick, t0 + Duration::from_millis(1100))
            .len(),
        3,
        "unanswered: asked again after a second"
    );
    let all = resolve_all(&mut c, t0);
    assert_eq!(
        table_of(&all).unwrap().len(),
        3,
        "all three, as they answered"
    );
    assert!(all.tables[0].fingerprint.is_some());
}

#[test]
fn a_learned_next_hop_is_published_and_forgotten_when_unconfirmed() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    c.handle(Event::Tick, t0);
    let a = c.handle(Event::Frame(&arp_reply([192, 0, 2, 11], B1_MAC)), t0);
    let p = published(&a);
    assert_eq!(p.len(), 1, "{a:?}");
    assert_eq!(backend_mac(&c, &p[0].snapshot, "192.0.2.11"), Some(B1_MAC));
    assert_eq!(backend_mac(&c, &p[0].snapshot, "192.0.2.12"), None);
    assert_eq!(
        table_of(p[0]).unwrap().len(),
        3,
        "the table does not change as neighbours answer (no flow moves)"
    );
    assert!(
        c.handle(Event::Frame(&arp_reply([192, 0, 2, 11], B1_MAC)), t0)
            .is_empty(),
        "the same answer again changes nothing"
    );
    assert!(
        c.handle(Event::Frame(&arp_reply([192, 0, 2, 99], B1_MAC)), t0)
            .is_empty(),
        "an answer nobody asked for is ignored"
    );
    // The gateway's MAC is the next hop of the off-link backend.
    let a = c.handle(Event::Frame(&arp_reply([192, 0, 2, 1], GW_MAC)), t0);
    assert_eq!(
        backend_mac(&c, &published(&a)[0].snapshot, "203.0.113.50"),
        Some(GW_MAC)
    );
    // No answer to the refreshes: at REACHABLE the MAC is forgotten and a snapshot says so.
    let a = c.handle(Event::Tick, t0 + REACHABLE + Duration::from_millis(1));
    let p = published(&a);
    assert_eq!(p.len(), 1, "{a:?}");
    assert_eq!(backend_mac(&c, &p[0].snapshot, "192.0.2.11"), None);
    assert_eq!(
        table_of(p[0]).unwrap().len(),
        3,
        "lapsed next hops stay in the table"
    );
    assert_eq!(
        c.neighbours(),
        vec![
            (ip("192.0.2.1"), None),
            (ip("192.0.2.11"), None),
            (ip("192.0.2.12"), None)
        ]
    );
}

/// RFC 1812 3.3.2: a router must not believe an answer naming a broadcast or multicast
/// link-layer address (nor the all-zero one): backend traffic would flood the link or vanish.
#[test]
fn an_answer_naming_a_broadcast_multicast_or_zero_mac_is_not_learned() {
    let t0 = Instant::now();
    let (mut c, _) = start(DUAL_STACK);
    c.handle(Event::Tick, t0);
    for mac in [
        [0xff; 6],
        [0x01, 0x00, 0x5e, 0, 0, 1],
        [0x33, 0x33, 0, 0, 0, 1],
        [0; 6],
    ] {
        let a = c.handle(Event::Frame(&arp_reply([192, 0, 2, 1], mac)), t0);
        assert!(published(&a).is_empty(), "ARP {mac:02x?}: {a:?}");
        let a = c.handle(Event::Frame(&neighbour_advert("2001:db8::1", mac)), t0);
        assert!(published(&a).is_empty(), "NA {mac:02x?}: {a:?}");
    }
    assert_eq!(
        c.neighbours(),
        vec![(ip("192.0.2.1"), None), (ip("2001:db8::1"), None)]
    );
    // A unicast answer still teaches.
    let a = c.handle(Event::Frame(&arp_reply([192, 0, 2, 1], GW_MAC)), t0);
    assert_eq!(published(&a).len(), 1, "{a:?}");
}

#[test]
fn a_static_gateway_mac_is_never_resolved() {
    let t0 = Instant::now();
    let (mut c, built) = start_with_static_mac(BASE, "gateway: 192.0.2.1", "gateway_mac", GW_MAC);
    assert_eq!(
        backend_mac(&c, &built.snapshot, "203.0.113.50"),
        Some(GW_MAC)
    );
    assert_eq!(table_of(&built).unwrap().len(), 3);
    assert_eq!(
        c.handle(Event::Tick, t0).len(),
        2,
        "only the two on-link backends"
    );
}

/// One interface with a gateway per family; one off-link backend of each family.
const DUAL_STACK: &str = "
interfaces:
  - name: uplink
    device: net_null0
    address: 192.0.2.10/24
    address6: 2001:db8::10/64
    gateway: 192.0.2.1
    gateway6: 2001:db8::1
services:
  - name: web
    vip: 198.51.100.10
    port: 80
    protocol: tcp
    backends:
      - address: 203.0.113.50
  - name: web6
    vip: 2001:db8:ffff::10
    port: 80
    protocol: tcp
    backends:
      - address: 2001:db8:5::50
";

const GW6_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x06];

/// A solicited neighbour advertisement from `target` at `mac`, to the appliance.
fn neighbour_advert(target: &str, mac: [u8; 6]) -> Vec<u8> {
    let target: std::net::Ipv6Addr = target.parse().unwrap();
    let ours: std::net::Ipv6Addr = "2001:db8::10".parse().unwrap();
    let flags = v6::ND_FLAG_ROUTER | v6::ND_FLAG_SOLICITED | v6::ND_FLAG_OVERRIDE;
    let mut f = [0u8; icmp::ND_FRAME_LEN];
    NdRepr::advert(mac, target.octets(), ours.octets(), flags).emit_frame(&mut f, PORT_MAC);
    f.to_vec()
}

/// The next-hop MAC of `service`'s backend `addr` in `snap`.
fn service_backend_mac(
    c: &Controller,
    snap: &Snapshot,
    service: &str,
    addr: &str,
) -> Option<[u8; 6]> {
    let id = c.ids().backend_id(service, ip(addr)).unwrap();
    snap.backend_state(id).unwrap().next_hop_mac
}

/// In the one snapshot `actions` publish: the next-hop MACs of DUAL_STACK's IPv4 and IPv6 backend.
fn dual_stack_macs(c: &Controller, actions: &[Action]) -> (Option<[u8; 6]>, Option<[u8; 6]>) {
    let p = published(actions);
    assert_eq!(p.len(), 1, "{actions:?}");
    let snap = &p[0].snapshot;
    (
        service_backend_mac(c, snap, "web", "203.0.113.50"),
        service_backend_mac(c, snap, "web6", "2001:db8:5::50"),
    )
}

#[test]
fn one_interface_resolves_a_gateway_per_address_family() {
    let t0 = Instant::now();
    let (mut c, built) = start(DUAL_STACK);
    for (service, backend) in [("web", "203.0.113.50"), ("web6", "2001:db8:5::50")] {
        assert_eq!(
            service_backend_mac(&c, &built.snapshot, service, backend),
            None
        );
    }
    let sent: Vec<Vec<u8>> = c
        .handle(Event::Tick, t0)
        .into_iter()
        .map(|a| match a {
            Action::Send { iface: 0, frame } => frame,
            other => panic!("a first tick only sends requests on uplink, got {other:?}"),
        })
        .collect();
    assert_eq!(sent.len(), 2, "one request per gateway");
    let arp = sent
        .iter()
        .find(|f| f[12..14] == [0x08, 0x06])
        .expect("an ARP request");
    assert_eq!(arp[38..42], [192, 0, 2, 1], "for the IPv4 gateway");
    let ns = sent
        .iter()
        .find(|f| f[12..14] == [0x86, 0xdd])
        .expect("a neighbour solicitation");
    assert_eq!(ns[14 + 40], v6::NEIGHBOR_SOLICIT);
    let gw6: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(ns[14 + 40 + 8..14 + 40 + 24], gw6.octets(), "for gateway6");
    assert_eq!(
        ns[22..38],
        "2001:db8::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
        "from the interface's own address6"
    );

    let a = c.handle(Event::Frame(&arp_reply([192, 0, 2, 1], GW_MAC)), t0);
    assert_eq!(dual_stack_macs(&c, &a), (Some(GW_MAC), None));
    let a = c.handle(Event::Frame(&neighbour_advert("2001:db8::1", GW6_MAC)), t0);
    assert_eq!(
        dual_stack_macs(&c, &a),
        (Some(GW_MAC), Some(GW6_MAC)),
        "the IPv6 backend leaves to gateway6's MAC"
    );
    assert_eq!(
        c.neighbours(),
        vec![
            (ip("192.0.2.1"), Some(GW_MAC)),
            (ip("2001:db8::1"), Some(GW6_MAC))
        ]
    );
}

#[test]
fn a_static_gateway6_mac_is_never_resolved() {
    let t0 = Instant::now();
    let (mut c, built) =
        start_with_static_mac(DUAL_STACK, "gateway6: 2001:db8::1", "gateway6_mac", GW6_MAC);
    assert_eq!(
        service_backend_mac(&c, &built.snapshot, "web6", "2001:db8:5::50"),
        Some(GW6_MAC)
    );
    let sent = c.handle(Event::Tick, t0);
    assert_eq!(sent.len(), 1, "only the IPv4 gateway: {sent:?}");
    assert!(matches!(&sent[0], Action::Send { frame, .. } if frame[12..14] == [0x08, 0x06]));
}

#[test]
fn a_health_change_republishes_only_when_the_down_set_changes() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    assert!(
        published(&c.handle(Event::Health(report(&c, &[])), t0)).is_empty(),
        "all up, as they started"
    );
    let a = c.handle(Event::Health(report(&c, &["192.0.2.12"])), t0);
    let p = published(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(
        table_of(p[0]).unwrap(),
        ["192.0.2.11", "203.0.113.50"],
        "the down backend left the table"
    );
    assert!(c.down().contains(&("web".to_owned(), ip("192.0.2.12"))));
    assert!(
        c.handle(Event::Health(report(&c, &["192.0.2.12"])), t0)
            .is_empty(),
        "the same report again: nothing to publish"
    );
    let a = c.handle(Event::Health(report(&c, &[])), t0);
    assert_eq!(table_of(published(&a)[0]).unwrap().len(), 3, "back up");
    assert!(c.down().is_empty());
}

#[test]
fn an_applied_reload_sets_targets_first_then_publishes_and_reports() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    let first = resolve_all(&mut c, t0);
    let more = BASE.replace(
        "      - address: 203.0.113.50\n",
        "      - address: 203.0.113.50\n      - address: 192.0.2.13\n",
    );
    let a = c.handle(Event::Reload(Ok(load(&more))), t0);
    match a.as_slice() {
        [Action::SetHealthTargets(t)] => assert_eq!(t.len(), 4, "one target per backend"),
        other => panic!("expected only the new targets, got {other:?}"),
    }
    assert_eq!(
        c.config().services[0].backends.len(),
        3,
        "nothing applied before the checker answers"
    );
    // The new backend's next hop is asked for at once, and nothing is published before it answers.
    let a = c.handle(Event::HealthTargetsSet(Ok(())), t0);
    let asked: Vec<[u8; 4]> = a
        .iter()
        .map(|a| match a {
            Action::Send { frame, .. } => frame[38..42].try_into().unwrap(),
            other => panic!("only requests while resolving: {other:?}"),
        })
        .collect();
    assert_eq!(asked, [[192, 0, 2, 13]]);
    assert!(c.reload_pending());
    assert_eq!(c.config().services[0].backends.len(), 3);
    let a = c.handle(
        Event::Frame(&arp_reply([192, 0, 2, 13], [2, 0, 0, 0, 0, 0x13])),
        t0 + Duration::from_millis(1),
    );
    assert!(
        matches!(
            a.as_slice(),
            [
                Action::Log(_),
                Action::Publish(_),
                Action::ReloadDone(Ok(()))
            ]
        ),
        "{a:?}"
    );
    let p = published(&a);
    assert_eq!(
        table_of(p[0]).unwrap().len(),
        4,
        "resolved before it takes traffic"
    );
    assert_eq!(
        backend_mac(&c, &p[0].snapshot, "192.0.2.13"),
        Some([2, 0, 0, 0, 0, 0x13])
    );
    assert_ne!(p[0].tables[0].fingerprint, first.tables[0].fingerprint);
    assert_eq!(c.config().services[0].backends.len(), 4);
    assert!(!c.reload_pending());
}

#[test]
fn a_next_hop_that_never_answers_delays_the_reload_by_the_bound_only() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    let more = BASE.replace(
        "      - address: 203.0.113.50\n",
        "      - address: 203.0.113.50\n      - address: 192.0.2.13\n",
    );
    let a = reload(&mut c, &more, Ok(()), t0);
    assert!(published(&a).is_empty() && reload_outcome(&a).is_none());
    // Ticks before the bound: the request is repeated, nothing is published.
    let a = c.handle(Event::Tick, t0 + Duration::from_millis(1200));
    assert!(
        published(&a).is_empty() && reload_outcome(&a).is_none(),
        "{a:?}"
    );
    assert!(
        a.iter().any(|a| matches!(a, Action::Send { .. })),
        "retried"
    );
    // Another reload meanwhile is refused, not interleaved.
    let again = c.handle(
        Event::Reload(Ok(load(BASE))),
        t0 + Duration::from_millis(1300),
    );
    assert!(matches!(reload_outcome(&again), Some(Err(m)) if m.contains("in progress")));
    let a = c.handle(Event::Tick, t0 + RESOLVE_WAIT);
    assert!(matches!(reload_outcome(&a), Some(Ok(()))), "{a:?}");
    let p = published(&a);
    assert_eq!(
        table_of(p[0]).unwrap(),
        ["192.0.2.11", "192.0.2.12", "203.0.113.50"],
        "published without the silent one"
    );
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Log(l) if l.contains("192.0.2.13"))));
    // Held back, it is down for /state (and the announcements) too, not only for the table.
    let silent = |c: &Controller| c.down().iter().any(|(_, b)| b.to_string() == "192.0.2.13");
    assert!(
        silent(&c),
        "the silent backend reads as down: {:?}",
        c.down()
    );
    // It answers later: it joins then.
    let a = c.handle(
        Event::Frame(&arp_reply([192, 0, 2, 13], [2, 0, 0, 0, 0, 0x13])),
        t0 + RESOLVE_WAIT,
    );
    assert_eq!(table_of(published(&a)[0]).unwrap().len(), 4);
    assert!(!silent(&c), "answered: up again");
}

/// The checker reports only changes, and a target it forgets and later gets again starts up
/// without one: a backend that was down when a reload removed it, added back healthy, is up.
#[test]
fn a_backend_down_when_removed_is_up_when_added_back() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    c.handle(Event::Health(report(&c, &["192.0.2.12"])), t0);
    assert_eq!(c.down().len(), 1);
    let fewer = BASE.replace("      - address: 192.0.2.12\n", "");
    let a = reload(&mut c, &fewer, Ok(()), t0);
    assert!(matches!(reload_outcome(&a), Some(Ok(()))), "{a:?}");
    // Back, with no health report in between (nothing changed state in the checker).
    let a = reload(&mut c, BASE, Ok(()), t0 + Duration::from_secs(5));
    assert!(matches!(reload_outcome(&a), Some(Ok(()))), "{a:?}");
    assert!(
        c.down().is_empty(),
        "still down from before: {:?}",
        c.down()
    );
    assert_eq!(table_of(published(&a)[0]).unwrap().len(), 3);
}

#[test]
fn a_backend_removed_and_added_back_is_published_at_once_with_its_known_mac() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    let fewer = BASE.replace("      - address: 192.0.2.12\n", "");
    let a = reload(&mut c, &fewer, Ok(()), t0);
    assert!(matches!(reload_outcome(&a), Some(Ok(()))));
    assert!(!c
        .neighbours()
        .iter()
        .any(|(ip, _)| ip.to_string() == "192.0.2.12"));
    let a = reload(&mut c, BASE, Ok(()), t0 + Duration::from_secs(5));
    assert!(matches!(reload_outcome(&a), Some(Ok(()))), "no wait: {a:?}");
    assert!(!a.iter().any(|a| matches!(a, Action::Send { .. })));
    assert_eq!(table_of(published(&a)[0]).unwrap().len(), 3);
}

#[test]
fn a_file_that_does_not_load_is_refused_with_its_location_and_nothing_changes() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    let broken = BASE.replace("port: 80\n    protocol", "port: 99999\n    protocol");
    let err = config::load_str(&broken, "sluice.yaml")
        .unwrap_err()
        .to_string();
    let a = c.handle(Event::Reload(Err(err)), t0);
    match reload_outcome(&a) {
        Some(Err(msg)) => assert!(msg.contains("sluice.yaml:10:11: services[0].port"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(published(&a).is_empty());
    assert_eq!(c.config(), &load(BASE));
}

#[test]
fn a_file_that_changes_restart_only_settings_is_refused_whole() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    let text = BASE
        .replace(
            "address: 192.0.2.10/24",
            "address: 192.0.2.10/24\n    queues: 2",
        )
        .replace("      - address: 192.0.2.12\n", "");
    let a = reload(&mut c, &text, Ok(()), t0);
    match reload_outcome(&a) {
        Some(Err(msg)) => assert!(
            msg.contains("interfaces") && msg.contains("restart"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(published(&a).is_empty());
    assert_eq!(
        c.config().services[0].backends.len(),
        3,
        "the service change in the same file is not applied either"
    );
}

#[test]
fn health_checks_that_cannot_start_roll_the_reload_back() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    let fewer = BASE.replace("      - address: 192.0.2.12\n", "");
    let a = reload(&mut c, &fewer, Err("no threads".into()), t0);
    match a.as_slice() {
        [Action::ReloadDone(Err(msg))] => {
            assert!(
                msg.contains("health checks could not start: no threads"),
                "{msg}"
            )
        }
        other => panic!("nothing may be published: {other:?}"),
    }
    assert_eq!(
        c.config().services[0].backends.len(),
        3,
        "the old file, whole"
    );
    // And the controller takes the next reload normally.
    let a = reload(&mut c, &fewer, Ok(()), t0);
    assert!(matches!(reload_outcome(&a), Some(Ok(()))));
    assert_eq!(c.config().services[0].backends.len(), 2);
}

#[test]
fn removing_a_health_check_brings_its_down_backends_back() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    c.handle(Event::Health(report(&c, &["192.0.2.12"])), t0);
    let unchecked = BASE.replace("    health_check:\n      kind: tcp\n      port: 80\n", "");
    let a = reload(&mut c, &unchecked, Ok(()), t0);
    assert!(matches!(reload_outcome(&a), Some(Ok(()))));
    // The checker may still list the old target as down; an unchecked backend is up anyway.
    assert_eq!(table_of(published(&a)[0]).unwrap().len(), 3);
    assert!(c.down().is_empty());
    let stale = c.handle(Event::Health(report_of(&["192.0.2.12"])), t0);
    assert!(published(&stale).is_empty(), "{stale:?}");
}

/// A report of the base config's targets (the checker before it took new ones).
fn report_of(down: &[&str]) -> Vec<TargetStatus> {
    let (c, _) = start(BASE);
    report(&c, down)
}

#[test]
fn health_reported_during_a_reload_is_what_the_published_snapshot_uses() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    let more = BASE.replace("port: 80\n    protocol", "port: 81\n    protocol");
    let a = c.handle(Event::Reload(Ok(load(&more))), t0);
    assert!(matches!(a.as_slice(), [Action::SetHealthTargets(_)]));
    // A backend goes down between the build and the checker's answer.
    let mid = c.handle(Event::Health(report(&c, &["192.0.2.11"])), t0);
    assert_eq!(
        published(&mid).len(),
        1,
        "the running config reacts at once"
    );
    let a = c.handle(Event::HealthTargetsSet(Ok(())), t0);
    let p = published(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(
        table_of(p[0]).unwrap(),
        ["192.0.2.12", "203.0.113.50"],
        "built again with the down backend left out"
    );
}

/// While a reload waits for a new next hop, the checker already runs the new file's targets:
/// a down backend the new file removes gets no status, and must not read as up (and take new
/// flows again) in the config still running.
#[test]
fn a_removed_down_backend_stays_down_while_the_reload_waits_for_next_hops() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    let a = c.handle(Event::Health(report(&c, &["192.0.2.11"])), t0);
    assert_eq!(
        table_of(published(&a)[0]).unwrap(),
        ["192.0.2.12", "203.0.113.50"]
    );
    let next = BASE.replace(
        "      - address: 192.0.2.11\n",
        "      - address: 192.0.2.13\n",
    );
    let a = c.handle(Event::Reload(Ok(load(&next))), t0);
    assert!(matches!(a.as_slice(), [Action::SetHealthTargets(_)]));
    c.handle(Event::HealthTargetsSet(Ok(())), t0);
    assert!(c.reload_pending(), "waiting for 192.0.2.13");
    // The checker reports the new file's targets, every one up; nothing of 192.0.2.11.
    let (fresh, _) = start(&next);
    let a = c.handle(
        Event::Health(report(&fresh, &[])),
        t0 + Duration::from_millis(100),
    );
    for p in published(&a) {
        assert!(
            !table_of(p).unwrap().iter().any(|b| b == "192.0.2.11"),
            "the removed, down backend is back in the table"
        );
    }
    assert!(c.down().iter().any(|(_, b)| b.to_string() == "192.0.2.11"));
}

#[test]
fn fingerprints_follow_the_usable_backends_and_agree_between_controllers() {
    let t0 = Instant::now();
    let (mut a, _) = start(BASE);
    let (mut b, _) = start(BASE);
    let built_a = resolve_all(&mut a, t0);
    let built_b = resolve_all(&mut b, t0);
    assert_eq!(built_a.tables[0].fingerprint, built_b.tables[0].fingerprint);
    let pa = a.handle(Event::Health(report(&a, &["192.0.2.11"])), t0);
    let pb = b.handle(Event::Health(report(&b, &["192.0.2.11"])), t0);
    assert_eq!(
        published(&pa)[0].tables[0].fingerprint,
        published(&pb)[0].tables[0].fingerprint,
        "same config and health: same table on every instance"
    );
    assert_ne!(
        published(&pa)[0].tables[0].fingerprint,
        built_a.tables[0].fingerprint
    );
    let drained = BASE.replace(
        "      - address: 192.0.2.11\n",
        "      - address: 192.0.2.11\n        weight: 0\n",
    );
    let (mut d, _) = start(&drained);
    let d = resolve_all(&mut d, t0);
    assert_eq!(
        d.tables[0].fingerprint,
        published(&pa)[0].tables[0].fingerprint,
        "weight 0 and down leave the same table"
    );
}

/// A TCP SYN from a client to the VIP, through a pipeline holding `snap`.
fn syn_verdict(snap: &Snapshot) -> Verdict {
    let mut bytes = Vec::new();
    etherparse::PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 0x99], PORT_MAC)
        .ipv4([203, 0, 113, 7], [198, 51, 100, 10], 64)
        .tcp(40000, 80, 1, 1024)
        .syn()
        .write(&mut bytes, &[])
        .unwrap();
    let mut buf = vec![0u8; 128 + bytes.len()];
    buf[128..].copy_from_slice(&bytes);
    let mut frame = Frame::new(&mut buf, 128, bytes.len()).unwrap();
    Pipeline::new(&PipelineConfig::default()).process(&mut frame, 0, snap, 1)
}

/// Every backend behind a gateway with a static MAC: every next hop known from the start.
const VIA_GATEWAY: &str = "
interfaces:
  - name: uplink
    device: net_null0
    address: 192.0.2.10/24
    gateway: 192.0.2.1
    gateway_mac: \"02:00:00:00:00:01\"
services:
  - name: web
    vip: 198.51.100.10
    port: 80
    protocol: tcp
    backends:
      - address: 203.0.113.50
      - address: 203.0.113.51
    health_check:
      kind: tcp
      port: 80
";

#[test]
fn when_all_down_drops_or_forwards_anyway() {
    let t0 = Instant::now();
    let all = ["203.0.113.50", "203.0.113.51"];
    let (mut c, built) = start(VIA_GATEWAY);
    assert!(
        matches!(syn_verdict(&built.snapshot), Verdict::Forward { port: 0 }),
        "all up: forwarded"
    );
    let a = c.handle(Event::Health(report(&c, &all)), t0);
    let p = published(&a);
    assert_eq!(table_of(p[0]), None, "no usable backend, no table");
    assert_eq!(p[0].tables[0].fingerprint, None);
    match syn_verdict(&p[0].snapshot) {
        Verdict::Drop(r) => assert_eq!(r.as_str(), "no_backend"),
        other => panic!("when_all_down: drop forwarded: {other:?}"),
    }

    let anyway = VIA_GATEWAY.replace(
        "      port: 80\n",
        "      port: 80\n    when_all_down: forward-anyway\n",
    );
    let (mut c, _) = start(&anyway);
    let a = c.handle(Event::Health(report(&c, &all)), t0);
    let p = published(&a);
    assert_eq!(table_of(p[0]), None);
    assert!(
        matches!(syn_verdict(&p[0].snapshot), Verdict::Forward { port: 0 }),
        "forward-anyway spreads over every backend with weight"
    );
}

/// BASE with route announcement and the exception path it needs.
fn announcing() -> String {
    BASE.replace(
        "    gateway: 192.0.2.1\n",
        "    gateway: 192.0.2.1\n    kernel:\n      name: sl0\n",
    ) + "announce:\n  table: 100\n"
}

fn announced(actions: &[Action]) -> Option<Vec<String>> {
    actions.iter().find_map(|a| match a {
        Action::Announce(v) => Some(v.iter().map(IpAddr::to_string).collect()),
        _ => None,
    })
}

#[test]
fn vips_are_announced_while_a_backend_is_usable_and_withdrawn_by_a_drain() {
    let t0 = Instant::now();
    let (mut c, _) = start(&announcing());
    assert_eq!(
        announced(&c.handle(Event::Tick, t0)),
        Some(vec!["198.51.100.10".to_owned()]),
        "announced on the first event after start"
    );
    assert_eq!(
        announced(&c.handle(Event::Tick, t0)),
        None,
        "no change, no action"
    );
    // Every backend down: withdrawn; one back: announced again.
    let all = ["192.0.2.11", "192.0.2.12", "203.0.113.50"];
    let a = c.handle(Event::Health(report(&c, &all)), t0);
    let order: Vec<&str> = a
        .iter()
        .map(|a| match a {
            Action::Publish(_) => "publish",
            Action::Announce(_) => "announce",
            _ => "other",
        })
        .collect();
    assert_eq!(
        order,
        ["publish", "announce"],
        "the snapshot first, then the routes"
    );
    assert_eq!(announced(&a), Some(vec![]));
    let a = c.handle(Event::Health(report(&c, &["192.0.2.11", "192.0.2.12"])), t0);
    assert_eq!(announced(&a), Some(vec!["198.51.100.10".to_owned()]));
    // A drain withdraws without touching forwarding; its end announces again.
    let a = c.handle(Event::Drain(true), t0);
    assert!(published(&a).is_empty(), "forwarding unchanged: {a:?}");
    assert_eq!(announced(&a), Some(vec![]));
    assert!(c.draining());
    assert_eq!(
        announced(&c.handle(Event::Health(report(&c, &[])), t0)),
        None,
        "a draining appliance announces nothing, whatever health says"
    );
    let a = c.handle(Event::Drain(false), t0);
    assert_eq!(announced(&a), Some(vec!["198.51.100.10".to_owned()]));
    assert_eq!(c.announced(), ["198.51.100.10".parse::<IpAddr>().unwrap()]);
}

#[test]
fn weight_zero_everywhere_withdraws_and_a_reload_adds_a_vip_after_its_snapshot() {
    let t0 = Instant::now();
    let (mut c, _) = start(&announcing());
    resolve_all(&mut c, t0);
    let two = announcing().replace(
        "announce:",
        "  - name: dns\n    vip: 198.51.100.53\n    port: 53\n    protocol: udp\n    backends:\n      - address: 192.0.2.11\nannounce:",
    );
    let a = reload(&mut c, &two, Ok(()), t0);
    let pos = |want: &str| {
        a.iter().position(|x| match x {
            Action::Publish(_) => want == "publish",
            Action::Announce(_) => want == "announce",
            _ => false,
        })
    };
    assert!(pos("publish") < pos("announce"), "{a:?}");
    assert_eq!(
        announced(&a),
        Some(vec!["198.51.100.10".to_owned(), "198.51.100.53".to_owned()])
    );
    let drained = two.replace(
        "      - address: 192.0.2.11\nannounce:",
        "      - address: 192.0.2.11\n        weight: 0\nannounce:",
    );
    let a = reload(&mut c, &drained, Ok(()), t0);
    assert_eq!(announced(&a), Some(vec!["198.51.100.10".to_owned()]));
}

#[test]
fn a_vip_whose_only_backend_is_held_back_for_its_next_hop_is_not_announced() {
    let t0 = Instant::now();
    let (mut c, _) = start(&announcing());
    resolve_all(&mut c, t0);
    c.handle(Event::Tick, t0);
    // A new service whose one backend (on-link, so its own next hop) never answers ARP.
    let silent = announcing().replace(
        "announce:",
        "  - name: dns\n    vip: 198.51.100.53\n    port: 53\n    protocol: udp\n    backends:\n      - address: 192.0.2.13\nannounce:",
    );
    reload(&mut c, &silent, Ok(()), t0);
    let a = c.handle(Event::Tick, t0 + RESOLVE_WAIT);
    assert!(matches!(reload_outcome(&a), Some(Ok(()))), "{a:?}");
    assert_eq!(
        c.announced(),
        [ip("198.51.100.10")],
        "no route for a VIP nothing can serve"
    );
    // It answers: its VIP is announced, after the snapshot that can forward to it.
    let a = c.handle(
        Event::Frame(&arp_reply([192, 0, 2, 13], [2, 0, 0, 0, 0, 0x13])),
        t0 + RESOLVE_WAIT,
    );
    assert_eq!(
        announced(&a),
        Some(vec!["198.51.100.10".to_owned(), "198.51.100.53".to_owned()])
    );
}

#[test]
fn without_announce_nothing_is_ever_announced() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    assert_eq!(announced(&c.handle(Event::Tick, t0)), None);
    assert_eq!(announced(&c.handle(Event::Drain(true), t0)), None);
}

#[test]
fn a_reload_that_introduces_nat_is_refused_whole_and_one_started_with_it_applies() {
    let t0 = Instant::now();
    let nat = BASE
        .replace("protocol: tcp", "protocol: tcp\n    forwarding: nat")
        .replace("      - address: 192.0.2.12\n", "");
    let (mut c, _) = start(BASE);
    let a = reload(&mut c, &nat, Ok(()), t0);
    match reload_outcome(&a) {
        Some(Err(msg)) => assert!(
            msg.contains("nat or fullnat")
                && msg.contains("connection tracking")
                && msg.contains("restart"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(published(&a).is_empty());
    assert_eq!(c.config().services[0].backends.len(), 3, "nothing applied");

    // Started with nat: tracking exists, so leaving nat and coming back are both reloads.
    let dsr = BASE.replace("      - address: 192.0.2.12\n", "");
    let (mut c, _) = start(&nat);
    resolve_all(&mut c, t0);
    for (text, mode) in [(&dsr, Forwarding::Ipip), (&nat, Forwarding::Nat)] {
        let a = reload(&mut c, text, Ok(()), t0);
        assert_eq!(reload_outcome(&a), Some(&Ok(())), "{a:?}");
        assert_eq!(c.config().services[0].forwarding, mode);
    }
}

#[test]
fn a_removed_backend_keeps_its_id_for_the_retention_then_is_forgotten() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    let keep = control::forwarding::id_retention(c.config());
    assert!(keep >= Duration::from_secs(3600));
    let id = |c: &Controller| c.ids().backend_id("web", ip("203.0.113.50"));
    let first = id(&c).unwrap();
    let without = BASE.replace("      - address: 203.0.113.50\n", "");
    let applied = |a: &[Action]| assert_eq!(reload_outcome(a), Some(&Ok(())), "{a:?}");
    applied(&reload(&mut c, &without, Ok(()), t0));
    applied(&reload(&mut c, BASE, Ok(()), t0 + keep / 2));
    assert_eq!(id(&c), Some(first), "back within the retention: the old id");
    // Absent from t0 + keep on; still known a second before the retention ends.
    applied(&reload(&mut c, &without, Ok(()), t0 + keep));
    applied(&reload(
        &mut c,
        &without,
        Ok(()),
        t0 + keep * 2 - Duration::from_secs(1),
    ));
    assert_eq!(id(&c), Some(first));
    let a = c.handle(Event::Health(report(&c, &["192.0.2.11"])), t0 + keep * 2);
    assert_eq!(published(&a).len(), 1, "a health change publishes");
    assert_eq!(
        id(&c),
        None,
        "forgotten at the first publish past the retention"
    );
    applied(&reload(&mut c, BASE, Ok(()), t0 + keep * 3));
    let again = id(&c).unwrap();
    assert!(
        again > first,
        "a new id ({again}), never the old one ({first})"
    );
}

#[test]
fn backend_churn_leaves_only_the_running_ids() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    let keep = control::forwarding::id_retention(c.config());
    for i in 0..40u32 {
        // Each reload swaps in a new address behind the gateway (a new pod, say).
        let text = BASE.replace(
            "      - address: 203.0.113.50\n",
            &format!("      - address: 203.0.113.{}\n", 100 + i),
        );
        let a = reload(&mut c, &text, Ok(()), t0 + keep * i);
        assert_eq!(reload_outcome(&a), Some(&Ok(())), "{a:?}");
        let (services, backends) = c.ids().assigned();
        assert_eq!(services.len(), 1);
        // The three running backends, and the one removed by this reload (absent, not yet
        // forgotten); the one before it is past the retention.
        assert!(
            backends.len() <= 4,
            "reload {i}: {} backend ids",
            backends.len()
        );
    }
}

/// `kind: none` is always up (design.md, Health checks): a reload that switches a check to
/// `none` publishes its down backends up at once, not after the checker's next report.
#[test]
fn switching_a_check_to_none_brings_its_down_backends_back_at_once() {
    let t0 = Instant::now();
    let (mut c, _) = start(BASE);
    resolve_all(&mut c, t0);
    c.handle(Event::Health(report(&c, &["192.0.2.12"])), t0);
    assert_eq!(c.down().len(), 1);
    let none = BASE.replace("      kind: tcp\n", "      kind: none\n");
    let a = reload(&mut c, &none, Ok(()), t0);
    assert!(matches!(reload_outcome(&a), Some(Ok(()))));
    let p = published(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(
        table_of(p[0]).unwrap().len(),
        3,
        "the reload's snapshot kept an unprobed backend down"
    );
    assert!(c.down().is_empty(), "{:?}", c.down());
    // The checker's report before it took the new targets still says down: up anyway.
    let stale = c.handle(Event::Health(report_of(&["192.0.2.12"])), t0);
    assert!(published(&stale).is_empty(), "{stale:?}");
    assert!(c.down().is_empty());
}
