"""The pcap end-to-end test's world: its services, the sluice config for them, and its traffic.

One source of truth for tests/e2e/20-pcap-lb.sh: the config it runs sluice with, the mixed
traffic it feeds (built with scapy, deterministic for a seed) and, per input frame, what sluice
must do with it (forward to a service, reply, or drop with a reason). lb_verify.py checks the
capture sluice wrote against that intent, reading every packet with scapy.
"""

import random
from dataclasses import dataclass, field

from scapy.all import (ARP, GRE, ICMP, IP, TCP, UDP, Ether, ICMPv6EchoRequest, ICMPv6ND_NA,
                       ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr, IPv6, Raw)

APPLIANCE_IP = "192.0.2.10"
APPLIANCE_IP6 = "2001:db8::10"
GATEWAY_IP = "192.0.2.1"
GATEWAY_MAC = "02:00:00:00:00:01"
# Frames from clients arrive from the router.
CLIENT_L2_SRC = GATEWAY_MAC
MTU = 1500


@dataclass
class Service:
    name: str
    vip: str
    port: int
    proto: str
    forwarding: str
    backends: list
    # On-link backends (l2-dsr, and all IPv6 ones): the MAC each answers ARP/ND with.
    macs: dict = field(default_factory=dict)

    @property
    def v6(self):
        return ":" in self.vip


SERVICES = [
    Service("web", "198.51.100.10", 80, "tcp", "ipip",
            ["203.0.113.11", "203.0.113.12", "203.0.113.13"]),
    Service("dns", "198.51.100.20", 53, "udp", "gue", ["203.0.113.21", "203.0.113.22"]),
    Service("db", "198.51.100.30", 5432, "tcp", "l2-dsr",
            ["192.0.2.31", "192.0.2.32", "192.0.2.33"],
            {"192.0.2.31": "02:00:00:00:02:31", "192.0.2.32": "02:00:00:00:02:32",
             "192.0.2.33": "02:00:00:00:02:33"}),
    # IPv6 VIPs, encapsulated in IPv6 to on-link backends resolved by neighbour discovery.
    Service("web6", "2001:db8:100::10", 80, "tcp", "ipip", ["2001:db8::11", "2001:db8::12"],
            {"2001:db8::11": "02:00:00:00:06:11", "2001:db8::12": "02:00:00:00:06:12"}),
    Service("dns6", "2001:db8:100::20", 53, "udp", "gue", ["2001:db8::21", "2001:db8::22"],
            {"2001:db8::21": "02:00:00:00:06:21", "2001:db8::22": "02:00:00:00:06:22"}),
]
# Every next hop sluice must resolve (ARP or ND), with the MAC it answers with.
ON_LINK = {ip: mac for s in SERVICES for ip, mac in s.macs.items()}
BY_NAME = {s.name: s for s in SERVICES}
NOT_A_VIP = "198.51.100.99"


def config_yaml(eal_args, listen="127.0.0.1:0", services=SERVICES, table_size=65537):
    """The sluice config for this world (EAL arguments from the caller)."""
    q = ", ".join(f'"{a}"' for a in eal_args)
    lines = [
        "dpdk:",
        f"  args: [{q}]",
        "  mbufs: 4095",
        "interfaces:",
        "  - name: uplink",
        "    device: net_pcap0",
        "    queues: 1",
        f"    mtu: {MTU}",
        f"    address: {APPLIANCE_IP}/24",
        f"    address6: {APPLIANCE_IP6}/64",
        f"    gateway: {GATEWAY_IP}",
        f'    gateway_mac: "{GATEWAY_MAC}"',
        "services:",
    ]
    for s in services:
        lines += [
            f"  - name: {s.name}",
            f"    vip: {s.vip}",
            f"    port: {s.port}",
            f"    protocol: {s.proto}",
            f"    forwarding: {s.forwarding}",
            f"    table_size: {table_size}",
            "    backends:",
        ]
        lines += [f"      - address: {b}" for b in s.backends]
    lines += ["metrics:", f"  listen: {listen}", ""]
    return "\n".join(lines)


