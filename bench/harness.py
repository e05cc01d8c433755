#!/usr/bin/env python3
"""Benchmark harness: tws against nginx, lighttpd and static-web-server on loopback.

Every server serves the same generated site. The server under test is pinned to one CPU and
the load generator (wrk, ab) to the other, the same for every server. Scenarios run in
alternating order for several rounds; the report gives medians, and ratios computed within
each round (so both sides of a ratio saw the same machine state) and then taken as medians.

`--tws BIN` (or TWS_BINARY) picks the tws under test; `--before BIN` (or TWS_BEFORE) adds an
earlier build as the server "tws-before", run exactly like "tws" in the same alternating rounds,
and the report gains "tws/tws-before" and a table of both binaries' ranges over the rounds.
The other bench scripts take the same two options (binary_args and use_binaries below).
"""

import argparse
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TWS = Path(os.environ.get("TWS_BINARY") or REPO / "target" / "release" / "tws")
BEFORE = "tws-before"  # the name of the earlier tws build run beside TWS (--before)
LUA = REPO / "bench" / "create_user.lua"
CPUS = os.cpu_count() or 1
SERVER_CPU = "0"
LOAD_CPU = "1" if CPUS > 1 else "0"
TICK = os.sysconf("SC_CLK_TCK")


READING = "## Reading of the results"


def binary_args(parser):
    """Adds --tws (the tws under test) and --before (an earlier build, run as "tws-before")."""
    parser.add_argument("--tws", default=str(TWS),
                        help="the tws binary under test (default: $TWS_BINARY, else target/release/tws)")
    parser.add_argument("--before", default=os.environ.get("TWS_BEFORE"), metavar="BIN",
                        help=f"an earlier tws binary, run as '{BEFORE}' exactly like tws in the same "
                             "rounds (default: $TWS_BEFORE)")


def use_binaries(args):
    """Makes --tws the TWS every script starts; returns [(name, binary)]: ("tws", TWS), then
    (BEFORE, its binary) when --before is given. Exits if one is missing."""
    global TWS
    TWS = Path(args.tws).resolve()
    out = [("tws", TWS)]
    if getattr(args, "before", None):
        out.append((BEFORE, Path(args.before).resolve()))
    for name, binary in out:
        if not binary.exists():
            sys.exit(f"{name}: {binary} is missing (build first: cargo build --release)")
    return out


def binaries_note(args):
    """The command-line part naming the binaries, for a report's run line."""
    return " --before BIN" if getattr(args, "before", None) else ""


def range_text(values, f="{:,.0f}"):
    return f"{f.format(min(values))}-{f.format(max(values))}" if values else "-"


def before_table(rows):
    """Markdown lines comparing tws with tws-before, one line per row: each binary's median and
    range over the rounds, the ratio tws/tws-before per round (median and range), and whether
    tws's range lies above, overlaps or lies below tws-before's (every row: higher is better).
    rows: [(label, tws values per round, tws-before values per round, number format)], where a
    value is None for a round that failed."""
    lines = ["| row | tws: median (range) | tws-before: median (range) | tws/tws-before (range) | tws against tws-before's range |",
             "|---|---|---|---|---|"]
    for label, after, before, f in rows:
        a = [v for v in after if v is not None]
        b = [v for v in before if v is not None]
        ratios = [x / y for x, y in zip(after, before) if x is not None and y]
        if not a:
            verdict = "tws failed"
        elif not b:
            verdict = "tws-before failed"
        elif max(a) < min(b):
            verdict = "**worse: outside its range**"
        elif min(a) > max(b):
            verdict = "better: outside its range"
        else:
            verdict = "overlaps"

        def cell(vs, runs):
            if not vs:
                return "failed"
            failed = f", {len(runs) - len(vs)} of {len(runs)} runs failed" if len(vs) < len(runs) else ""
            return f"{f.format(statistics.median(vs))} ({range_text(vs, f)}{failed})"

        lines.append(f"| {label} | {cell(a, after)} | {cell(b, before)} | "
                     + (f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else "-")
                     + f" | {verdict} |")
    return lines


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def make_site(base: Path):
    site = base / "site"
    (site / "dir1000").mkdir(parents=True)
    (site / "small.txt").write_bytes(b"x" * 99 + b"\n")
    page = b"<!DOCTYPE html><html><head><title>bench</title></head><body>"
    page += b"<p>" + b"lorem ipsum " * 78 + b"</p></body></html>\n"
    (site / "page.html").write_bytes(page[:1024])
    (site / "image.jpg").write_bytes(os.urandom(100 * 1024))
    (site / "big.bin").write_bytes(os.urandom(10 * 1024 * 1024))
    for i in range(1000):
        (site / "dir1000" / f"file{i:04}.txt").write_bytes(b"f" * (i % 97 + 1))
    return site


