#!/usr/bin/env python3
"""HTTP/2 interop with a client we did not write: Python's `h2` (hyper-h2), over h2c with prior
knowledge, against a running tws.

The client opens windows of 2^31-1 (stream) and 2^30 more (connection), as curl and h2load
do, asks for a 32 MiB random file, a page, a missing file and a HEAD on one connection at
once, and checks every body byte for byte against the files, every status, and that
`content-length` appears exactly once in each answer. Then a client with a small window
(16 KiB), which must send WINDOW_UPDATE as it reads, downloads the 32 MiB file again.

Usage: .ci/h2_python.py [TWS_BINARY]   (default target/debug/tws; needs `pip install h2`)
Every wait is bounded; exit status 1 on any failure.
"""

import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings

DEADLINE_S = 60
BIG = 32 * 1024 * 1024


def start(binary, root, data):
    proc = subprocess.Popen([binary, "--root", str(root), "--port", "0", "--data", str(data),
                             "--log-format", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the banner's first line names the URL
    end = time.monotonic() + 10
    while "http://" not in line and time.monotonic() < end:
        line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        sys.exit(f"h2 interop: tws did not start: {line!r} {proc.stderr.read()}")
    return proc, int(m.group(1))


def fetch(port, requests, window):
    """Sends every (method, path) at once on one connection; returns {path: (status, headers,
    body)}. `window`: the stream window announced (the connection's is raised to match)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    if window > 65535:
        conn.increment_flow_control_window(2**30)
    streams = {}
    for method, path in requests:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", method), (":scheme", "http"),
                                (":authority", f"127.0.0.1:{port}"), (":path", path)],
                          end_stream=True)
        streams[sid] = {"path": path, "status": None, "headers": [], "body": bytearray(),
                        "done": False}
    sock.sendall(conn.data_to_send())
    end = time.monotonic() + DEADLINE_S
    while not all(s["done"] for s in streams.values()):
        if time.monotonic() > end:
            sys.exit(f"h2 interop: not finished within {DEADLINE_S} s: "
                     + ", ".join(f"{s['path']}: {len(s['body'])} bytes"
                                 for s in streams.values() if not s["done"]))
        chunk = sock.recv(1 << 20)
        if not chunk:
            sys.exit("h2 interop: the server closed the connection early")
        for event in conn.receive_data(chunk):
            if isinstance(event, h2.events.ResponseReceived):
                s = streams[event.stream_id]
                s["headers"] = [(k.decode() if isinstance(k, bytes) else k,
                                 v.decode() if isinstance(v, bytes) else v)
                                for k, v in event.headers]
                s["status"] = int(dict(s["headers"])[":status"])
            elif isinstance(event, h2.events.DataReceived):
                streams[event.stream_id]["body"] += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                streams[event.stream_id]["done"] = True
            elif isinstance(event, h2.events.StreamReset):
                sys.exit(f"h2 interop: stream {event.stream_id} reset ({event.error_code})")
            elif isinstance(event, h2.events.ConnectionTerminated):
                sys.exit(f"h2 interop: GOAWAY ({event.error_code})")
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    return {s["path"]: s for s in streams.values()}


def check(cond, what):
    if not cond:
        sys.exit(f"h2 interop: {what}")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/tws"
    work = Path(tempfile.mkdtemp(prefix="tws-h2-python-"))
    root = work / "site"
    root.mkdir()
    big = os.urandom(BIG)
    (root / "big.bin").write_bytes(big)
    page = b"<!doctype html><title>p</title><p>" + b"hello " * 2000 + b"\n"
    (root / "page.html").write_bytes(page)
    proc, port = start(binary, root, work / "data")
    try:
        started = time.monotonic()
        got = fetch(port, [("GET", "/big.bin"), ("GET", "/page.html"), ("GET", "/missing"),
                           ("HEAD", "/page.html?head")], window=2**31 - 1)
        big_s, page_s, missing, head = (got["/big.bin"], got["/page.html"], got["/missing"],
                                        got["/page.html?head"])
        check(big_s["status"] == 200, f"/big.bin: status {big_s['status']}")
        check(hashlib.sha256(big_s["body"]).digest() == hashlib.sha256(big).digest(),
              f"/big.bin: {len(big_s['body'])} bytes, not the file's {BIG}")
        check(page_s["status"] == 200 and bytes(page_s["body"]) == page, "/page.html differs")
        check(missing["status"] == 404, f"/missing: status {missing['status']}")
        check(head["status"] == 200 and not head["body"], "HEAD /page.html has a body")
        for s in (big_s, page_s, head):
            n = sum(1 for k, _ in s["headers"] if k == "content-length")
            check(n == 1, f"{s['path']}: content-length {n} times")
        large = time.monotonic() - started
        started = time.monotonic()
        small = fetch(port, [("GET", "/big.bin")], window=16384)["/big.bin"]
        check(hashlib.sha256(small["body"]).digest() == hashlib.sha256(big).digest(),
              f"/big.bin with a 16 KiB window: {len(small['body'])} bytes")
        print(f"h2 interop (python h2 {h2.__version__}): 32 MiB with large windows and 3 more "
              f"streams in {large:.1f} s, with a 16 KiB window in {time.monotonic() - started:.1f} s")
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