class Traffic:
    """Packet factory: random clients (seeded), whole flows, a unique tag in every payload."""

    def __init__(self, appliance_mac, seed=20):
        self.mac = appliance_mac
        self.rng = random.Random(seed)
        self._seq = 0

    def _tag(self):
        # Every frame carries a unique tag in its payload: no two inputs are alike.
        self._seq += 1
        return b"sluice-e2e-%06d;" % self._seq

    def eth(self, src=CLIENT_L2_SRC):
        return Ether(src=src, dst=self.mac)

    def client(self, v6=False):
        port = self.rng.randint(1024, 65535)
        if v6:
            return f"2001:db8:1::{self.rng.randint(0x100, 0xfff):x}", port
        return f"192.0.2.{self.rng.randint(100, 199)}", port

    def ip(self, src, dst, **kw):
        """IPv4 or IPv6 by the destination's family; tos is IPv6's traffic class."""
        if ":" in dst:
            return IPv6(src=src, dst=dst, tc=kw.pop("tos", 0), **kw)
        return IP(src=src, dst=dst, **kw)

    def tcp_flow(self, svc, data_packets, dport=None):
        """A whole TCP connection (SYN, ACK, data, FIN), as a list of (frame, intent)."""
        src, sport = self.client(svc.v6)
        dport = dport or svc.port
        seq = self.rng.randint(0, 2**31)
        flow = (src, sport, svc.vip, dport, "tcp")
        base = self.eth() / self.ip(src, svc.vip, tos=self.rng.choice([0, 0x10, 0xb8]))
        out = []
        flags = ["S", "A"] + ["PA"] * data_packets + ["FA"]
        for f in flags:
            payload = self._tag() + bytes(self.rng.randint(0, 200)) if "P" in f else b""
            p = base / TCP(sport=sport, dport=dport, flags=f, seq=seq, ack=1 if "A" in f else 0)
            if payload:
                p = p / Raw(payload)
            elif not svc.v6:
                # No payload to tag: a unique IP id keeps every input packet distinct (IPv6
                # segments differ by their sequence numbers).
                self._seq += 1
                p[IP].id = self._seq % 65536
            seq += max(len(payload), 1)
            out.append((p, dict(kind="forward", service=svc.name, flow=flow)))
        return out

    def udp_flow(self, svc, packets):
        src, sport = self.client(svc.v6)
        flow = (src, sport, svc.vip, svc.port, "udp")
        out = []
        for _ in range(packets):
            p = (self.eth() / self.ip(src, svc.vip) / UDP(sport=sport, dport=svc.port)
                 / Raw(self._tag() + bytes(self.rng.randint(0, 300))))
            out.append((p, dict(kind="forward", service=svc.name, flow=flow)))
        return out


