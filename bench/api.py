#!/usr/bin/env python3
"""API benchmark: the `users` collection of tws against json-server 0.17.4 (npm) and,
optionally, an earlier tws build (`--baseline BIN`, served with the old user actions).

Scenarios, each with wrk -c64 (server pinned to one CPU, wrk to the other, servers alternating
within a round, medians of the rounds, ratios taken within a round):
  - durable creates: POST /users (the baseline: POST /createUser) with a distinct name each;
  - reads of one record by id, random among the first 10,000;
  - a page of 100 records at a random place (tws: `?limit=100&after=ID`; json-server:
    `?_page=N&_limit=100`; the baseline has no pages and is left out).
Every server starts with the same 10,000 users. json-server answers a create before writing
its file (it has no durability guarantee); tws answers once the record is committed.

With `--million`, also tws alone with 1,000,000 users: startup time, idle RSS, p99 of a page of
100, and the RSS that 20 clients reading `GET /users?limit=1000` without reading add.

With `--before BIN`, an earlier tws build with collections runs beside tws as "tws-before",
exactly like tws (the same routes and seed; see harness.py); `--baseline` stays the older
JSON Lines build with its user actions.

Usage: bench/api.py [--rounds N] [--duration S] [--tws BIN] [--before BIN] [--baseline BIN]
                    [--million] [--out FILE]"""

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import Server, free_port, wait_port

SEED = 10_000
JSON_SERVER_VERSION = "0.17.4"

POST_LUA = """
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"Nombre": "bench user ' .. counter .. '"}'
  return wrk.format("POST", "%s", { ["Content-Type"] = "application/json" }, body)
end
"""

GET_LUA = """
math.randomseed(42)
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, %d))
end
"""

# tws pages by cursor: after a random id; json-server by page number.
PAGE_TWS_LUA = """
math.randomseed(7)
request = function()
  return wrk.format("GET", "/users?limit=100&after=" .. math.random(0, %d))
end
"""

PAGE_JSON_SERVER_LUA = """
math.randomseed(7)
request = function()
  return wrk.format("GET", "/users?_page=" .. math.random(1, %d) .. "&_limit=100")
end
"""

USERS_COLLECTION = """
[[collection]]
name = "users"
path = "/users"
fields.Nombre = { type = "string", required = true, min_length = 1, max_length = 100 }
"""


def seed_jsonl(path, count):
    with open(path, "w") as f:
        for i in range(1, count + 1):
            f.write(json.dumps({"id": i, "Nombre": f"seed user {i}",
                                "created": "2026-01-01T00:00:00Z"}, separators=(",", ":")))
            f.write("\n")


def tws_new(base, binary=None, name="tws"):
    port = free_port()
    data = base / f"tws-data-{port}"
    data.mkdir()
    # The old user file is imported at first start: the same seed for every tws.
    seed_jsonl(data / "users.jsonl", SEED)
    routes = base / f"tws-{port}.toml"
    routes.write_text(f'[server]\nroot = "{base}"\ndata = "{data}"\n{USERS_COLLECTION}')
    argv = [str(binary or harness.TWS), "--config", str(routes), "--port", str(port), "--log-format", "off"]
    server = Server(name, argv, port, base)
    server.post_path, server.page_lua = "/users", PAGE_TWS_LUA % (SEED - 100)
    server.data = data
    return server


def tws_baseline(base, binary):
    port = free_port()
    data = base / f"base-data-{port}"
    data.mkdir()
    seed_jsonl(data / "users.jsonl", SEED)
    routes = base / f"base-{port}.toml"
    routes.write_text(
        f'[server]\nroot = "{base}"\ndata = "{data}"\n\n'
        '[[route]]\npath = "/createUser"\naction = "create_user"\n\n'
        '[[route]]\npath = "/users/{id}"\naction = "get_user"\n')
    argv = [str(binary), "--config", str(routes), "--port", str(port), "--log-format", "off"]
    server = Server("tws baseline", argv, port, base)
    server.post_path, server.page_lua = "/createUser", None
    return server


def install_json_server(base):
    folder = base / "json-server"
    folder.mkdir()
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                    f"json-server@{JSON_SERVER_VERSION}"],
                   cwd=folder, check=True, capture_output=True, timeout=600)
    return folder / "node_modules" / ".bin" / "json-server"