class Server:
    """A server process pinned to SERVER_CPU."""

    def __init__(self, name, argv, port, workdir):
        self.name, self.argv, self.port, self.workdir = name, argv, port, workdir
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *self.argv],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        time.sleep(0.3)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def pids(self):
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        return pids

    def cpu_seconds(self):
        total = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICK

    def rss_kib(self):
        total = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def tws_server(base, site, fsync="group", log_file=None, binary=None, name="tws"):
    """tws (`binary`, default TWS) on the bench site; with `log_file`, its access log goes there
    (else off). `name` names it in reports ("tws", or BEFORE for the earlier build)."""
    port = free_port()
    data = base / f"data-{fsync}-{port}"
    routes = base / f"tws-{fsync}-{port}.toml"
    routes.write_text(
        f'[server]\nroot = "{site}"\ndata = "{data}"\nfsync = "{fsync}"\n\n'
        '[[route]]\npath = "/"\ndir = "."\nlisting = true\n\n'
        '[[route]]\npath = "/createUser"\naction = "create_user"\n'
    )
    argv = [str(binary or TWS), "--config", str(routes), "--port", str(port)]
    if log_file:
        argv += ["--access-log", str(log_file)]
        name = f"{name} log=file"
    else:
        argv += ["--log-format", "off"]
        name = name if fsync == "group" else f"{name} fsync={fsync}"
    return Server(name, argv, port, base)


def nginx(base, name, conf_name, directives, server):
    """One nginx worker without logs, with its temp files under base/conf_name, the given
    http-level directives and server block body; listens on a free port (`{port}` in
    `server`)."""
    port = free_port()
    conf_dir = base / conf_name
    conf_dir.mkdir(exist_ok=True)
    conf = conf_dir / "nginx.conf"
    temps = "".join(f"  {t}_temp_path {conf_dir}/{t};\n" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log crit;
events {{ worker_connections 8192; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
{directives}{temps}  server {{
{server.format(port=port)}  }}
}}
"""
    )
    return Server(name, ["nginx", "-c", str(conf)], port, base)


# What every keep-alive benchmark asks of nginx, past `sendfile`.
NGINX_KEEPALIVE = """  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  open_file_cache max=10000 inactive=60s;
"""


def nginx_server(base, site, sendfile):
    return nginx(base, f"nginx sendfile {sendfile}", f"nginx-{sendfile}",
                 f"  sendfile {sendfile};\n" + NGINX_KEEPALIVE + "  open_file_cache_valid 60s;\n",
                 f"    listen 127.0.0.1:{{port}};\n    root {site};\n    autoindex on;\n")


def lighttpd_server(base, site):
    port = free_port()
    conf = base / "lighttpd.conf"
    conf.write_text(
        f"""server.document-root = "{site}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules = ("mod_dirlisting")
dir-listing.activate = "enable"
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 120
server.max-connections = 8192
server.errorlog = "{base}/lighttpd-error.log"
mimetype.assign = (".html" => "text/html", ".txt" => "text/plain", ".jpg" => "image/jpeg", "" => "application/octet-stream")
"""
    )
    return Server("lighttpd", ["lighttpd", "-D", "-f", str(conf)], port, base)


def sws_server(base, site):
    """static-web-server (the best Rust peer), as its README suggests for speed: no
    compression, errors-only logging."""
    port = free_port()
    argv = ["static-web-server", "--host", "127.0.0.1", "--port", str(port), "--root", str(site),
            "--compression", "false", "--log-level", "error", "--directory-listing", "true"]
    return Server("static-web-server", argv, port, base)


def pinned(argv):
    return ["taskset", "-c", LOAD_CPU, *argv]


def run_wrk(url, conns, seconds, script=None):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", str(script)]
    out = subprocess.run(pinned(argv + [url]), capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    units = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
    bytes_per_sec = float(transfer.group(1)) * units[transfer.group(2)]
    p99 = parse_latency(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        # Error answers are cheap and would flatter a server: refuse to report them.
        raise RuntimeError(f"{url}: {errors.group(0)}")
    if socket_errors:
        print(f"    warning: {url}: {socket_errors.group(0)}")
    return {"requests": requests, "rate": rate, "bytes": bytes_per_sec, "p99_ms": p99}


def run_ab(url, n, c):
    argv = ["ab", "-q", "-n", str(n), "-c", str(c), url]
    out = subprocess.run(pinned(argv), capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if failed or non2xx:
        raise RuntimeError(f"{url}: {failed} failed, {non2xx.group(0) if non2xx else 0} non-2xx")
    p99 = float(re.search(r"\n\s+99%\s+(\d+)", out).group(1))
    return {"requests": n, "rate": rate, "bytes": 0.0, "p99_ms": p99}


def parse_latency(text):
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(server, scenario, seconds):
    """Runs one scenario; adds the server's CPU seconds per request and peak RSS."""
    peak = [server.rss_kib()]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.25):
            try:
                peak[0] = max(peak[0], server.rss_kib())
            except (FileNotFoundError, ProcessLookupError):
                return

    sampler = threading.Thread(target=sample)
    sampler.start()
    before = server.cpu_seconds()
    kind, path, conns = scenario["kind"], scenario["path"], scenario["conns"]
    if kind == "ab":
        result = run_ab(server.url(path), scenario["n"], conns)
    else:
        result = run_wrk(server.url(path), conns, seconds, scenario.get("script"))
    after = server.cpu_seconds()
    stop.set()
    sampler.join()
    result["cpu_us"] = (after - before) / max(result["requests"], 1) * 1e6
    result["rss_kib"] = peak[0]
    return result