def build(appliance_mac, seed=20):
    """Returns (phase_a, phase_b, phase_c): lists of (frame bytes, intent).

    A: l2-dsr packets before any backend MAC is known (dropped: unresolved next hop).
    B: the on-link backends' ARP replies and neighbour advertisements, then 32 fillers so
       the PMD's burst holding them completes (net_pcap reads until a burst is full or the
       input ends).
    C: the mixed traffic, interleaved at random but in order within each flow.
    """
    t = Traffic(appliance_mac, seed)
    db, web, dns, web6 = BY_NAME["db"], BY_NAME["web"], BY_NAME["dns"], BY_NAME["web6"]

    phase_a = []
    for _ in range(5):
        src, sport = t.client()
        p = t.eth() / IP(src=src, dst=db.vip) / TCP(sport=sport, dport=db.port, flags="S")
        p = p / Raw(t._tag())
        phase_a.append((bytes(p), dict(kind="drop", reason="unresolved_next_hop")))

    phase_b = []
    for ip, mac in ON_LINK.items():
        if ":" in ip:
            p = (Ether(src=mac, dst=appliance_mac)
                 / IPv6(src=ip, dst=APPLIANCE_IP6, hlim=255)
                 / ICMPv6ND_NA(tgt=ip, R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=mac))
        else:
            p = (Ether(src=mac, dst=appliance_mac)
                 / ARP(op=2, hwsrc=mac, psrc=ip, hwdst=appliance_mac, pdst=APPLIANCE_IP))
        phase_b.append((bytes(p), dict(kind="control")))
    for _ in range(32):
        src, sport = t.client()
        p = t.eth() / IP(src=src, dst=NOT_A_VIP) / UDP(sport=sport, dport=9) / Raw(t._tag())
        phase_b.append((bytes(p), dict(kind="drop", reason="not_vip")))

    # Phase C: flows are interleaved by drawing the next packet from a random open flow.
    streams = []
    streams += [t.tcp_flow(web, t.rng.randint(1, 4)) for _ in range(60)]
    streams += [t.udp_flow(dns, t.rng.randint(1, 5)) for _ in range(60)]
    streams += [t.tcp_flow(db, t.rng.randint(1, 3)) for _ in range(45)]
    streams += [t.tcp_flow(web6, t.rng.randint(1, 3)) for _ in range(30)]
    streams += [t.udp_flow(BY_NAME["dns6"], t.rng.randint(1, 4)) for _ in range(30)]

    singles = []
    for _ in range(10):
        src, sport = t.client()
        p = t.eth() / IP(src=src, dst=NOT_A_VIP) / TCP(sport=sport, dport=80, flags="S")
        singles.append((p / Raw(t._tag()), dict(kind="drop", reason="not_vip")))
    for _ in range(3):
        src, sport = t.client()
        p = t.eth() / IP(src=src, dst=web.vip) / TCP(sport=sport, dport=81, flags="S")
        singles.append((p / Raw(t._tag()), dict(kind="drop", reason="no_service")))
    # ARP: who-has the VIP and the appliance's own address (answered), and a stranger (not).
    for asked in (web.vip, dns.vip, APPLIANCE_IP):
        p = (Ether(src="02:00:00:00:03:01", dst="ff:ff:ff:ff:ff:ff")
             / ARP(op=1, hwsrc="02:00:00:00:03:01", psrc="192.0.2.77", pdst=asked))
        singles.append((p, dict(kind="arp_reply", asked=asked)))
    p = (Ether(src="02:00:00:00:03:01", dst="ff:ff:ff:ff:ff:ff")
         / ARP(op=1, hwsrc="02:00:00:00:03:01", psrc="192.0.2.77", pdst="192.0.2.99"))
    singles.append((p, dict(kind="drop", reason="arp_not_ours")))
    # Neighbour solicitation for an IPv6 VIP (answered), from a host on the link.
    p = (Ether(src="02:00:00:00:03:01", dst="33:33:ff:00:00:10")
         / IPv6(src="2001:db8::77", dst="ff02::1:ff00:10", hlim=255)
         / ICMPv6ND_NS(tgt=web6.vip) / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:03:01"))
    singles.append((p, dict(kind="na_reply", asked=web6.vip)))
    p = (t.eth() / IPv6(src="2001:db8:1::150", dst=web6.vip)
         / ICMPv6EchoRequest(id=0x6100, seq=7, data=t._tag() + bytes(range(24))))
    singles.append((p, dict(kind="echo_reply")))
    # ICMP echo to a VIP and to the appliance (answered).
    for i, dst in enumerate((web.vip, db.vip, APPLIANCE_IP)):
        p = (t.eth() / IP(src="192.0.2.150", dst=dst, ttl=33)
             / ICMP(type=8, id=0x5100 + i, seq=i + 1) / Raw(t._tag() + bytes(range(40))))
        singles.append((p, dict(kind="echo_reply")))
    # Too big for the ipip service once encapsulated: an ICMP fragmentation-needed answers it.
    src, sport = t.client()
    p = t.eth() / IP(src=src, dst=web.vip) / TCP(sport=sport, dport=80, flags="PA") / Raw(t._tag())
    p = p / Raw(bytes(MTU - len(p[IP])))
    singles.append((p, dict(kind="too_big", mtu=MTU - 20)))
    # Malformed and refused packets, each dropped with its own reason.
    p = t.eth() / IP(src="192.0.2.151", dst=web.vip, chksum=0x1234) / TCP(dport=80) / Raw(t._tag())
    singles.append((p, dict(kind="drop", reason="bad_checksum")))
    good = bytes(t.eth() / IP(src="192.0.2.152", dst=web.vip) / TCP(dport=80) / Raw(t._tag() * 4))
    singles.append((good[:14 + 20 + 10], dict(kind="drop", reason="truncated")))
    bad_ihl = bytearray(bytes(t.eth() / IP(src="192.0.2.153", dst=web.vip) / UDP() / Raw(t._tag())))
    bad_ihl[14] = 0x44  # IHL 4: shorter than the fixed header
    singles.append((bytes(bad_ihl), dict(kind="drop", reason="malformed")))
    p = Ether(src=CLIENT_L2_SRC, dst=appliance_mac, type=0x88B5) / Raw(t._tag() + bytes(40))
    singles.append((p, dict(kind="drop", reason="unsupported_ethertype")))
    p = t.eth() / IP(src="192.0.2.154", dst=web.vip, ttl=0) / TCP(dport=80, flags="S") / Raw(t._tag())
    singles.append((p, dict(kind="drop", reason="ttl_exceeded")))
    p = t.eth() / IP(src="192.0.2.155", dst=web.vip) / GRE() / Raw(t._tag())
    singles.append((p, dict(kind="drop", reason="unsupported_protocol")))
    streams += [[s] for s in singles]

    phase_c = []
    open_streams = [list(s) for s in streams]
    while open_streams:
        i = t.rng.randrange(len(open_streams))
        pkt, intent = open_streams[i].pop(0)
        phase_c.append((bytes(pkt), intent))
        if not open_streams[i]:
            open_streams.pop(i)
    return phase_a, phase_b, phase_c
