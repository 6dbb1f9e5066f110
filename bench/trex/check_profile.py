"""Loads sluice_profile.py the way the TRex console does (STLProfile.load_py with tunables),
compiles every workload's streams and checks the packets and field engine they carry.
Needs a TRex client library on the path (lbr-trex-client from PyPI); no TRex server.
usage: python3 bench/trex/check_profile.py"""

import json
import os
import sys

try:
    from trex_stl_lib.api import STLProfile, Ether, IP, TCP, UDP
except ImportError:
    import lbr_trex_client  # noqa: F401
    from trex.stl.api import STLProfile, Ether, IP, TCP, UDP

PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sluice_profile.py")


def load(*tunables):
    return STLProfile.load_py(PROFILE, tunables=list(tunables))


def instructions(stream):
    return stream.to_json()["vm"]["instructions"]


def check(cond, what):
    if not cond:
        raise SystemExit("check_profile: FAILED: " + what)


def simulate(stream, packets):
    """The distinct (written fields) combinations of `packets` packets, stepping the field
    engine as the TRex client library documents it: a tuple generator steps its address per
    packet, its port when the address wraps, and restarts after limit_flows tuples; an "inc"
    variable steps by `step` from min_value to max_value and wraps."""
    ins = instructions(stream)
    state, seen = {}, set()
    for _ in range(packets):
        values = {}
        for i in ins:
            if i["type"] == "tuple_flow_var":
                n = state.get(i["name"], -1) + 1
                if n >= i["limit_flows"]:
                    n = 0
                state[i["name"]] = n
                ips = i["ip_max"] - i["ip_min"] + 1
                values[i["name"] + ".ip"] = i["ip_min"] + n % ips
                values[i["name"] + ".port"] = i["port_min"] + (n // ips) % (i["port_max"] - i["port_min"] + 1)
            elif i["type"] == "flow_var":
                check(i["op"] == "inc", "simulate: only inc variables")
                span = i["max_value"] - i["min_value"] + 1
                v = state.get(i["name"])
                v = i["min_value"] if v is None else i["min_value"] + (v - i["min_value"] + i["step"]) % span
                state[i["name"]] = v
                values[i["name"]] = v
        seen.add(tuple(sorted((i["pkt_offset"], values[i["name"]]) for i in ins
                              if i["type"] == "write_flow_var")))
    return len(seen)


def check_stream(stream, size, flows, flags, vip="198.51.100.10", dport=80, proto=TCP, vips=1):
    pkt = Ether(stream.get_pkt())
    check(stream.get_pkt_len() == size, "frame size %d, want %d" % (stream.get_pkt_len(), size))
    check(pkt[IP].dst == vip, "destination %s, want the VIP %s" % (pkt[IP].dst, vip))
    check(pkt[proto].dport == dport, "destination port %d, want %d" % (pkt[proto].dport, dport))
    if flags is not None:
        check(str(pkt[TCP].flags) == flags, "TCP flags %s, want %s" % (pkt[TCP].flags, flags))
    ins = instructions(stream)
    tuples = [i for i in ins if i["type"] == "tuple_flow_var"]
    check(len(tuples) == 1, "one tuple generator, found %d" % len(tuples))
    check(tuples[0]["limit_flows"] == flows // vips,
          "tuple generator limited to %s flows, want %d" % (tuples[0]["limit_flows"], flows // vips))
    written = {i["pkt_offset"] for i in ins if i["type"] == "write_flow_var"}
    ip_src = 14 + 12
    l4_sport = 14 + 20
    check({ip_src, l4_sport} <= written,
          "field engine writes offsets %s, want source address and port" % sorted(written))
    check(any(i["type"] in ("fix_checksum_ipv4", "fix_checksum_hw") for i in ins),
          "no checksum fix-up in the field engine")
    return ins


def main():
    p = load()
    streams = p.get_streams()
    check(len(streams) == 1, "flows64: one stream")
    check_stream(streams[0], 64, 100000, "A")

    streams = load("--workload", "syn", "--flows", "1000002", "--vips", "3").get_streams()
    check(len(streams) == 1, "syn: one stream")
    ins = check_stream(streams[0], 64, 1000002, "S", vips=3)
    vip_vars = [i for i in ins if i["type"] == "flow_var" and i["name"] == "vip"]
    check(len(vip_vars) == 1, "syn with 3 VIPs: a VIP variable")
    check(vip_vars[0]["max_value"] - vip_vars[0]["min_value"] == 2, "VIP variable spans 3 VIPs")
    mode = streams[0].to_json()["mode"]
    check(mode["type"] == "single_burst" and mode["total_pkts"] == 1000002,
          "syn: each SYN once (a single burst of --flows packets), got %s" % mode)

    # The flow count the field engine really produces, run packet by packet: exactly --flows
    # over two rounds, with and without several VIPs (before, --vips 3 tripled it).
    for flows, vips in ((12, 3), (1000, 1), (1010, 5), (3002, 2)):
        s1 = load("--flows", str(flows), "--vips", str(vips)).get_streams()[0]
        got = simulate(s1, 2 * flows)
        check(got == flows, "--flows %d --vips %d: the field engine makes %d flows" % (flows, vips, got))
    for flows, vips in ((10, 3), (9, 3), (1000000, 3)):
        try:
            bad = load("--flows", str(flows), "--vips", str(vips))
        except Exception:
            bad = None
        check(bad is None, "--flows %d --vips %d cannot be exact and must be refused" % (flows, vips))

    # Pinned to one DP core unless asked: split over cores, each core steps the variables by
    # step x cores from its own start, which the simulation above does not model.
    check(all(s.to_json()["core_id"] == 0 for s in load().get_streams()), "streams pinned to core 0")
    check(load("--core", "-1").get_streams()[0].to_json()["core_id"] == -1, "--core -1: not pinned")
    check(load("--core", "2", "--workload", "imix").get_streams()[2].to_json()["core_id"] == 2,
          "--core 2: every stream on core 2")

    streams = load("--workload", "imix", "--flows", "5000").get_streams()
    check([s.get_pkt_len() for s in streams] == [64, 594, 1498], "imix: 64/594/1498-byte streams (IPIP)")
    rates = [s.to_json()["mode"]["rate"]["value"] for s in streams]
    check(rates == [7, 4, 1], "imix: 7:4:1 packet shares, got %s" % rates)
    for s, size in zip(streams, (64, 594, 1498)):
        check_stream(s, size, 5000, "A")
    streams = load("--workload", "imix", "--encap", "none").get_streams()
    check([s.get_pkt_len() for s in streams] == [64, 594, 1518], "imix --encap none: 1518")

    streams = load("--proto", "udp", "--dport", "53", "--l4-checksum", "hw").get_streams()
    ins = check_stream(streams[0], 64, 100000, None, dport=53, proto=UDP)
    check(any(i["type"] == "fix_checksum_hw" for i in ins), "--l4-checksum hw: hardware fix-up")

    # A bad tunable is refused (argparse exits; TRex reports it and loads nothing).
    try:
        bad = load("--workload", "syn", "--proto", "udp")
    except Exception:  # TRex wraps the error
        bad = None
    check(bad is None, "syn over udp must be refused")

    json.dumps(load("--workload", "imix").to_json())
    print("check_profile: TRex profile OK (flows64, syn, imix, udp; streams compiled)")


if __name__ == "__main__":
    sys.exit(main())
