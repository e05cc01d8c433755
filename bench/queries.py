#!/usr/bin/env python3
"""Query benchmark: a collection of 1,000,000 records (tws pinned to one CPU, wrk -t1 to the
other, as the other bench scripts do).

The records are loaded through the API itself, with `POST` of JSON arrays of 1,000 (one
transaction each). Then, with wrk -c16 (random values from a Lua script):
  - a filtered page on an indexed field: `?age=N&limit=100` (equality), and a range sorted by
    that field `?age[gte]=N&age[lt]=N+5&sort=age&limit=100`;
  - the same range in id order (no sort), which the index cannot serve in order;
  - full-text search of one random word of a 2,000-word vocabulary (`?q=w123&limit=20`, ranked
    by relevance), of two words, and of one word sorted by an indexed field;
  - `count=exact` with an indexed equality filter;
  - reads of one record by id, and durable creates (wrk -c64), on a collection of one
    field as in bench/api.py, and on the searched and indexed one.

Each query runs at 16 connections and again at 1 (the p99 of the query itself: at 16 on one
CPU it is mostly time spent queueing behind the other 15).

Usage: bench/queries.py [--records N] [--duration S] [--tws BIN] [--out FILE] [--only A,B@1]"""

import argparse
import http.client
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import Server, free_port

ROUTES = """
[server]
root = "{base}"
data = "{data}"

[[collection]]
name = "people"
path = "/people"
fields.name = {{ type = "string", required = true, search = true }}
fields.bio = {{ type = "string", search = true }}
fields.age = {{ type = "integer", index = true }}
fields.city = {{ type = "string" }}

[[collection]]
name = "users"
path = "/users"
fields.Nombre = {{ type = "string", required = true, min_length = 1, max_length = 100 }}
"""

VOCABULARY = 2000

LUA = {
    "equal": 'return wrk.format("GET", "/people?limit=100&age=" .. math.random(0, 99))',
    "range_sorted": 'local a = math.random(0, 95)\n'
    '  return wrk.format("GET", "/people?limit=100&sort=age&age%5Bgte%5D=" .. a .. "&age%5Blt%5D=" .. (a + 5))',
    "range_by_id": 'local a = math.random(0, 95)\n'
    '  return wrk.format("GET", "/people?limit=100&age%5Bgte%5D=" .. a .. "&age%5Blt%5D=" .. (a + 5))',
    "search_one": f'return wrk.format("GET", "/people?limit=20&q=w" .. math.random(0, {VOCABULARY - 1}))',
    "search_two": f'return wrk.format("GET", "/people?limit=20&q=w" .. math.random(0, {VOCABULARY - 1}) .. "+w" .. math.random(0, {VOCABULARY - 1}))',
    "search_sorted": f'return wrk.format("GET", "/people?limit=20&sort=age&q=w" .. math.random(0, {VOCABULARY - 1}))',
    "count": 'return wrk.format("GET", "/people?limit=10&count=exact&age=" .. math.random(0, 99))',
    "read": 'return wrk.format("GET", "/people/" .. math.random(1, {records}))',
    "create_users": """counter = 0
  counter = counter + 1
  return wrk.format("POST", "/users", {{ ["Content-Type"] = "application/json" }}, '{{"Nombre": "bench user ' .. counter .. '"}}')""",
    "create_people": """counter = 0
  counter = counter + 1
  return wrk.format("POST", "/people", {{ ["Content-Type"] = "application/json" }}, '{{"name": "bench ' .. counter .. '", "bio": "w1 w2 w3", "age": ' .. (counter % 100) .. '}}')""",
}


def script(base, name, records):
    body = LUA[name].format(records=records)
    if name.startswith("create"):
        head, rest = body.split("\n", 1)
        text = f"{head}\nmath.randomseed(1)\nrequest = function()\n  {rest}\nend\n"
    else:
        text = f"math.randomseed(42)\nrequest = function()\n  {body}\nend\n"
    path = base / f"{name}.lua"
    path.write_text(text)
    return path


def load(port, records):
    """Creates the records through the API, 1,000 per request; returns records per second."""
    rng = random.Random(3)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.monotonic()
    for first in range(0, records, 1000):
        batch = []
        for i in range(first, min(first + 1000, records)):
            words = " ".join(f"w{rng.randrange(VOCABULARY)}" for _ in range(6))
            batch.append({"name": f"person {i}", "bio": words, "age": rng.randrange(100),
                          "city": rng.choice(["Lima", "Quito", "Cusco", "Arica"])})
        body = json.dumps(batch)
        conn.request("POST", "/people", body, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        reply.read()
        if reply.status != 201:
            raise RuntimeError(f"batch at {first}: {reply.status}")
    return records / (time.monotonic() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--tws", default=str(harness.TWS))
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--only", help="comma-separated scenarios to run (default: all)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tws-bench-queries-"))
    port = free_port()
    data = base / "data"
    routes = base / "routes.toml"
    routes.write_text(ROUTES.format(base=base, data=data))
    argv = [str(Path(args.tws).resolve()), "--config", str(routes), "--port", str(port), "--log-format", "off"]
    server = Server("tws", argv, port, base)
    server.start()
    results = {}
    try:
        results["load_records_per_s"] = load(port, args.records)
        print(f"loaded {args.records:,} records: {results['load_records_per_s']:,.0f}/s", flush=True)
        time.sleep(2)
        results["idle_rss_mib"] = server.rss_kib() / 1024
        # name or name@connections; the queries also at one connection, whose p99 is the
        # query's own latency (at 16 on one CPU it is mostly queueing).
        names = ["equal", "range_sorted", "range_by_id", "search_one", "search_two",
                 "search_sorted", "count", "equal@1", "range_sorted@1", "search_one@1",
                 "search_two@1", "search_sorted@1", "read", "create_users", "create_people"]
        for label in args.only.split(",") if args.only else names:
            name, _, given = label.partition("@")
            conns = int(given) if given else 64 if name in ("read", "create_users", "create_people") else 16
            lua = script(base, name, args.records)
            name = label
            try:
                result = harness.run_wrk(server.url("/"), conns, args.duration, lua)
            except Exception as e:  # a 503 (too slow) is a result worth reporting
                result = {"error": str(e)}
            results[name] = result
            shown = (f"{result['rate']:>9,.0f} req/s  p99 {result['p99_ms']:7.2f} ms"
                     if "rate" in result else result["error"])
            print(f"{name:16} c{conns:<3} {shown}", flush=True)
    finally:
        server.stop()
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
