#!/usr/bin/env python3
"""HTTP/2 benchmark: h2load over TLS (ALPN h2), 10 clients x 10 concurrent streams, a 100 B
file and a 1 KiB page, then a 10 MiB file downloaded by 4 clients with large windows (-w 30
-W 30, one stream each), against nginx (`listen ... ssl http2`), lighttpd (mod_openssl, HTTP/2
on by default), static-web-server (`--http2`) and Caddy, when installed, with the certificate,
pinning and alternation of tls.py; reports req/s (GiB/s for the download), server CPU per
request (per transfer) and the slowest request, each the median of the rounds. A run that
fails or stalls (h2load is bounded by a timeout) is reported as failed, not fatal.

Then the bundled /page_four with its style sheet and images, loaded by curl (a) over one
HTTP/2 connection, multiplexed, and (b) over HTTP/1.1 with up to six connections, as browsers
do; tws alone (and tws-before), the median of 50 loads each.
With `--before BIN`, an earlier tws build runs beside tws as "tws-before" (see harness.py).
Usage: bench/h2.py [--rounds N] [--duration S] [--tws BIN] [--before BIN]"""

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
from harness import free_port

# (label, path, h2load options, metric): "rate" is req/s, "bytes" GiB/s of response bodies.
SCENARIOS = [("100 B file", "/small.txt", ["-c10", "-m10"], "rate"),
             ("1 KiB page", "/page.html", ["-c10", "-m10"], "rate"),
             ("100 B file, -c1 -m100", "/small.txt", ["-c1", "-m100"], "rate"),
             ("1 KiB page, -c1 -m100", "/page.html", ["-c1", "-m100"], "rate"),
             ("10 MiB file, -c4 -w30 -W30", "/big.bin", ["-c4", "-m1", "-w30", "-W30"], "bytes")]
SIZES = {"/big.bin": 10 * 1024 * 1024}  # as harness.make_site writes it
# h2load gets this many seconds past its warm-up and duration before it is killed as stalled.
GRACE = 20


class Failed(Exception):
    """A run that failed or stalled: reported as such, the benchmark goes on."""


def run_h2load(url, seconds, options):
    argv = ["h2load", *options, "-t1", "-D", str(seconds), "--warm-up-time=1", url]
    try:
        proc = subprocess.run(harness.pinned(argv), capture_output=True, text=True,
                              timeout=seconds + 1 + GRACE)
    except subprocess.TimeoutExpired:
        raise Failed(f"timeout: h2load still running {GRACE} s past its {seconds} s")
    out = proc.stdout
    finished = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                     r"(\d+) errored, (\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if proc.returncode or not (finished and done and codes):
        last = (proc.stderr.strip() or out.strip() or "no output").splitlines()[-1]
        raise Failed(f"h2load exit {proc.returncode}: {last}")
    if "h2" not in (out.split("Application protocol:")[1:] or [""])[0].split("\n")[0]:
        raise Failed("not HTTP/2")
    succeeded, failed, errored = (int(done.group(i)) for i in (4, 5, 6))
    if not (succeeded or failed or errored):
        raise Failed(f"stalled: no request answered in the {seconds} s measured")
    if failed or errored or int(codes.group(3)) or int(codes.group(4)) or not succeeded:
        raise Failed(f"{succeeded} succeeded, {failed} failed, {errored} errored, "
                     f"{codes.group(3)} 4xx, {codes.group(4)} 5xx")
    p99 = None
    latency = re.search(r"time for request:\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)", out)
    if latency:
        p99 = harness.parse_latency(latency.group(3) + latency.group(4))  # max as the tail
    # req/s and `succeeded` cover the measured period only; "finished in" counts the warm-up
    # second too, so the rate is the figure to use.
    return {"requests": succeeded, "rate": float(finished.group(3)), "p99_ms": p99 or 0.0}


