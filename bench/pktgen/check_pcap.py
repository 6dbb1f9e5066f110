"""Checks a pcap written by `sluice.lua write-pcap`: every record an Ethernet/IPv4/TCP (or UDP)
frame of 60 bytes (64 with FCS) with correct IPv4 and L4 checksums, to one of the given VIPs,
from 203.0.113.1-251, the expected TCP flags, and exactly FLOWS distinct 5-tuples.
usage: python3 check_pcap.py FILE FLOWS S|A|U VIP[,VIP...]"""

import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def main(path, flows, kind, vips):
    vips = {bytes(int(x) for x in v.split(".")) for v in vips.split(",")}
    want_flags = {"S": 0x02, "A": 0x10, "U": None}[kind]
    data = open(path, "rb").read()
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    if magic != 0xA1B2C3D4 or link != 1:
        return "not a little-endian Ethernet pcap"
    seen, n, pos = set(), 0, 24
    while pos < len(data):
        _, _, incl, orig = struct.unpack("<IIII", data[pos:pos + 16])
        f = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        n += 1
        if incl != 60 or orig != 60 or len(f) != 60:
            return "record %d: %d bytes, want 60" % (n, incl)
        if f[12:14] != b"\x08\x00" or f[14] != 0x45:
            return "record %d: not IPv4 without options" % n
        ip = f[14:34]
        if csum(ip) != 0xFFFF:
            return "record %d: bad IPv4 header checksum" % n
        total, proto = struct.unpack("!H", ip[2:4])[0], ip[9]
        src, dst = ip[12:16], ip[16:20]
        if dst not in vips or src[:3] != bytes((203, 0, 113)) or not 1 <= src[3] <= 251:
            return "record %d: %s -> %s outside the workload's addresses" % (n, src.hex(), dst.hex())
        l4 = f[34:14 + total]
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
        if csum(pseudo + l4) != 0xFFFF:
            return "record %d: bad L4 checksum" % n
        if want_flags is None:
            if proto != 17:
                return "record %d: not UDP" % n
        elif proto != 6 or l4[13] != want_flags:
            return "record %d: TCP flags %s, want %#x" % (n, l4[13:14].hex(), want_flags)
        seen.add((src, dst, l4[0:4], proto))
    if n != flows or len(seen) != flows:
        return "%d packets, %d distinct 5-tuples, want %d of each" % (n, len(seen), flows)
    return None


if __name__ == "__main__":
    err = main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
    if err:
        sys.exit("check_pcap: %s: %s" % (sys.argv[1], err))
    print("check_pcap: %s OK" % sys.argv[1])
