#!/usr/bin/env python3
"""Live-update fan-out benchmark: 10,000 idle subscribers to `GET /users/events`.

tws (pinned to one CPU, like the other bench scripts) serves a `users` collection in a fresh
data folder; this script (pinned to the other CPU) opens N subscriptions over HTTP/1.1 on
raw sockets and reads them with epoll. It reports:
  - tws's RSS before the subscribers, with them all idle, and per subscriber;
  - for each of several writes: the time from sending the POST to the last subscriber's
    event arriving at its socket (the kernel's receive timestamp, SO_TIMESTAMPNS, so the
    time this script then takes to read N sockets is not counted), and to this script
    having read them all;
  - a burst of writes: events delivered per second to the N subscribers;
  - after the subscribers leave, the subscriber count back to 0.

Usage: bench/events.py [--subscribers N] [--writes N] [--burst N] [--tws BIN] [--out FILE]"""

import argparse
import json
import os
import resource
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import free_port, wait_port

ROUTES = """
[server]
root = "site"

[[route]]
path = "/metrics"
action = "metrics"

[[collection]]
name = "users"
path = "/users"
fields.name = { type = "string", required = true }
"""


# Linux: the kernel's receive time of each read, as ancillary data.
SO_TIMESTAMPNS = 35


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def metric(port, name):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def post(port, name):
    body = json.dumps({"name": name}).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /users HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
              b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return s


class Subscribers:
    """N idle event streams read with epoll; counts the events each has read."""

    def __init__(self, port, n):
        self.sel = selectors.EpollSelector()
        self.socks = []
        self.seen = {}
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.sendall(b"GET /users/events HTTP/1.1\r\nHost: b\r\n\r\n")
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, i)
            self.socks.append(s)
            self.seen[i] = 0
        self.tail = {i: b"" for i in range(n)}
        # The latest kernel arrival time (CLOCK_REALTIME) of a read holding an event.
        self.arrived = 0.0

    def pump(self, until, deadline):
        """Reads until `until()` holds or the deadline passes; returns the time it held."""
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            for key, _ in self.sel.select(min(left, 0.5)):
                i = key.data
                try:
                    data, ancillary, _, _ = key.fileobj.recvmsg(262144, 64)
                except BlockingIOError:
                    continue
                if not data:
                    self.sel.unregister(key.fileobj)
                    continue
                text = self.tail[i] + data
                found = text.count(b"\nevent: created\n")
                self.seen[i] += found
                for level, kind, value in ancillary:
                    if found and level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        self.arrived = max(self.arrived, sec + nsec / 1e9)
                self.tail[i] = text[-16:]
        return time.monotonic()

    def all_seen(self, n):
        return lambda: all(v >= n for v in self.seen.values())

    def close(self):
        for s in self.socks:
            s.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--out", help="also write the report (Markdown) to this file")
    harness.binary_args(parser)
    args = parser.parse_args()
    harness.use_binaries(args)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.subscribers + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    # This script reads on the other CPU than tws.
    os.sched_setaffinity(0, {int(harness.LOAD_CPU)})
    work = Path(tempfile.mkdtemp(prefix="tws-bench-events-"))
    (work / "site").mkdir()
    (work / "routes.toml").write_text(ROUTES)
    port = free_port()
    tws = subprocess.Popen(
        ["taskset", "-c", harness.SERVER_CPU, str(harness.TWS), "--config", "routes.toml",
         "--port", str(port), "--quiet", "--log-format", "off"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(0.5)
        idle = rss_kib(tws.pid)
        started = time.monotonic()
        subs = Subscribers(port, args.subscribers)
        deadline = time.monotonic() + 120
        while metric(port, "tws_live_subscribers") < args.subscribers:
            subs.pump(lambda: False, time.monotonic() + 0.2)
            if time.monotonic() > deadline:
                sys.exit("the subscribers did not all connect")
        connect_s = time.monotonic() - started
        subs.pump(lambda: False, time.monotonic() + 1.0)
        with_subs = rss_kib(tws.pid)
        latencies, read = [], []
        for w in range(args.writes):
            subs.arrived = 0.0
            t0, wall = time.monotonic(), time.time()
            s = post(port, f"user {w}")
            done = subs.pump(subs.all_seen(w + 1), t0 + 30)
            s.close()
            if done is None:
                sys.exit(f"write {w}: not every subscriber got its event within 30 s")
            latencies.append((subs.arrived - wall) * 1000)
            read.append((done - t0) * 1000)
        base = args.writes
        t0 = time.monotonic()
        posts = [post(port, f"burst {i}") for i in range(args.burst)]
        done = subs.pump(subs.all_seen(base + args.burst), t0 + 120)
        for s in posts:
            s.close()
        burst_s = (done - t0) if done else float("nan")
        dropped = metric(port, "tws_live_dropped_total")
        subs.close()
        deadline = time.monotonic() + 30
        while metric(port, "tws_live_subscribers") > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        left = metric(port, "tws_live_subscribers")
    finally:
        tws.terminate()
        tws.wait(10)
    n = args.subscribers
    per = (with_subs - idle) * 1024 / n
    lines = [
        "# Live updates: fan-out to idle subscribers",
        "",
        f"`bench/events.py --subscribers {n} --writes {args.writes} --burst {args.burst}`; tws pinned to CPU "
        f"{harness.SERVER_CPU}, the subscribers (one Python process, epoll) to CPU {harness.LOAD_CPU}; "
        f"{os.cpu_count()} CPUs ({harness.platform.processor() or harness.platform.machine()}).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| subscribers connected | {n:,} in {connect_s:.1f} s |",
        f"| tws RSS idle, then with them | {idle / 1024:.1f} MiB, {with_subs / 1024:.1f} MiB |",
        f"| RSS per idle subscriber | {per:,.0f} bytes |",
        f"| one write: POST sent to the last of {n:,} events arriving (median of {args.writes}) | {statistics.median(latencies):.1f} ms |",
        f"| ... fastest, slowest | {min(latencies):.1f} ms, {max(latencies):.1f} ms |",
        f"| ... to this script having read all {n:,} (median; fastest, slowest) | {statistics.median(read):.1f} ms; {min(read):.1f} ms, {max(read):.1f} ms |",
        f"| burst of {args.burst} writes to {n:,} subscribers | {burst_s:.2f} s, {args.burst * n / burst_s:,.0f} events/s delivered |",
        f"| subscribers dropped for reading slowly | {dropped:.0f} |",
        f"| subscribers after they closed | {left:.0f} |",
        "",
        "Times run from sending the POST (a durable create: committed, fsync included, before it",
        "is announced) to the kernel's receive timestamp of the last subscriber's event; the",
        "second line adds the time this script (Python, one CPU) takes to read all N sockets.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