SCENARIOS = [
    {"name": "100 B file, keep-alive (req/s)", "kind": "wrk", "path": "/small.txt", "conns": 50},
    {"name": "1 KiB page, keep-alive (req/s)", "kind": "wrk", "path": "/page.html", "conns": 50},
    {"name": "100 KiB image, keep-alive (req/s)", "kind": "wrk", "path": "/image.jpg", "conns": 50},
    {"name": "10 MiB file, 4 connections (GiB/s)", "kind": "wrk", "path": "/big.bin", "conns": 4, "metric": "bytes"},
    {"name": "100 B file, no keep-alive, ab (req/s)", "kind": "ab", "path": "/small.txt", "conns": 20, "n": 30000},
    {"name": "listing of 1000 files (req/s)", "kind": "wrk", "path": "/dir1000/", "conns": 50},
]


def metric(scenario, result):
    if scenario.get("metric") == "bytes":
        return result["bytes"] / 1024**3
    return result["rate"]


def machine_description():
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    versions = []
    for argv in (["nginx", "-v"], ["lighttpd", "-v"], ["static-web-server", "--version"],
                 [str(TWS), "--version"], ["wrk", "--version"], ["ab", "-V"]):
        try:
            out = subprocess.run(argv, capture_output=True, text=True)
            versions.append((out.stdout + out.stderr).strip().splitlines()[0])
        except FileNotFoundError:
            pass
    return (
        f"{model}, {CPUS} CPUs, {int(mem) // 1024} MiB RAM, Linux {platform.release()}; "
        + "; ".join(versions)
    )


def fmt(value, scenario):
    return f"{value:.2f}" if scenario.get("metric") == "bytes" else f"{value:,.0f}"


