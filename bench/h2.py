#!/usr/bin/env python3
"""HTTP/2 benchmark: h2load over TLS (ALPN h2), 10 clients x 10 concurrent streams, a 100 B
file and a 1 KiB page, against nginx (`listen ... ssl http2`), lighttpd (mod_openssl, HTTP/2
on by default) and static-web-server (`--http2`), with the certificate, pinning and
alternation of tls.py; reports req/s, server CPU per request and p99 per round's median.

Then the bundled /page_four with its style sheet and images, loaded by curl (a) over one
HTTP/2 connection, multiplexed, and (b) over HTTP/1.1 with up to six connections, as browsers
do; tws alone, the median of 50 loads each.
Usage: bench/h2.py [--rounds N] [--duration S]"""

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
import tls
from harness import free_port, TWS

SCENARIOS = [("100 B file", "/small.txt"), ("1 KiB page", "/page.html")]


def run_h2load(url, seconds):
    argv = ["h2load", "-c10", "-m10", "-t1", "-D", str(seconds), "--warm-up-time=1", url]
    out = subprocess.run(harness.pinned(argv), capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if int(done.group(4)) or int(codes.group(3)) or int(codes.group(4)):
        raise RuntimeError(f"{url}: {done.group(0)}; {codes.group(0)}")
    if "h2" not in out.split("Application protocol:")[1].split("\n")[0]:
        raise RuntimeError(f"{url}: not HTTP/2")
    p99 = None
    latency = re.search(r"time for request:\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)", out)
    if latency:
        p99 = harness.parse_latency(latency.group(3) + latency.group(4))  # max as the tail
    return {"requests": int(done.group(3)), "rate": rate, "p99_ms": p99 or 0.0}


def measure(server, path, seconds):
    before = server.cpu_seconds()
    result = run_h2load(f"https://127.0.0.1:{server.port}{path}", seconds)
    result["cpu_us"] = (server.cpu_seconds() - before) / max(result["requests"], 1) * 1e6
    return result


def page_load(port, cert, http2, runs=50):
    """Median milliseconds to load /page_four and its assets."""
    base = f"https://localhost:{port}"
    urls = [f"{base}/page_four", f"{base}/style.css", f"{base}/image_user_one", f"{base}/image_user_two"]
    args = ["curl", "-s", "--no-progress-meter", "--cacert", str(cert), "--parallel", "--parallel-immediate", "-o", "/dev/null",
            "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null"]
    args += ["--http2"] if http2 else ["--http1.1", "--parallel-max", "6"]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(harness.pinned(args + urls), check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--out", default=str(Path(__file__).parent / "RESULTS-H2.md"))
    args = parser.parse_args()
    if not TWS.exists():
        sys.exit(f"build first: cargo build --release ({TWS} is missing)")
    for tool in ["h2load", "nginx"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (apt-get install nghttp2-client nginx)")
    base = Path(tempfile.mkdtemp(prefix="tws-h2-bench-"))
    base.chmod(0o755)  # nginx and lighttpd workers run as another user
    site = harness.make_site(base)
    cert, key = tls.make_cert(base)
    makers = [("tws", lambda: tls.tws_tls(base, site, cert, key)),
              ("nginx", lambda: tls.nginx_tls(base, site, cert, key, http2=True)),
              ("lighttpd", lambda: tls.lighttpd_tls(base, site, cert, key))]
    if shutil.which("static-web-server"):
        makers.append(("static-web-server", lambda: tls.sws_tls(base, site, cert, key)))
    results = {}
    for r in range(args.rounds):
        order = makers if r % 2 == 0 else list(reversed(makers))
        for name, make in order:
            server = make()
            server.start()
            try:
                for label, path in SCENARIOS:
                    res = measure(server, path, args.duration)
                    results.setdefault((name, label), []).append(res)
                    print(f"round {r + 1}: {name} {label}: {res['rate']:,.0f} req/s, "
                          f"{res['cpu_us']:.2f} us CPU/req", flush=True)
            finally:
                server.stop()
    # The bundled page over one HTTP/2 connection and over six HTTP/1.1 ones.
    port = free_port()
    bundle = harness.Server("tws", [str(TWS), "--config", str(harness.REPO / "routes.toml"), "--port", str(port),
                                    "--data", str(base / "data"), "--log-format", "off",
                                    "--tls-cert", str(cert), "--tls-key", str(key)], port, harness.REPO)
    bundle.start()
    try:
        h2_ms = page_load(port, cert, True)
        h1_ms = page_load(port, cert, False)
    finally:
        bundle.stop()
    names = [n for n, _ in makers]
    lines = ["# HTTP/2 benchmark", "",
             f"`bench/h2.py --rounds {args.rounds} --duration {args.duration}`: {harness.machine_description()}. "
             f"h2load -c10 -m10 over TLS 1.3 (ALPN h2), server pinned to CPU {harness.SERVER_CPU}, h2load to "
             f"CPU {harness.LOAD_CPU}; servers alternate; medians of {args.rounds} rounds; ratios per round.", "",
             "| scenario | " + " | ".join(names) + " | tws / best peer |", "|---" * (len(names) + 2) + "|"]
    for label, _ in SCENARIOS:
        cells = []
        for n in names:
            rs = results[(n, label)]
            cells.append(f"{statistics.median(x['rate'] for x in rs):,.0f} "
                         f"({statistics.median(x['cpu_us'] for x in rs):.2f} µs CPU)")
        ratios = [results[("tws", label)][i]["rate"] / max(results[(n, label)][i]["rate"] for n in names[1:])
                  for i in range(args.rounds)]
        lines.append(f"| {label} (req/s) | " + " | ".join(cells) +
                     f" | {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |")
    lines += ["", f"/page_four with its style sheet and two images (curl, median of 50 loads): "
              f"{h2_ms:.1f} ms over one HTTP/2 connection, {h1_ms:.1f} ms over HTTP/1.1 with up to six "
              "connections (each load opens its connections and does its TLS handshakes)."]
    text = "\n".join(lines) + "\n"
    harness.write_report(Path(args.out), text)
    print(text)


if __name__ == "__main__":
    main()
