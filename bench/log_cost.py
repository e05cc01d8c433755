#!/usr/bin/env python3
"""What the access log costs: tws with the log off against tws logging every request to a file,
on the 100 B keep-alive scenario of harness.py. Same pinning as the harness (server on CPU 0,
wrk on CPU 1); the two servers alternate within each round, the ratio is taken per round and
the report gives medians. Usage: bench/log_cost.py [--rounds N] [--duration S]"""

import argparse
import statistics
import tempfile
from pathlib import Path

import harness


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tws-logcost-"))
    site = harness.make_site(base)
    log = base / "access.log"
    servers = [harness.tws_server(base, site), harness.tws_server(base, site, log_file=log)]
    scenario = harness.SCENARIOS[0]
    rows = {s.name: [] for s in servers}
    for s in servers:
        s.start()
    try:
        for rnd in range(args.rounds):
            order = servers if rnd % 2 == 0 else servers[::-1]
            for s in order:
                r = harness.measure(s, scenario, args.duration)
                rows[s.name].append(r)
                print(f"round {rnd + 1} {s.name:<14} {r['rate']:>10,.0f} req/s  "
                      f"cpu {r['cpu_us']:.2f} us/req  p99 {r['p99_ms']:.2f} ms")
    finally:
        for s in servers:
            s.stop()
    off, on = rows["tws"], rows["tws log=file"]
    ratios = [b["rate"] / a["rate"] for a, b in zip(off, on)]
    lines = log.read_bytes().count(b"\n") if log.exists() else 0
    print()
    print(f"{scenario['name']}, {args.rounds} rounds x {args.duration} s:")
    print(f"  log off:     {statistics.median(r['rate'] for r in off):,.0f} req/s, "
          f"{statistics.median(r['cpu_us'] for r in off):.2f} us CPU/req")
    print(f"  log to file: {statistics.median(r['rate'] for r in on):,.0f} req/s, "
          f"{statistics.median(r['cpu_us'] for r in on):.2f} us CPU/req ({lines:,} lines written)")
    print(f"  ratio (file/off), median of per-round ratios: {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