def write_report(path, report):
    """Writes a results file, keeping its hand-written reading, if any, below the new numbers."""
    if path.exists() and READING in path.read_text():
        report += "\n" + READING + path.read_text().split(READING, 1)[1]
    path.write_text(report)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s runs")
    parser.add_argument("--only", help="run scenarios whose name contains this text")
    parser.add_argument("--servers", default="tws,nginx,lighttpd,static-web-server")
    parser.add_argument("--output", default=str(REPO / "bench" / "RESULTS.md"))
    binary_args(parser)
    args = parser.parse_args()
    binaries = use_binaries(args)
    if args.quick:
        args.rounds, args.duration = 1, 3
    base = Path(tempfile.mkdtemp(prefix="tws-bench-"))
    # nginx's worker drops root privileges: the site must be world-readable.
    base.chmod(0o755)
    site = make_site(base)
    wanted = args.servers.split(",")
    servers = []
    if "tws" in wanted:
        servers += [tws_server(base, site, binary=binary, name=name) for name, binary in binaries]
    if "nginx" in wanted:
        servers += [nginx_server(base, site, "on"), nginx_server(base, site, "off")]
    if "lighttpd" in wanted:
        servers.append(lighttpd_server(base, site))
    if "static-web-server" in wanted and shutil.which("static-web-server"):
        servers.append(sws_server(base, site))
    scenarios = [s for s in SCENARIOS if not args.only or args.only in s["name"]]
    results = {}  # (scenario name, server name) -> [result per round]
    idle_rss = {}
    try:
        for server in servers:
            server.start()
            idle_rss[server.name] = server.rss_kib()
            subprocess.run(["curl", "-s", "-o", "/dev/null", server.url("/small.txt")])
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}")
            for scenario in scenarios:
                order = servers[rnd % len(servers):] + servers[: rnd % len(servers)]
                for server in order:
                    r = measure(server, scenario, args.duration)
                    results.setdefault((scenario["name"], server.name), []).append(r)
                    print(f"  {scenario['name']:<40} {server.name:<18} {fmt(metric(scenario, r), scenario):>10}"
                          f"  p99 {r['p99_ms']:.2f} ms  cpu {r['cpu_us']:.2f} us/req  rss {r['rss_kib']} KiB")
    finally:
        for server in servers:
            server.stop()
    users = bench_create_user(base, site, args, binaries) if "tws" in wanted and not args.only else None
    report = render(args, servers, scenarios, results, idle_rss, users)
    print(report)
    write_report(Path(args.output), report)
    shutil.rmtree(base, ignore_errors=True)


def bench_create_user(base, site, args, binaries):
    """Creates per second for each binary and fsync mode: {(name, fsync): [rate per round]};
    the binaries alternate within each round."""
    rates = {}
    for fsync in ("group", "each"):
        for rnd in range(args.rounds):
            order = binaries[rnd % len(binaries):] + binaries[: rnd % len(binaries)]
            for name, binary in order:
                server = tws_server(base, site, fsync, binary=binary, name=name)
                server.start()
                try:
                    r = run_wrk(server.url("/createUser"), 64, args.duration, LUA)
                finally:
                    server.stop()
                rates.setdefault((name, fsync), []).append(r["rate"])
                print(f"  createUser {name} fsync={fsync}: {r['rate']:,.0f}/s p99 {r['p99_ms']:.1f} ms")
    return rates


def best_nginx(scenario, results, rnd):
    """nginx as an operator would tune it: the better of sendfile on and off, per scenario."""
    candidates = [results.get((scenario["name"], f"nginx sendfile {v}")) for v in ("on", "off")]
    candidates = [c[rnd] for c in candidates if c and len(c) > rnd]
    return max(candidates, key=lambda r: metric(scenario, r)) if candidates else None


PEERS = [BEFORE, "nginx", "lighttpd", "static-web-server"]


def round_result(scenario, results, name, rnd):
    if name == "nginx" and (scenario["name"], name) not in results:
        return best_nginx(scenario, results, rnd)
    rs = results.get((scenario["name"], name), [])
    return rs[rnd] if len(rs) > rnd else None