def measure(server, path, options, kind, seconds):
    """One h2load run; adds server CPU per request (µs) and GiB/s, or {"error": why}."""
    before = server.cpu_seconds()
    try:
        result = run_h2load(f"https://127.0.0.1:{server.port}{path}", seconds, options)
    except Failed as e:
        return {"error": str(e)}
    result["cpu_us"] = (server.cpu_seconds() - before) / max(result["requests"], 1) * 1e6
    if kind == "bytes":  # bodies of the transfers completed per second of the measured period
        result["gib_s"] = result["rate"] * SIZES[path] / 1024**3
    return result


def value(res, kind):
    """The row's figure for one run (None when it failed)."""
    if "error" in res:
        return None
    return res["gib_s"] if kind == "bytes" else res["rate"]


def caddy_tls(base, site, cert, key):
    """Caddy serving the site over TLS with the same certificate (HTTP/2 on by default)."""
    port = free_port()
    conf = base / "Caddyfile-h2"
    conf.write_text(f"""{{
  admin off
  auto_https off
}}
https://127.0.0.1:{port} {{
  tls {cert} {key}
  root * {site}
  file_server
}}
""")
    return harness.Server("caddy", ["caddy", "run", "--config", str(conf), "--adapter", "caddyfile"], port, base)


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
    parser.add_argument("--no-slow-peers", action="store_true",
                        help="leave out static-web-server and caddy (a quarter of lighttpd's rate here)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "RESULTS-H2.md"))
    harness.binary_args(parser)
    args = parser.parse_args()
    binaries = harness.use_binaries(args)
    for tool in ["h2load", "nginx"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (apt-get install nghttp2-client nginx)")
    base = Path(tempfile.mkdtemp(prefix="tws-h2-bench-"))
    base.chmod(0o755)  # nginx and lighttpd workers run as another user
    site = harness.make_site(base)
    cert, key = tls.make_cert(base)
    makers = [(name, lambda binary=binary, name=name: tls.tws_tls(base, site, cert, key, binary, name))
              for name, binary in binaries]
    makers += [("nginx", lambda: tls.nginx_tls(base, site, cert, key, http2=True)),
               ("lighttpd", lambda: tls.lighttpd_tls(base, site, cert, key))]
    if shutil.which("static-web-server") and not args.no_slow_peers:
        makers.append(("static-web-server", lambda: tls.sws_tls(base, site, cert, key)))
    if shutil.which("caddy") and not args.no_slow_peers:
        makers.append(("caddy", lambda: caddy_tls(base, site, cert, key)))
    results = {}
    for r in range(args.rounds):
        order = makers if r % 2 == 0 else list(reversed(makers))
        for name, make in order:
            server = make()
            server.start()
            try:
                # The download last: a server that stalls on it leaves the other rows unharmed.
                for label, path, options, kind in SCENARIOS:
                    res = measure(server, path, options, kind, args.duration)
                    results.setdefault((name, label), []).append(res)
                    if "error" in res:
                        print(f"round {r + 1}: {name} {label}: FAILED ({res['error']})", flush=True)
                    elif kind == "bytes":
                        print(f"round {r + 1}: {name} {label}: {res['gib_s']:.2f} GiB/s, "
                              f"{res['cpu_us'] / 1000:.2f} ms CPU/transfer", flush=True)
                    else:
                        print(f"round {r + 1}: {name} {label}: {res['rate']:,.0f} req/s, "
                              f"{res['cpu_us']:.2f} us CPU/req", flush=True)
            finally:
                server.stop()
    # The bundled page over one HTTP/2 connection and over six HTTP/1.1 ones, for each tws.
    loads = {}
    for name, binary in binaries:
        port = free_port()
        bundle = harness.Server(name, [str(binary), "--config", str(harness.REPO / "routes.toml"),
                                       "--port", str(port), "--data", str(base / f"data-{port}"),
                                       "--log-format", "off", "--tls-cert", str(cert), "--tls-key", str(key)],
                                port, harness.REPO)
        bundle.start()
        try:
            loads[name] = (page_load(port, cert, True), page_load(port, cert, False))
        finally:
            bundle.stop()
    text = render(args, [n for n, _ in makers], results, loads)
    harness.write_report(Path(args.out), text)
    print(text)
    shutil.rmtree(base, ignore_errors=True)


def render(args, names, results, loads):
    tws_names = [n for n in ("tws", harness.BEFORE) if n in names]
    peers = [n for n in names if n not in tws_names]
    has_before = harness.BEFORE in names
    lines = ["# HTTP/2 benchmark", "",
             f"`bench/h2.py --rounds {args.rounds} --duration {args.duration}{harness.binaries_note(args)}`: "
             f"{harness.machine_description()}. h2load over TLS 1.3 (ALPN h2): -c10 -m10 for the small "
             "files, and -c1 -m100 (one connection, 100 streams at once); 4 clients, one stream each, windows of 2^30-1 (-w30 -W30) for the 10 MiB download. "
             f"Server pinned to CPU {harness.SERVER_CPU}, h2load to CPU {harness.LOAD_CPU}; servers "
             f"alternate; medians of {args.rounds} rounds; ratios per round, with their range. h2load "
             f"is killed {GRACE} s after its run should have ended; such a run, or one with failed "
             "requests, is counted as failed.", "",
             "| scenario | " + " | ".join(names) + " | tws / best peer |"
             + (f" tws / {harness.BEFORE} |" if has_before else ""),
             "|---" * (len(names) + 2 + has_before) + "|"]
    before_rows = []
    for label, _, _, kind in SCENARIOS:
        unit = "GiB/s" if kind == "bytes" else "req/s"
        cells = []
        for n in names:
            rs = results[(n, label)]
            ok = [x for x in rs if "error" not in x]
            if not ok:
                cells.append("failed: " + "; ".join(sorted({x["error"] for x in rs})))
                continue
            v = statistics.median(value(x, kind) for x in ok)
            cpu = statistics.median(x["cpu_us"] for x in ok)
            cell = (f"{v:.2f} ({cpu / 1000:.2f} ms CPU/transfer)" if kind == "bytes"
                    else f"{v:,.0f} ({cpu:.2f} µs CPU)")
            if len(ok) < len(rs):
                cell += f", {len(rs) - len(ok)} of {len(rs)} runs failed"
            cells.append(cell)

        def ratio(others):
            per = []
            for i in range(args.rounds):
                a = value(results[("tws", label)][i], kind)
                bs = [value(results[(n, label)][i], kind) for n in others]
                bs = [b for b in bs if b]
                if a is not None and bs:
                    per.append(a / max(bs))
            return f"{statistics.median(per):.2f}x ({min(per):.2f}-{max(per):.2f})" if per else "-"

        lines.append(f"| {label} ({unit}) | " + " | ".join(cells) + f" | {ratio(peers)} |"
                     + (f" {ratio([harness.BEFORE])} |" if has_before else ""))
        if has_before:
            before_rows.append((f"{label} ({unit})", *[[value(x, kind) for x in results[(n, label)]]
                                                       for n in ("tws", harness.BEFORE)],
                                "{:.2f}" if kind == "bytes" else "{:,.0f}"))
    h2_ms, h1_ms = loads["tws"]
    lines += ["", f"/page_four with its style sheet and two images (curl, median of 50 loads): "
              f"{h2_ms:.1f} ms over one HTTP/2 connection, {h1_ms:.1f} ms over HTTP/1.1 with up to six "
              "connections (each load opens its connections and does its TLS handshakes)"
              + (f"; {harness.BEFORE}: {loads[harness.BEFORE][0]:.1f} ms and {loads[harness.BEFORE][1]:.1f} ms."
                 if harness.BEFORE in loads else ".")]
    if before_rows:
        lines += ["", f"tws against {harness.BEFORE} (the build given with `--before`), over the same rounds:", "",
                  *harness.before_table(before_rows)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