def json_server(base, binary):
    port = free_port()
    db = base / f"db-{port}.json"
    users = [{"id": i, "Nombre": f"seed user {i}", "created": "2026-01-01T00:00:00Z"}
             for i in range(1, SEED + 1)]
    db.write_text(json.dumps({"users": users}))
    argv = [str(binary), str(db), "--port", str(port), "--quiet"]
    server = Server(f"json-server {JSON_SERVER_VERSION}", argv, port, base)
    server.post_path, server.page_lua = "/users", PAGE_JSON_SERVER_LUA % (SEED // 100)
    return server


def scenarios(server, base):
    def script(name, text):
        path = base / f"{name}-{server.port}.lua"
        path.write_text(text)
        return path

    out = [("durable creates (req/s)", "/", script("post", POST_LUA % server.post_path)),
           ("read by id (req/s)", "/", script("get", GET_LUA % SEED))]
    if server.page_lua:
        out.append(("page of 100 (req/s)", "/", script("page", server.page_lua)))
    return out


def run_round(servers, base, seconds):
    """Each server in turn: reads first (on the seed alone), then pages, then creates."""
    results = {}
    for server in servers:
        server.start()
        try:
            for name, path, lua in reversed(scenarios(server, base)):
                scenario = {"kind": "wrk", "path": path, "conns": 64, "script": lua}
                results[(server.name, name)] = harness.measure(server, scenario, seconds)
        finally:
            server.stop()
    return results


def million(base, binary):
    """tws with 1,000,000 users: startup, idle RSS, page p99, 20 slow readers."""
    server = tws_new(base, binary)
    seed_jsonl(server.data / "users.jsonl", 1_000_000)
    imported = time.monotonic()
    server.start()  # imports the file once
    imported = time.monotonic() - imported
    server.stop()
    # Spawn to listening, without the settling pause of Server.start.
    started = time.monotonic()
    server.proc = subprocess.Popen(["taskset", "-c", harness.SERVER_CPU, *server.argv],
                                   cwd=server.workdir, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    wait_port(server.port)
    startup = time.monotonic() - started
    time.sleep(1)
    idle = server.rss_kib()
    first = harness.run_wrk(server.url("/users?limit=100"), 16, 5)
    lua = base / "page-million.lua"
    lua.write_text(PAGE_TWS_LUA % 999_900)
    deep = harness.run_wrk(server.url("/"), 16, 5, lua)
    before = server.rss_kib()
    readers = []
    for _ in range(20):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /users?limit=1000 HTTP/1.1\r\nHost: b\r\n\r\n")
        readers.append(s)
    time.sleep(2)
    during = server.rss_kib()
    for s in readers:
        s.close()
    server.stop()
    return {"import_s": imported, "startup_s": startup, "idle_mib": idle / 1024, "first_page": first,
            "random_page": deep, "readers_mib": (during - before) / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--baseline", help="an earlier tws binary (JSON Lines store)")
    parser.add_argument("--million", action="store_true", help="also the 1,000,000-user checks")
    parser.add_argument("--out", default=str(Path(__file__).parent / "RESULTS-API.md"))
    harness.binary_args(parser)
    args = parser.parse_args()
    binaries = harness.use_binaries(args)
    base = Path(tempfile.mkdtemp(prefix="tws-api-bench-"))
    js = install_json_server(base)
    rounds = []
    for r in range(args.rounds):
        servers = [tws_new(base, binary, name) for name, binary in binaries] + [json_server(base, js)]
        if args.baseline:
            servers.insert(1, tws_baseline(base, args.baseline))
        if r % 2:
            servers.reverse()
        print(f"round {r + 1}/{args.rounds}: {', '.join(s.name for s in servers)}", flush=True)
        rounds.append(run_round(servers, base, args.duration))
    big = million(base, harness.TWS) if args.million else None
    text = render(args, rounds, big)
    harness.write_report(Path(args.out), text)
    print(text)


def render(args, rounds, big):
    names = sorted({k[0] for r in rounds for k in r}, key=lambda n: (n != "tws", n != harness.BEFORE, n))
    scen = ["durable creates (req/s)", "read by id (req/s)", "page of 100 (req/s)"]
    lines = [
        "# API benchmark",
        "",
        f"`bench/api.py --rounds {args.rounds} --duration {args.duration}"
        + harness.binaries_note(args) + (" --baseline BIN" if args.baseline else "")
        + (" --million" if args.million else "")
        + f"`: {harness.machine_description()}. wrk -t1 -c64, server pinned to CPU "
        f"{harness.SERVER_CPU}, wrk to CPU {harness.LOAD_CPU}; servers alternate within a round; "
        f"medians of {args.rounds} rounds; each server starts with {SEED:,} users. "
        "json-server answers creates before writing its file; tws after the commit.",
        "",
        "| scenario | " + " | ".join(names) + " | tws / " + " | tws / ".join(names[1:]) + " |",
        "|---" * (2 * len(names)) + "|",
    ]
    for s in scen:
        cells, ratios = [], []
        for n in names:
            values = [r[(n, s)] for r in rounds if (n, s) in r]
            if not values:
                cells.append("–")
                continue
            rate = statistics.median(v["rate"] for v in values)
            cpu = statistics.median(v["cpu_us"] for v in values)
            p99 = statistics.median(v["p99_ms"] for v in values)
            cells.append(f"{rate:,.0f} ({cpu:.1f} µs CPU, p99 {p99:.2f} ms)")
        for n in names[1:]:
            per = [r[("tws", s)]["rate"] / r[(n, s)]["rate"] for r in rounds
                   if (n, s) in r and ("tws", s) in r]
            ratios.append(f"{statistics.median(per):.2f}x ({min(per):.2f}-{max(per):.2f})"
                          if per else "–")
        lines.append(f"| {s} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    if harness.BEFORE in names:
        rows = [(s, *[[r[(n, s)]["rate"] if (n, s) in r else None for r in rounds] for n in ("tws", harness.BEFORE)],
                 "{:,.0f}") for s in scen]
        lines += ["", f"tws against {harness.BEFORE} (the build given with `--before`), over the same rounds:", "",
                  *harness.before_table(rows)]
    if big:
        lines += [
            "",
            "## 1,000,000 users (tws alone)",
            "",
            f"- first start, importing a 1,000,000-line users.jsonl: {big['import_s']:.1f} s",
            f"- startup (imported database, spawn to listening): {big['startup_s'] * 1000:.0f} ms",
            f"- idle RSS after startup: {big['idle_mib']:.1f} MiB",
            f"- first page of 100, wrk -c16: {big['first_page']['rate']:,.0f} req/s, "
            f"p99 {big['first_page']['p99_ms']:.2f} ms",
            f"- a page of 100 at a random place: {big['random_page']['rate']:,.0f} req/s, "
            f"p99 {big['random_page']['p99_ms']:.2f} ms",
            f"- 20 clients asking for `GET /users?limit=1000` and not reading: "
            f"RSS +{big['readers_mib']:.1f} MiB",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
