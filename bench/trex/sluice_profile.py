"""sluice workloads as a TRex stateless (STL) profile: many flows from clients to the VIPs,
64-byte frames, IMIX (7:4:1), or SYN-only; the same workloads as bench/pktgen/sluice.lua.

    trex> start -f bench/trex/sluice_profile.py -m 10mpps -p 0 -t --workload syn --flows 1000000

Tunables (after -t): --workload flows64|imix|syn, --flows N, --vip A.B.C.D, --vips N,
--dport P, --proto tcp|udp, --clients N (client addresses from 203.0.113.1), --dst-mac MAC,
--l4-checksum none|hw, --encap ipip|gue|none.
The field engine varies the client address and source port per packet (a tuple generator
over clients x ports) and the VIP when --vips > 1, so that the stream carries exactly --flows
distinct 5-tuples: the tuple generator is limited to --flows / --vips pairs, which must be
coprime with --vips for the two counters, stepping side by side, to meet every combination.
syn sends each of its --flows SYNs once (a single burst): a second round would find every
flow in sluice's table. imix shortens its 1518-byte stream by --encap (sluice's IPIP adds 20
bytes, GUE 28) so the encapsulated frame fits an MTU of 1500.
"""

import argparse
import ipaddress

try:  # a TRex installation puts trex_stl_lib on the path; the PyPI client is lbr-trex-client
    from trex_stl_lib.api import (
        STLPktBuilder, STLProfile, STLStream, STLTXCont, STLTXSingleBurst, STLVM, CTRexVmInsFixHwCs,
        Ether, IP, TCP, UDP,
    )
except ImportError:  # pragma: no cover - depends on how TRex was installed
    import lbr_trex_client  # noqa: F401  (sets up TRex's module paths)
    from trex.stl.api import (
        STLPktBuilder, STLProfile, STLStream, STLTXCont, STLTXSingleBurst, STLVM, CTRexVmInsFixHwCs,
        Ether, IP, TCP, UDP,
    )

import math

WORKLOADS = ("flows64", "imix", "syn")
CLIENT_FIRST = "203.0.113.1"
SPORT_MIN, SPORT_MAX = 1024, 65535
# Simple IMIX: frame sizes with the 4-byte FCS, and their packet shares.
IMIX = ((64, 7), (594, 4), (1518, 1))
FCS = 4
ENCAP = {"ipip": 20, "gue": 28, "none": 0}
L4_TYPE = {"tcp": CTRexVmInsFixHwCs.L4_TYPE_TCP, "udp": CTRexVmInsFixHwCs.L4_TYPE_UDP}


