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


def check_stream(stream, size, flows, flags, vip="198.51.100.10", dport=80, proto=TCP):
    pkt = Ether(stream.get_pkt())
    check(stream.get_pkt_len() == size, "frame size %d, want %d" % (stream.get_pkt_len(), size))
    check(pkt[IP].dst == vip, "destination %s, want the VIP %s" % (pkt[IP].dst, vip))
    check(pkt[proto].dport == dport, "destination port %d, want %d" % (pkt[proto].dport, dport))
    if flags is not None:
        check(str(pkt[TCP].flags) == flags, "TCP flags %s, want %s" % (pkt[TCP].flags, flags))
    ins = instructions(stream)
    tuples = [i for i in ins if i["type"] == "tuple_flow_var"]
    check(len(tuples) == 1, "one tuple generator, found %d" % len(tuples))
    check(tuples[0]["limit_flows"] == flows,
          "tuple generator limited to %s flows, want %d" % (tuples[0]["limit_flows"], flows))
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

    streams = load("--workload", "syn", "--flows", "1000000", "--vips", "3").get_streams()
    check(len(streams) == 1, "syn: one stream")
    ins = check_stream(streams[0], 64, 1000000, "S")
    vip_vars = [i for i in ins if i["type"] == "flow_var" and i["name"] == "vip"]
    check(len(vip_vars) == 1, "syn with 3 VIPs: a VIP variable")
    check(vip_vars[0]["max_value"] - vip_vars[0]["min_value"] == 2, "VIP variable spans 3 VIPs")

    streams = load("--workload", "imix", "--flows", "5000").get_streams()
    check([s.get_pkt_len() for s in streams] == [64, 594, 1518], "imix: 64/594/1518-byte streams")
    rates = [s.to_json()["mode"]["rate"]["value"] for s in streams]
    check(rates == [7, 4, 1], "imix: 7:4:1 packet shares, got %s" % rates)
    for s, size in zip(streams, (64, 594, 1518)):
        check_stream(s, size, 5000, "A")

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
