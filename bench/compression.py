#!/usr/bin/env python3
"""Compression benchmark: a 64 KiB JavaScript file of real text (the first 64 KiB of minified
jQuery 3.7.1, fetched with npm; generated JavaScript when npm is missing) requested with
`Accept-Encoding: gzip, br` over keep-alive, against nginx (`gzip on`), static-web-server
(compression on), Caddy (`encode zstd gzip`) and lighttpd (mod_deflate with its cache
folder, which compresses once and serves the stored copy). Same pinning and alternation as
harness.py; reports req/s, the coding and bytes per response (head included), and server CPU
per request. With `--before BIN`, an earlier tws build runs beside tws as "tws-before" (see
harness.py). Usage: bench/compression.py [--rounds N] [--duration S] [--tws BIN] [--before BIN]"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import harness
from harness import Server, free_port


def javascript(base):
    """The first 64 KiB of jquery.min.js, or generated JavaScript."""
    try:
        subprocess.run(["npm", "pack", "jquery@3.7.1", "--silent"], cwd=base, check=True,
                       capture_output=True, timeout=120)
        subprocess.run(["tar", "xzf", "jquery-3.7.1.tgz"], cwd=base, check=True)
        text = (base / "package" / "dist" / "jquery.min.js").read_bytes()
        return text[:65536], "jQuery 3.7.1 (minified), first 64 KiB"
    except (OSError, subprocess.SubprocessError):
        lines = b"".join(b"function f%d(a,b){return a*%d+b;}var v%d=f%d(%d,2);" % (i, i % 7, i, i, i)
                         for i in range(3000))
        return lines[:65536], "generated JavaScript, 64 KiB"


def tws(base, site, binary=None, name="tws"):
    port = free_port()
    return Server(name, [str(binary or harness.TWS), "--root", str(site), "--port", str(port), "--log-format", "off"],
                  port, base)


def nginx(base, site):
    directives = """  sendfile on;
  keepalive_requests 10000000;
  gzip on;
  gzip_types application/javascript text/css application/json;
"""
    return harness.nginx(base, "nginx", "nginx-gzip", directives,
                         f"    listen 127.0.0.1:{{port}};\n    root {site};\n")


def sws(base, site):
    port = free_port()
    argv = ["static-web-server", "--host", "127.0.0.1", "--port", str(port), "--root", str(site),
            "--compression", "true", "--log-level", "error"]
    return Server("static-web-server", argv, port, base)


def caddy(base, site):
    port = free_port()
    conf = base / "Caddyfile"
    conf.write_text(f"""{{
  admin off
  auto_https off
}}
http://127.0.0.1:{port} {{
  root * {site}
  encode zstd gzip
  file_server
}}
""")
    return Server("caddy", ["caddy", "run", "--config", str(conf), "--adapter", "caddyfile"], port, base)


def lighttpd(base, site):
    port = free_port()
    cache = base / "lighttpd-deflate-cache"
    cache.mkdir(exist_ok=True)
    conf = base / "lighttpd-deflate.conf"
    conf.write_text(f"""server.document-root = "{site}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ("mod_deflate")
deflate.mimetypes = ("application/javascript", "text/")
deflate.allowed-encodings = ("brotli", "gzip", "deflate")
deflate.cache-dir = "{cache}"
server.max-keep-alive-requests = 65535
server.errorlog = "{base}/lighttpd-deflate-error.log"
mimetype.assign = (".js" => "application/javascript", "" => "application/octet-stream")
""")
    return Server("lighttpd", ["lighttpd", "-D", "-f", str(conf)], port, base)


def probe(server):
    """The coding and the bytes of one response, head included."""
    req = urllib.request.Request(server.url("/app.js"), headers={"Accept-Encoding": "gzip, br"})
    with urllib.request.urlopen(req) as r:
        body = r.read()
        head = sum(len(k) + len(v) + 4 for k, v in r.getheaders()) + len("HTTP/1.1 200 OK\r\n\r\n")
        return r.headers.get("Content-Encoding", "identity"), len(body) + head


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--output", default=str(harness.REPO / "bench" / "RESULTS-COMPRESSION.md"))
    harness.binary_args(parser)
    args = parser.parse_args()
    binaries = harness.use_binaries(args)
    base = Path(tempfile.mkdtemp(prefix="tws-bench-gz-"))
    base.chmod(0o755)
    site = base / "site"
    site.mkdir()
    data, source = javascript(base)
    (site / "app.js").write_bytes(data)
    lua = base / "ae.lua"
    lua.write_text('wrk.headers["Accept-Encoding"] = "gzip, br"\n')
    servers = [tws(base, site, binary, name) for name, binary in binaries]
    servers += [m(base, site) for m in (nginx, lighttpd, sws, caddy)
                if shutil.which({"nginx": "nginx", "lighttpd": "lighttpd",
                                 "sws": "static-web-server", "caddy": "caddy"}[m.__name__])]
    scenario = {"name": "64 KiB JavaScript, Accept-Encoding: gzip, br (req/s)", "kind": "wrk",
                "path": "/app.js", "conns": 50, "script": lua}
    results = {s.name: [] for s in servers}
    probes = {}
    try:
        for server in servers:
            server.start()
            for _ in range(3):  # let compress-once servers make their copy
                probes[server.name] = probe(server)
        for rnd in range(args.rounds):
            order = servers[rnd % len(servers):] + servers[: rnd % len(servers)]
            for server in order:
                r = harness.measure(server, scenario, args.duration)
                results[server.name].append(r)
                print(f"round {rnd + 1} {server.name:<18} {r['rate']:>10,.0f} req/s  cpu {r['cpu_us']:.1f} us/req")
    finally:
        for server in servers:
            server.stop()
    lines = [
        "# Compression benchmark results",
        "",
        f"File: {source}. Request: `Accept-Encoding: gzip, br`, wrk -c50 keep-alive, "
        f"{args.rounds} rounds x {args.duration} s, server on CPU {harness.SERVER_CPU}, wrk on CPU "
        f"{harness.LOAD_CPU}, servers alternating; medians, and tws's ratio taken per round"
        + (" (`--before BIN`)." if args.before else "."),
        "",
        "| server | req/s | tws/server | coding | bytes per response | server CPU per request (µs) |",
        "|---|---|---|---|---|---|",
    ]
    tws_rates = [r["rate"] for r in results.get("tws", [])]
    for server in servers:
        rs = results[server.name]
        rate = statistics.median(r["rate"] for r in rs)
        ratios = [a / b["rate"] for a, b in zip(tws_rates, rs)]
        ratio = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "-"
        coding, size = probes[server.name]
        cpu = statistics.median(r["cpu_us"] for r in rs)
        lines.append(f"| {server.name} | {rate:,.0f} | {ratio} | {coding} | {size:,} | {cpu:.1f} |")
    if harness.BEFORE in results:
        lines += ["", f"tws against {harness.BEFORE} (the build given with `--before`), over the same rounds:", "",
                  *harness.before_table([(scenario["name"], tws_rates,
                                          [r["rate"] for r in results[harness.BEFORE]], "{:,.0f}")])]
    report = "\n".join(lines) + "\n"
    print(report)
    harness.write_report(Path(args.output), report)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