def parse_tunables(tunables):
    p = argparse.ArgumentParser(prog="sluice_profile.py", description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=WORKLOADS, default="flows64")
    p.add_argument("--flows", type=int, default=100000, help="distinct 5-tuples (all streams share them)")
    p.add_argument("--vip", default="198.51.100.10")
    p.add_argument("--vips", type=int, default=1, help="consecutive VIPs from --vip")
    p.add_argument("--dport", type=int, default=80)
    p.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    p.add_argument("--clients", type=int, default=250, help="client addresses from 203.0.113.1")
    p.add_argument("--dst-mac", default="02:00:00:00:00:10", help="sluice's MAC on the client link")
    p.add_argument("--l4-checksum", choices=("none", "hw"), default="none",
                   help="hw: correct TCP/UDP checksums by NIC offload")
    p.add_argument("--encap", choices=sorted(ENCAP), default="ipip",
                   help="sluice's encapsulation: imix's largest frame is 1518 less its overhead")
    p.add_argument("--core", type=int, default=0,
                   help="the TRex DP core every stream is pinned to (its field engine then runs "
                        "once, so the streams carry exactly --flows 5-tuples); -1: TRex splits "
                        "each stream over all its cores (more packets/s, flow count unchecked)")
    a = p.parse_args(list(tunables))
    if a.core < -1:
        p.error("--core must be a core number (0, 1, ...) or -1")
    if a.workload == "syn" and a.proto != "tcp":
        p.error("--workload syn needs --proto tcp")
    if not 1 <= a.clients <= 254:
        p.error("--clients must be 1..254")
    if not 1 <= a.vips <= 254:
        p.error("--vips must be 1..254")
    ports = SPORT_MAX - SPORT_MIN + 1
    if not 1 <= a.flows <= a.clients * ports:
        p.error("--flows must be 1..%d with %d clients" % (a.clients * ports, a.clients))
    if not 1 <= a.dport <= 65535:
        p.error("--dport must be 1..65535")
    # The VIP counter (period --vips) and the tuple generator (period --flows / --vips) step
    # once per packet each: they meet every combination only if the periods are coprime.
    per_vip, rest = divmod(a.flows, a.vips)
    if rest or math.gcd(per_vip, a.vips) != 1:
        ok = next(f for f in range(max(a.flows // a.vips, 1), a.flows + a.vips)
                  if math.gcd(f, a.vips) == 1) * a.vips
        p.error("--flows %d with --vips %d: --flows must be a multiple of --vips whose quotient is "
                "coprime with it (e.g. --flows %d)" % (a.flows, a.vips, ok))
    a.tuples = per_vip
    ipaddress.IPv4Address(a.vip)
    return a


class SluiceProfile:
    def stream(self, a, frame_size, pps_share):
        """One continuous stream of frame_size-byte frames whose 5-tuple varies per packet."""
        l4 = TCP(sport=SPORT_MIN, dport=a.dport, flags="S" if a.workload == "syn" else "A") \
            if a.proto == "tcp" else UDP(sport=SPORT_MIN, dport=a.dport)
        base = Ether(dst=a.dst_mac) / IP(src=CLIENT_FIRST, dst=a.vip) / l4
        pad = max(0, frame_size - FCS - len(base))
        pkt = base / (b"\x00" * pad)

        last_client = str(ipaddress.IPv4Address(CLIENT_FIRST) + a.clients - 1)
        vm = STLVM()
        vm.tuple_var(name="client", ip_min=CLIENT_FIRST, ip_max=last_client,
                     port_min=SPORT_MIN, port_max=SPORT_MAX, limit_flows=a.tuples)
        vm.write(fv_name="client.ip", pkt_offset="IP.src")
        vm.write(fv_name="client.port", pkt_offset="%s.sport" % a.proto.upper())
        if a.vips > 1:
            last_vip = str(ipaddress.IPv4Address(a.vip) + a.vips - 1)
            vm.var(name="vip", min_value=a.vip, max_value=last_vip, size=4, op="inc")
            vm.write(fv_name="vip", pkt_offset="IP.dst")
        if a.l4_checksum == "hw":
            # IPv4 and TCP/UDP checksums by the NIC (needs its TX checksum offload).
            vm.fix_chksum_hw(l3_offset="IP", l4_offset=a.proto.upper(),
                             l4_type=L4_TYPE[a.proto])
        else:
            # IPv4 header checksum only: sluice does not verify L4 checksums, so the stale
            # one costs nothing in a forwarding test (a real backend would drop the packet).
            vm.fix_chksum()
        if a.workload == "syn":
            mode = STLTXSingleBurst(pps=pps_share, total_pkts=a.flows)
        else:
            mode = STLTXCont(pps=pps_share)
        return STLStream(packet=STLPktBuilder(pkt=pkt, vm=vm), mode=mode, core_id=a.core)

    def get_streams(self, tunables=(), **kwargs):
        a = parse_tunables(tunables)
        if a.workload == "imix":
            return [self.stream(a, size - (ENCAP[a.encap] if size == IMIX[-1][0] else 0), share)
                    for size, share in IMIX]
        return [self.stream(a, 64, 1)]


def register():
    return SluiceProfile()


if __name__ == "__main__":  # show the streams without a TRex server: python3 sluice_profile.py -t ...
    import json
    import sys
    args = sys.argv[1:]
    if args[:1] == ["-t"]:
        args = args[1:]
    for i, s in enumerate(register().get_streams(tunables=args)):
        j = s.to_json()
        print("stream %d: %d-byte frames, %s %s, %s" % (
            i, s.get_pkt_len(), j["mode"]["rate"]["value"], j["mode"]["rate"]["type"],
            Ether(s.get_pkt()).summary()))
        for ins in j["vm"]["instructions"]:
            print("  " + json.dumps(ins, sort_keys=True))