def render(args, servers, scenarios, results, idle_rss, users):
    names = [s.name for s in servers]
    peers = [p for p in PEERS if any(n == p or n.startswith(p + " ") for n in names)]
    columns = ["tws", *peers]
    short = {"static-web-server": "sws"}
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine_description()}.",
        "",
        f"Run: `bench/run.sh --rounds {args.rounds} --duration {args.duration}{binaries_note(args)}`, "
        f"server pinned to CPU {SERVER_CPU}, wrk/ab pinned to CPU {LOAD_CPU}; servers alternate "
        "within each round; medians of the rounds; ratios are taken within each round, then the "
        "median, with the range over the rounds. nginx is the better of `sendfile on` and "
        "`sendfile off` per scenario; sws is static-web-server.",
        "",
        "| scenario | " + " | ".join(short.get(c, c) for c in columns) + " | "
        + " | ".join(f"tws/{short.get(p, p)}" for p in peers) + " |",
        "|---|" + "---|" * (len(columns) + len(peers)),
    ]
    cpu_lines = ["| scenario | " + " | ".join(short.get(c, c) for c in columns) + " |",
                 "|---|" + "---|" * len(columns)]
    p99_lines = list(cpu_lines)
    before_rows = []
    for scenario in scenarios:
        per = {c: [round_result(scenario, results, c, rnd) for rnd in range(args.rounds)] for c in columns}

        def med(key, field=None):
            rs = [r for r in per[key] if r]
            if not rs:
                return None
            return statistics.median(metric(scenario, r) if field is None else r[field] for r in rs)

        def ratio(other):
            pairs = [(metric(scenario, a), metric(scenario, b)) for a, b in zip(per["tws"], per[other]) if a and b]
            if not pairs:
                return "-"
            values = [a / b for a, b in pairs]
            return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

        def cell(v, f="{:,.0f}"):
            return "-" if v is None else f.format(v)

        value_fmt = "{:.2f}" if scenario.get("metric") == "bytes" else "{:,.0f}"
        if BEFORE in per:
            before_rows.append((scenario["name"], *[[metric(scenario, r) if r else None for r in per[c]]
                                                    for c in ("tws", BEFORE)], value_fmt))
        lines.append(f"| {scenario['name']} | " + " | ".join(cell(med(c), value_fmt) for c in columns)
                     + " | " + " | ".join(ratio(p) for p in peers) + " |")
        label = scenario["name"].rsplit(" (", 1)[0]
        cpu_lines.append(f"| {label} | " + " | ".join(cell(med(c, "cpu_us"), "{:.2f}") for c in columns) + " |")
        p99_lines.append(f"| {label} | " + " | ".join(cell(med(c, "p99_ms"), "{:.2f}") for c in columns) + " |")
    lines += ["", "Server CPU time (user + system) per request, in microseconds:", "", *cpu_lines, ""]
    lines += ["p99 latency, in milliseconds:", "", *p99_lines, ""]
    lines += ["Memory (RSS, KiB): idle after start, and peak during the 100 B keep-alive load:", ""]
    lines += ["| server | idle | under load |", "|---|---|---|"]
    load_name = SCENARIOS[0]["name"]
    for name in names:
        peaks = [r["rss_kib"] for r in results.get((load_name, name), [])]
        lines.append(f"| {name} | {idle_rss.get(name, '-')} | {max(peaks) if peaks else '-'} |")
    if users:
        tws_names = [n for n in ("tws", BEFORE) if (n, "group") in users]
        med = {k: statistics.median(v) for k, v in users.items()}
        lines += [
            "",
            "Durable `POST /createUser` under 64 connections (every 201 is on disk):",
            "",
            "| mode | " + " | ".join(tws_names) + " |",
            "|---|" + "---|" * len(tws_names),
            "| group commit (`fsync = \"group\"`) | " + " | ".join(f"{med[(n, 'group')]:,.0f}" for n in tws_names) + " |",
            "| one fsync per create (`fsync = \"each\"`) | " + " | ".join(f"{med[(n, 'each')]:,.0f}" for n in tws_names) + " |",
            "| ratio | " + " | ".join(f"{med[(n, 'group')] / med[(n, 'each')]:.1f}x" for n in tws_names) + " |",
        ]
        if BEFORE in tws_names:
            before_rows += [(f"createUser fsync={f} (creates/s)", users[("tws", f)], users[(BEFORE, f)], "{:,.0f}")
                            for f in ("group", "each")]
    if before_rows:
        lines += ["", f"tws against {BEFORE} (the build given with `--before`), over the same rounds:", "",
                  *before_table(before_rows)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
