#!/usr/bin/env python3
"""Several nodes: durable creates per second through HAProxy with 1 and 3 tws nodes sharing one
PostgreSQL, and with one node on the embedded SQLite store, same HAProxy in front.

PostgreSQL runs from a throwaway cluster (initdb in a temporary folder, as `nobody` when run as
root, fsync on: a create is answered once it is committed). wrk -t1 -c64 posts through HAProxy
from CPU 1; the servers share the machine (two CPUs here: three nodes cannot scale past it,
the figures show what the database and the proxy cost). Scenarios alternate within a round;
medians of the rounds. Usage: bench/nodes.py [--rounds N] [--duration S] [--out FILE]"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import free_port, wait_port, TWS

POST_LUA = """
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"Nombre": "node user ' .. counter .. '"}'
  return wrk.format("POST", "/users", { ["Content-Type"] = "application/json" }, body)
end
"""

ROUTES = """[server]
root = "{base}"
data = "{data}"

[[route]]
path = "/healthz"
action = "health"

[[collection]]
name = "users"
path = "/users"
fields.Nombre = {{ type = "string", required = true, min_length = 1, max_length = 100 }}
"""


def as_postgres(argv):
    """Runs a PostgreSQL program as nobody when we are root (PostgreSQL refuses root)."""
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    return argv


def postgres_bin():
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1].parent


class Postgres:
    def __init__(self, base):
        self.bin = postgres_bin()
        self.dir = base / "pg"
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, 65534, 65534)
        self.port = free_port()
        subprocess.run(as_postgres([str(self.bin / "initdb"), "-D", str(self.dir / "data"),
                                    "-U", "tws", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True)
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        subprocess.run(as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
                                    str(self.dir / "log"), "-o", options, "-w", "start"]),
                       check=True, capture_output=True)

    def database(self, name):
        subprocess.run(as_postgres([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p",
                                    str(self.port), "-U", "tws", name]), check=True)
        return f"postgres://tws@127.0.0.1:{self.port}/{name}"

    def stop(self):
        subprocess.run(as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"),
                                    "-m", "fast", "-w", "stop"]), capture_output=True)


def haproxy(base, ports):
    port = free_port()
    servers = "".join(f"  server n{i} 127.0.0.1:{p} check\n" for i, p in enumerate(ports))
    config = base / f"haproxy-{port}.cfg"
    config.write_text(
        "global\n  maxconn 4000\n"
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n"
        f"frontend api\n  bind 127.0.0.1:{port}\n  default_backend nodes\n"
        "backend nodes\n  balance roundrobin\n  option httpchk GET /healthz\n"
        f"  default-server inter 500ms fall 2 rise 1\n{servers}")
    proc = subprocess.Popen(["taskset", "-c", harness.SERVER_CPU, "haproxy", "-db", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_nodes(base, count, store):
    procs, ports = [], []
    for _ in range(count):
        port = free_port()
        data = base / f"data-{port}"
        routes = base / f"routes-{port}.toml"
        routes.write_text(ROUTES.format(base=base, data=data))
        argv = [str(TWS), "--config", str(routes), "--port", str(port), "--log-format", "off"]
        if store:
            argv += ["--store", store]
        procs.append(subprocess.Popen(["taskset", "-c", harness.SERVER_CPU, *argv],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports.append(port)
    for port in ports:
        wait_port(port)
    return procs, ports


def run(base, name, count, store, seconds, lua):
    nodes, ports = start_nodes(base, count, store)
    proxy, port = haproxy(base, ports)
    time.sleep(1.0)  # a health check round, so every node is up
    try:
        result = harness.run_wrk(f"http://127.0.0.1:{port}/", 64, seconds, lua)
    finally:
        for p in [proxy, *nodes]:
            p.terminate()
        for p in [proxy, *nodes]:
            p.wait(10)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--out", default=str(Path(__file__).parent / "RESULTS-NODES.md"))
    args = parser.parse_args()
    if not TWS.exists():
        sys.exit(f"build first: cargo build --release ({TWS} is missing)")
    base = Path(tempfile.mkdtemp(prefix="tws-nodes-bench-"))
    os.chmod(base, 0o755)
    lua = base / "post.lua"
    lua.write_text(POST_LUA)
    pg = Postgres(base)
    scenarios = [("1 node, PostgreSQL", 1, True), ("3 nodes, PostgreSQL", 3, True),
                 ("1 node, embedded SQLite", 1, False)]
    results = {name: [] for name, _, _ in scenarios}
    try:
        for r in range(args.rounds):
            order = scenarios if r % 2 == 0 else list(reversed(scenarios))
            for name, count, on_pg in order:
                store = pg.database(f"r{r}n{count}") if on_pg else None
                result = run(base, name, count, store, args.duration, lua)
                print(f"round {r + 1}: {name}: {result['rate']:,.0f} creates/s, p99 {result['p99_ms']:.1f} ms",
                      flush=True)
                results[name].append(result)
    finally:
        pg.stop()
    lines = [
        "# Several nodes: durable creates through HAProxy",
        "",
        f"`bench/nodes.py --rounds {args.rounds} --duration {args.duration}`: "
        f"{harness.machine_description()}. HAProxy (roundrobin, health checks on /healthz) and "
        f"the tws nodes pinned to CPU {harness.SERVER_CPU}, PostgreSQL unpinned (fsync on), "
        f"wrk -t1 -c64 on CPU {harness.LOAD_CPU} posting `POST /users`. Medians of "
        f"{args.rounds} rounds, scenarios alternating.",
        "",
        "| scenario | creates/s | p99 |",
        "|---|---|---|",
    ]
    for name, _, _ in scenarios:
        rate = statistics.median(r["rate"] for r in results[name])
        p99 = statistics.median(r["p99_ms"] for r in results[name])
        low, high = min(r["rate"] for r in results[name]), max(r["rate"] for r in results[name])
        lines.append(f"| {name} | {rate:,.0f} ({low:,.0f}-{high:,.0f}) | {p99:.1f} ms |")
    text = "\n".join(lines) + "\n"
    print(text)
    harness.write_report(Path(args.out), text)


if __name__ == "__main__":
    main()
