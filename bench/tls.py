#!/usr/bin/env python3
"""HTTPS benchmark: tws against nginx (ssl), lighttpd (mod_openssl) and static-web-server
(rustls), all with one ECDSA P-256 certificate made here, session tickets on, keep-alive, one
worker. Same pinning and alternation as harness.py (server on CPU 0, load on CPU 1); reports
req/s (or GiB/s), server CPU per request, per byte and per handshake, p99.

Scenarios: 100 B and 1 KiB keep-alive (wrk), a 10 MiB file over 4 connections (wrk), new TLS
connections with one request each resumed by the client (wrk with Connection: close, which
reuses its TLS session), and full handshakes (ab -f TLS1.3, one request per connection; ab
saturates its own CPU, so server CPU per handshake is the figure that counts).
With `--before BIN`, an earlier tws build runs beside tws as "tws-before" (see harness.py).
Usage: bench/tls.py [--rounds N] [--duration S] [--only TEXT] [--tws BIN] [--before BIN]"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import harness
from harness import Server, free_port

SCENARIOS = [
    {"name": "HTTPS 100 B file, keep-alive (req/s)", "kind": "wrk", "path": "/small.txt", "conns": 50},
    {"name": "HTTPS 1 KiB page, keep-alive (req/s)", "kind": "wrk", "path": "/page.html", "conns": 50},
    {"name": "HTTPS 10 MiB file, 4 connections (GiB/s)", "kind": "wrk", "path": "/big.bin", "conns": 4, "metric": "bytes"},
    {"name": "HTTPS resumed handshake + 100 B, wrk Connection: close (conn/s)", "kind": "wrk", "path": "/small.txt",
     "conns": 20, "script": "close"},
    {"name": "HTTPS full handshake + 100 B, ab TLS1.3 (conn/s)", "kind": "ab", "path": "/small.txt", "conns": 20,
     "n": 6000, "tls": "TLS1.3"},
]


def make_cert(base):
    key, cert = base / "key.pem", base / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    key.chmod(0o644)
    return cert, key


def tws_tls(base, site, cert, key, binary=None, name="tws"):
    port = free_port()
    argv = [str(binary or harness.TWS), "--root", str(site), "--port", str(port), "--log-format", "off",
            "--tls-cert", str(cert), "--tls-key", str(key)]
    return Server(name, argv, port, base)


def nginx_tls(base, site, cert, key, http2=False):
    directives = "  sendfile on;\n" + harness.NGINX_KEEPALIVE + """  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_tickets on;
  ssl_session_cache shared:SSL:10m;
  ssl_prefer_server_ciphers on;
"""
    server = (f"    listen 127.0.0.1:{{port}} ssl{' http2' if http2 else ''};\n"
              f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    root {site};\n")
    return harness.nginx(base, "nginx", "nginx-h2" if http2 else "nginx-tls", directives, server)


def lighttpd_tls(base, site, cert, key):
    port = free_port()
    conf = base / "lighttpd-tls.conf"
    conf.write_text(f"""server.document-root = "{site}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ("mod_openssl")
ssl.engine = "enable"
ssl.pemfile = "{cert}"
ssl.privkey = "{key}"
ssl.openssl.ssl-conf-cmd = ("MinProtocol" => "TLSv1.2", "Options" => "ServerPreference")
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 120
server.max-connections = 8192
server.errorlog = "{base}/lighttpd-tls-error.log"
mimetype.assign = (".html" => "text/html", ".txt" => "text/plain", ".jpg" => "image/jpeg", "" => "application/octet-stream")
""")
    return Server("lighttpd", ["lighttpd", "-D", "-f", str(conf)], port, base)


def sws_tls(base, site, cert, key):
    port = free_port()
    argv = ["static-web-server", "--host", "127.0.0.1", "--port", str(port), "--root", str(site),
            "--compression", "false", "--log-level", "error",
            "--http2", "true", "--http2-tls-cert", str(cert), "--http2-tls-key", str(key)]
    return Server("static-web-server", argv, port, base)


def run_ab_tls(url, n, c, protocol):
    argv = ["ab", "-q", "-f", protocol, "-n", str(n), "-c", str(c), url]
    out = subprocess.run(harness.pinned(argv), capture_output=True, text=True, check=True).stdout
    import re
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    if failed:
        raise RuntimeError(f"{url}: {failed} failed")
    p99 = float(re.search(r"\n\s+99%\s+(\d+)", out).group(1))
    return {"requests": n, "rate": rate, "bytes": 0.0, "p99_ms": p99}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--only", help="run scenarios whose name contains this text")
    parser.add_argument("--servers", default="tws,nginx,lighttpd,static-web-server")
    parser.add_argument("--output", default=str(harness.REPO / "bench" / "RESULTS-TLS.md"))
    harness.binary_args(parser)
    args = parser.parse_args()
    binaries = harness.use_binaries(args)
    base = Path(tempfile.mkdtemp(prefix="tws-bench-tls-"))
    base.chmod(0o755)
    site = harness.make_site(base)
    cert, key = make_cert(base)
    close_lua = base / "close.lua"
    close_lua.write_text('wrk.headers["Connection"] = "close"\n')
    makers = {"nginx": nginx_tls, "lighttpd": lighttpd_tls, "static-web-server": sws_tls}
    for name, binary in binaries:
        makers[name] = lambda *a, binary=binary, name=name: tws_tls(*a, binary=binary, name=name)
    wanted = args.servers.split(",")
    if "tws" in wanted and args.before:
        wanted.insert(wanted.index("tws") + 1, harness.BEFORE)
    servers = [makers[name](base, site, cert, key) for name in wanted
               if name != "static-web-server" or shutil.which("static-web-server")]
    for server in servers:
        server.url = lambda path, port=server.port: f"https://127.0.0.1:{port}{path}"
    scenarios = [dict(s) for s in SCENARIOS if not args.only or args.only in s["name"]]
    for s in scenarios:
        if s.get("script") == "close":
            s["script"] = close_lua
    # harness.measure runs ab without TLS options: route TLS ab runs through run_ab_tls.
    plain_ab = harness.run_ab
    results, idle_rss = {}, {}
    try:
        for server in servers:
            server.start()
            idle_rss[server.name] = server.rss_kib()
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}")
            for scenario in scenarios:
                harness.run_ab = (lambda url, n, c, p=scenario.get("tls"): run_ab_tls(url, n, c, p)) \
                    if scenario.get("tls") else plain_ab
                order = servers[rnd % len(servers):] + servers[: rnd % len(servers)]
                for server in order:
                    r = harness.measure(server, scenario, args.duration)
                    results.setdefault((scenario["name"], server.name), []).append(r)
                    print(f"  {scenario['name']:<60} {server.name:<18} "
                          f"{harness.fmt(harness.metric(scenario, r), scenario):>10}  "
                          f"p99 {r['p99_ms']:.2f} ms  cpu {r['cpu_us']:.2f} us")
    finally:
        for server in servers:
            server.stop()
    report = harness.render(args, servers, scenarios, results, idle_rss, None)
    report = report.replace("# Benchmark results", "# HTTPS benchmark results", 1)
    report = report.replace("`bench/run.sh", "`bench/tls.py", 1)
    print(report)
    harness.write_report(Path(args.output), report)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
