#!/usr/bin/env python3
"""bench/run.sh against stand-ins for sluice-gen and dpdk-testpmd (no DPDK, a few seconds): the
generator's arguments per scenario. usage: python3 bench/tests/test_run_sh.py"""
import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "..", "run.sh")

# A stand-in generator: binds the memif socket, says ready, waits for --wait-for, prints a result
# whose prewarm counts say whether it was asked to prewarm, holds until SIGTERM.
GEN = r'''#!/usr/bin/env python3
import json, os, signal, socket, sys, time
argv = sys.argv[1:]
vdev = argv[argv.index("--vdev") + 1]
sock = dict(kv.split("=", 1) for kv in vdev.split(",")[1:] if "=" in kv)["socket"]
s = socket.socket(socket.AF_UNIX); s.bind(sock); s.listen(1)
app = argv[argv.index("--") + 1:]
opt = lambda k: app[app.index(k) + 1]
flows = int(opt("--flows")); prewarm = flows if "--prewarm" in app else 0
print("sluice-gen: ready", file=sys.stderr, flush=True)
while not os.path.exists(opt("--wait-for")): time.sleep(0.05)
n = 1000
print(json.dumps({"mode": opt("--mode"), "frame_size": 64, "flows": flows, "rate_asked_pps": int(opt("--rate")),
    "sent": n, "received": n, "lost": 0, "duration_s": 1.0, "tx_pps": n, "rx_pps": n,
    "latency_ns": {"count": n, "p50": 1000, "p99": 2000, "p99.9": 3000, "max": 4000},
    "per_backend": {"02:00:00:00:00:02": n}, "prewarm": {"sent": prewarm, "received": prewarm}}), flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True: time.sleep(0.1)
'''
PMD = r'''#!/usr/bin/env python3
import signal, sys, time
def stop(*_):
    print("  CPU cycles/packet=150.00 (busy cycles=150000 / total io packets=1000) at 2000 MHz Clock", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True: time.sleep(0.1)
'''


def run(scenarios):
    with tempfile.TemporaryDirectory() as d:
        for name, text in (("sluice-gen", GEN), ("dpdk-testpmd", PMD), ("sluice", "#!/bin/sh\nexit 1\n")):
            p = os.path.join(d, name)
            open(p, "w").write(text)
            os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR)
        out = os.path.join(d, "out", "t.jsonl")
        env = dict(os.environ, PATH=d + ":" + os.environ["PATH"], SLUICE=os.path.join(d, "sluice"),
                   SLUICE_GEN=os.path.join(d, "sluice-gen"), OUT=out, REPEATS="1", SECONDS_PER_RUN="1",
                   SCENARIOS=scenarios, LAT_RATE="1000")
        r = subprocess.run(["bash", RUN], env=env, capture_output=True, text=True, timeout=120)
        if not os.path.exists(out):
            raise AssertionError("run.sh failed:\n" + r.stderr[-3000:])
        return {row["run"]: row for row in map(json.loads, open(out))}


class RunSh(unittest.TestCase):
    def test_testpmd_latency_runs_are_prewarmed_like_sluices(self):
        # The latency comparison (sluice's added p99.9 over testpmd io) needs both forwarders
        # forwarding before the measured phase: testpmd flushes its rx queues when it starts.
        rows = run("latency-testpmd-io testpmd-io")
        self.assertGreater(rows["latency-testpmd-io"]["prewarm"]["sent"], 0,
                           "testpmd's latency run measured its start-up (no prewarm)")
        # Throughput runs stay unprewarmed: testpmd's busy cycles cover its whole life.
        self.assertEqual(rows["testpmd-io"]["prewarm"]["sent"], 0)
        self.assertEqual(rows["testpmd-io"]["busy_ns_per_packet"], 75.0)


if __name__ == "__main__":
    unittest.main()
