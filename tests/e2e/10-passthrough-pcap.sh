#!/usr/bin/env bash
# Pass-through forwarder over net_pcap: 10,000 distinct frames in from an rx_pcap file,
# the same 10,000 frames out to a tx_pcap file, byte for byte and in order.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=10000
work=$(mktemp -d /tmp/sluice-e2e-pcap.XXXXXX)
trap 'rm -rf "$work" "/var/run/dpdk/sluice-e2e-pcap-$$"' EXIT

cargo build --release -q -p dataplane --features dpdk --example passthrough
bin="${CARGO_TARGET_DIR:-target}/release/examples/passthrough"

# Frames: Ethernet/IPv4/UDP between documentation addresses, lengths 60..1514 plus every
# 1000th a 9000-byte jumbo (net_pcap hands those over as mbuf chains), each carrying its
# index so a reorder, loss or duplicate is visible.
python3 - "$work/in.pcap" "$N" <<'PY'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(n):
        size = 9000 if i % 1000 == 999 else 60 + (i * 37) % 1455
        payload_len = size - 14 - 20 - 8
        payload = bytes(((i + k) * 131) & 0xff for k in range(payload_len))
        payload = struct.pack(">I", i) + payload[4:]
        udp = struct.pack(">HHHH", 1024 + i % 1000, 53, 8 + payload_len, 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0,
                         bytes([192, 0, 2, 1 + i % 200]), bytes([198, 51, 100, 10]))
        eth = bytes.fromhex("020000000002" "020000000001" "0800")
        frame = eth + ip + udp
        assert len(frame) == size
        f.write(struct.pack("<IIII", i // 1000, i % 1000, size, size) + frame)
PY

timeout 120 "$bin" --no-huge --no-pci -m 256 -l 0-1 --file-prefix "sluice-e2e-pcap-$$" \
  --log-level lib.eal:error \
  --vdev "net_pcap0,rx_pcap=$work/in.pcap,tx_pcap=$work/out.pcap" \
  -- --rx net_pcap0 --count "$N" --idle-exit-ms 5000 | tee "$work/out.txt"
grep -q "^passthrough: rx=$N tx=$N dropped=0$" "$work/out.txt"

python3 - "$work/in.pcap" "$work/out.pcap" "$N" <<'PY'
import struct, sys
def frames(path):
    data = open(path, "rb").read()
    magic = struct.unpack_from("<I", data)[0]
    end = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    off, out = 24, []
    while off < len(data):
        _, _, incl, orig = struct.unpack_from(end + "IIII", data, off)
        out.append(data[off + 16: off + 16 + incl])
        off += 16 + incl
    return out
a, b, n = frames(sys.argv[1]), frames(sys.argv[2]), int(sys.argv[3])
assert len(a) == n, f"input has {len(a)} frames"
assert len(b) == n, f"output has {len(b)} frames, want {n}"
for i, (x, y) in enumerate(zip(a, b)):
    assert x == y, f"frame {i} differs"
print(f"pcap pass-through: {n} frames identical")
PY
