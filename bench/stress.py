#!/usr/bin/env python3
"""Stress scenarios for tws on loopback: idle connections, slow clients, the connection cap,
big downloads and a stop under load. Prints a table: scenario, figure, target, pass or fail.
Every loop is bounded in time and count."""

import argparse
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TWS = REPO / "target" / "release" / "tws"
TIMEOUT = 2  # seconds, for every server timeout in these scenarios


class Tws:
    def __init__(self, base, limits="", server="", idle=TIMEOUT, tls=None):
        site = base / "site"
        self.routes = base / f"routes-{len(list(base.glob('routes-*')))}.toml"
        tls_table = f'[server.tls]\ncert = "{tls[0]}"\nkey = "{tls[1]}"\n\n' if tls else ""
        self.routes.write_text(
            f'[server]\nroot = "{site}"\ndata = "{base / "data"}"\n{server}\n\n{tls_table}[server.limits]\n{limits}\n\n'
            f"[server.timeouts]\nheader = {TIMEOUT}\nbody = {TIMEOUT}\nidle = {idle}\nsend = {TIMEOUT}\n\n"
            '[[route]]\npath = "/"\ndir = "."\nlisting = true\n\n'
            '[[route]]\npath = "/createUser"\naction = "create_user"\n'
        )
        self.proc = subprocess.Popen(
            [str(TWS), "--config", str(self.routes), "--port", "0", "--log-format", "off"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # The banner: its first line holds the URL, a later one the connection capacity.
        self.banner = ""
        while "connections" not in self.banner:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"tws exited: {self.banner!r}")
            self.banner += line
        match = re.search(r"https?://([\d.]+):(\d+)/", self.banner)
        if not match:
            raise RuntimeError(f"no URL in {self.banner!r}")
        self.addr = (match.group(1), int(match.group(2)))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def rss_kib(self, field="VmRSS"):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def connect(addr, timeout=10):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_response(s):
    """Reads one response framed by Content-Length; returns (status, body length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    status = int(head.split()[1])
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    while len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    return status, length


def get_latency(addr, path="/index.html"):
    started = time.perf_counter()
    s = connect(addr)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    status, _ = read_response(s)
    s.close()
    return status, (time.perf_counter() - started) * 1000


def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))]


TCP_ESTABLISHED = 1


def tcp_state(s):
    """The socket's TCP state from TCP_INFO (Linux)."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def wait_closed(s, limit):
    """Seconds until the peer closes (or resets) the connection, or None past `limit`."""
    started = time.time()
    s.settimeout(0.2)
    while time.time() - started < limit:
        try:
            if not s.recv(65536):
                return time.time() - started
        except socket.timeout:
            continue
        except OSError:
            return time.time() - started
    return None


def scenario_idle(base, rows, count):
    server = Tws(base)
    try:
        capacity = int(re.search(r"up to (\d+) connections", server.banner).group(1))
        rows.append(("connection capacity (banner)", f"{capacity}", f">= {count}", capacity >= count))
        rss_before = server.rss_kib()
        idle = []
        for _ in range(count):
            s = connect(server.addr)
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            idle.append(s)
        for s in idle:
            read_response(s)
        latencies = []
        for _ in range(300):
            status, ms = get_latency(server.addr)
            assert status == 200
            latencies.append(ms)
        rss = server.rss_kib()
        figure = f"p99 {p99(latencies):.2f} ms (median {statistics.median(latencies):.2f})"
        rows.append((f"GET / with {count} idle keep-alive connections", figure, "p99 < 50 ms", p99(latencies) < 50))
        rows.append((f"RSS with {count} idle connections", f"{rss} KiB (idle server {rss_before} KiB)", "< 64 MiB", rss < 64 * 1024))
        for s in idle:
            s.close()
    finally:
        server.stop()


def scenario_slow_clients(base, rows):
    server = Tws(base)
    try:
        # Slowloris: 50 connections trickling header bytes.
        loris = [connect(server.addr) for _ in range(50)]
        for s in loris:
            s.sendall(b"GET / HTTP/1.1\r\n")
        stop = threading.Event()

        def trickle():
            while not stop.is_set():
                for s in loris:
                    try:
                        s.send(b"X")
                    except OSError:
                        pass
                stop.wait(0.2)

        threading.Thread(target=trickle, daemon=True).start()
        started = time.time()
        latencies = [get_latency(server.addr)[1] for _ in range(50)]
        cut = [wait_closed(s, TIMEOUT + 5) for s in loris]
        stop.set()
        worst = max((c for c in cut if c is not None), default=None)
        all_cut = all(c is not None for c in cut) and time.time() - started < TIMEOUT + 5
        rows.append(("50 slowloris heads cut off", f"all in {time.time() - started:.1f} s" if all_cut else f"{sum(c is None for c in cut)} still open",
                     f"<= header timeout {TIMEOUT} s + 2 s", all_cut and worst is not None))
        rows.append(("GET / during slowloris", f"p99 {p99(latencies):.2f} ms", "p99 < 50 ms", p99(latencies) < 50))

        # A body that never finishes.
        s = connect(server.addr)
        s.sendall(b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        took = wait_closed(s, TIMEOUT + 5)
        rows.append(("unfinished body cut off", f"{took:.1f} s" if took else "still open", f"<= body timeout {TIMEOUT} s + 2 s", took is not None and took <= TIMEOUT + 2))

        # An idle keep-alive connection.
        s = connect(server.addr)
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
        read_response(s)
        took = wait_closed(s, TIMEOUT + 5)
        rows.append(("idle keep-alive connection closed", f"{took:.1f} s" if took else "still open", f"<= idle timeout {TIMEOUT} s + 2 s", took is not None and took <= TIMEOUT + 2))

        # A reader that takes 100 bytes every 200 ms (500 B/s, half the default minimum rate).
        s = connect(server.addr)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        started, received, closed = time.time(), 0, False
        latencies = []
        while time.time() - started < TIMEOUT * 4 + 5:
            latencies.append(get_latency(server.addr)[1])
            time.sleep(0.2)
            # The kernel may hold megabytes already sent: the cut shows in the TCP state (the
            # server's reset) long before the reader could drain that buffer.
            if tcp_state(s) != TCP_ESTABLISHED:
                closed = True
                break
            try:
                s.settimeout(0.1)
                chunk = s.recv(100)
                if not chunk:
                    closed = True
                    break
                received += len(chunk)
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
        took = time.time() - started
        rows.append(("slow reader (500 B/s) of a large file cut off", f"after {took:.1f} s, {received} bytes read" if closed else "still open",
                     f"cut within {TIMEOUT * 2 + 2} s", closed and took <= TIMEOUT * 2 + 2))
        rows.append(("GET / during the slow reader", f"p99 {p99(latencies):.2f} ms", "p99 < 50 ms", p99(latencies) < 50))
    finally:
        server.stop()


def scenario_cap(base, rows):
    server = Tws(base, "max_connections = 100")
    try:
        held = []
        for _ in range(100):
            s = connect(server.addr)
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            read_response(s)
            held.append(s)
        refused = 0
        for _ in range(50):
            s = connect(server.addr)
            s.settimeout(5)
            try:
                data = s.recv(4096)
                if not data or data.startswith(b"HTTP/1.1 503"):
                    refused += 1
            except OSError:
                refused += 1
            s.close()
        served = 0
        for s in held:
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            served += read_response(s)[0] == 200
        rows.append(("connections past a cap of 100 refused", f"{refused} of 50 refused; {served} of 100 held still served",
                     "50 refused, 100 served", refused == 50 and served == 100))
        for s in held:
            s.close()
    finally:
        server.stop()


def scenario_big_downloads(base, rows, clients, size):
    server = Tws(base)
    try:
        idle = server.rss_kib()
        peak = [idle]
        stop = threading.Event()

        def sample():
            while not stop.wait(0.2):
                peak[0] = max(peak[0], server.rss_kib())

        threading.Thread(target=sample, daemon=True).start()
        started = time.time()
        curls = [
            subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}",
                              f"http://{server.addr[0]}:{server.addr[1]}/huge.bin"],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(clients)
        ]
        sizes = [int(c.communicate(timeout=900)[0] or 0) for c in curls]
        stop.set()
        took = time.time() - started
        complete = sum(s == size for s in sizes)
        gib = size / 2**30
        rows.append((f"{clients} clients x {gib:g} GiB file", f"{complete} complete in {took:.0f} s ({clients * size / took / 2**30:.2f} GiB/s)",
                     "all complete", complete == clients))
        rows.append((f"RSS while serving {clients} x {gib:g} GiB", f"peak {peak[0]} KiB (idle {idle} KiB)", "peak - idle < 16 MiB", peak[0] - idle < 16 * 1024))
    finally:
        server.stop()


def scenario_stop_under_load(base, rows, size):
    server = Tws(base)
    try:
        curls = [
            subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "--limit-rate", "200M",
                              f"http://{server.addr[0]}:{server.addr[1]}/huge.bin"],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(10)
        ]
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        sizes = [int(c.communicate(timeout=300)[0] or 0) for c in curls]
        code = server.proc.wait(timeout=60)
        complete = sum(s == size for s in sizes)
        rows.append(("SIGTERM during 10 downloads", f"{complete} of 10 complete, exit {code}", "10 complete, exit 0", complete == 10 and code == 0))
    finally:
        server.stop()


def scenario_listing(base, rows, entries, readers, rate):
    """A folder of `entries` files: one reader (peak memory against the body it builds), then
    `readers` clients reading the listing at `rate` bytes/s each."""
    folder = base / "site" / "huge-folder"
    if not folder.exists():
        folder.mkdir()
        for i in range(entries):
            (folder / f"file{i:06}.txt").write_bytes(b"x" * (i % 100))

    def fetch(server, path):
        s = connect(server.addr, timeout=60)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        total = 0
        while chunk := s.recv(1 << 20):
            total += len(chunk)
        return total

    # Everything on one page: the whole folder in one body, as before paging.
    server = Tws(base, server=f"max_listing_entries = {entries}")
    try:
        idle = server.rss_kib()
        started = time.time()
        size = fetch(server, "/huge-folder/")
        took = time.time() - started
        peak = server.rss_kib("VmHWM") - idle
        rows.append((f"one page of all {entries} entries: peak above idle against the body",
                     f"{peak} KiB for {size // 1024} KiB ({peak * 1024 / size:.2f}x), built in {took:.2f} s",
                     "< 2x the body", peak * 1024 < 2 * size))
    finally:
        server.stop()
    # Default paging, and many slow readers of the first page.
    server = Tws(base)
    try:
        idle = server.rss_kib()
        size = fetch(server, "/huge-folder/")
        one = server.rss_kib("VmHWM")
        peak = [one]
        stop = threading.Event()

        def sample():
            while not stop.wait(0.1):
                peak[0] = max(peak[0], server.rss_kib())

        def slow():
            s = connect(server.addr, timeout=60)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.sendall(b"GET /huge-folder/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            got, t0 = 0, time.time()
            while time.time() - t0 < 4:
                chunk = s.recv(16384)
                if not chunk:
                    break
                got += len(chunk)
                time.sleep(len(chunk) / rate)
            s.close()

        threading.Thread(target=sample, daemon=True).start()
        threads = [threading.Thread(target=slow) for _ in range(readers)]
        for t in threads:
            t.start()
        latencies = [get_latency(server.addr, "/index.html")[1] for _ in range(100)]
        for t in threads:
            t.join()
        stop.set()
        rows.append((f"first page ({size // 1024} KiB) of {entries} entries, one reader", f"peak {one} KiB (idle {idle} KiB)", "-", True))
        rows.append((f"{readers} readers at {rate // 1024} KiB/s of that page", f"peak {peak[0]} KiB; GET / p99 {p99(latencies):.2f} ms",
                     "< 64 MiB", peak[0] < 64 * 1024))
    finally:
        server.stop()


def scenario_bodies(base, rows, attackers=300):
    """`attackers` connections each sending 1,000,000 bytes of a body declared as 1 MiB and
    stopping there, while a normal client creates users and fetches a page."""
    server = Tws(base)
    try:
        idle = server.rss_kib()
        head = (b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1048576\r\n\r\n")
        socks = []
        for _ in range(attackers):
            s = connect(server.addr)
            s.sendall(head)
            s.setblocking(False)
            socks.append([s, 0])
        chunk = b" " * 65536
        deadline = time.time() + 4
        while time.time() < deadline and any(sent < 1_000_000 for _, sent in socks):
            for entry in socks:
                if entry[1] < 1_000_000:
                    try:
                        entry[1] += entry[0].send(chunk[: 1_000_000 - entry[1]])
                    except BlockingIOError:
                        pass
        sent = sum(sent for _, sent in socks)
        latencies = []
        for i in range(100):
            body = f'{{"Nombre": "user {i}"}}'.encode()
            started = time.perf_counter()
            s = connect(server.addr)
            s.sendall(b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            status, _ = read_response(s)
            s.close()
            assert status == 201, status
            latencies.append((time.perf_counter() - started) * 1000)
            latencies.append(get_latency(server.addr)[1])
        peak = server.rss_kib("VmHWM")
        for s, _ in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(1)
        after = server.rss_kib()
        rows.append((f"{attackers} unfinished 1 MiB bodies ({sent / 2**20:.0f} MiB sent)",
                     f"peak {peak} KiB (idle {idle} KiB), {after} KiB 1 s after they reset",
                     "peak < idle + 64 MiB budget + 32 MiB", peak < idle + 96 * 1024))
        rows.append(("POST /createUser and GET / meanwhile", f"p99 {p99(latencies):.2f} ms", "p99 < 100 ms", p99(latencies) < 100))
    finally:
        server.stop()


def scenario_compressed_download(base, rows, size):
    """A `size`-byte text file downloaded compressed (streamed through the compressor, since
    it is far larger than what is kept): RSS must stay flat."""
    text = base / "site" / "huge-text.txt"
    if not text.exists():
        line = b"".join(b"%08d the quick brown fox jumps over the lazy dog\n" % i for i in range(20000))
        with open(text, "wb") as f:
            written = 0
            while written < size:
                piece = line[: size - written]
                f.write(piece)
                written += len(piece)
    server = Tws(base)
    try:
        idle = server.rss_kib()
        peak = [idle]
        stop = threading.Event()

        def sample():
            while not stop.wait(0.2):
                peak[0] = max(peak[0], server.rss_kib())

        threading.Thread(target=sample, daemon=True).start()
        started = time.time()
        out = subprocess.run(
            ["curl", "-s", "--compressed", "-H", "Accept-Encoding: zstd", "-o", "/dev/null",
             "-w", "%{size_download} %{size_header}",
             f"http://{server.addr[0]}:{server.addr[1]}/huge-text.txt"],
            capture_output=True, text=True, timeout=900)
        stop.set()
        took = time.time() - started
        wire = int(out.stdout.split()[0] or 0)
        # curl's size_download is what came over the wire; decompress separately for the size.
        check = subprocess.run(
            f"curl -s -H 'Accept-Encoding: zstd' http://{server.addr[0]}:{server.addr[1]}/huge-text.txt | zstd -dc | wc -c",
            shell=True, capture_output=True, text=True, timeout=900)
        whole = int(check.stdout.strip() or 0)
        gib = size / 2**30
        rows.append((f"{gib:g} GiB text file sent zstd-compressed, streamed",
                     f"{whole} bytes decompressed from {wire} on the wire in {took:.0f} s",
                     "all bytes", whole == size))
        rows.append((f"RSS while compressing {gib:g} GiB", f"peak {peak[0]} KiB (idle {idle} KiB)",
                     "peak - idle < 16 MiB", peak[0] - idle < 16 * 1024))
    finally:
        server.stop()
        text.unlink(missing_ok=True)


def make_cert(base):
    key, cert = base / "key.pem", base / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def scenario_tls_idle(base, rows, count):
    """`count` idle HTTPS keep-alive connections (each made one request), then fresh HTTPS
    requests on new connections among them."""
    import ssl
    cert, key = make_cert(base)
    server = Tws(base, idle=120, tls=(cert, key))
    ctx = ssl.create_default_context(cafile=str(cert))
    try:
        rss_before = server.rss_kib()

        def tls_connect():
            raw = connect(server.addr)
            return ctx.wrap_socket(raw, server_hostname="localhost")

        idle = []
        for _ in range(count):
            s = tls_connect()
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            read_response(s)
            idle.append(s)
        rss = server.rss_kib()
        latencies = []
        for _ in range(300):
            started = time.perf_counter()
            s = tls_connect()
            s.sendall(b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            status, _ = read_response(s)
            s.close()
            assert status == 200
            latencies.append((time.perf_counter() - started) * 1000)
        per = (rss - rss_before) * 1024 / count
        rows.append((f"RSS with {count} idle HTTPS keep-alive connections",
                     f"{rss} KiB (idle server {rss_before} KiB; {per / 1024:.1f} KiB each)",
                     "< 192 MiB", rss < 192 * 1024))
        rows.append((f"new HTTPS connection + GET among {count} idle ones (full handshake)",
                     f"p99 {p99(latencies):.2f} ms (median {statistics.median(latencies):.2f})", "p99 < 50 ms",
                     p99(latencies) < 50))
        for s in idle:
            s.close()
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=int, default=5000, help="idle connections to hold")
    parser.add_argument("--clients", type=int, default=50, help="clients of the big file")
    parser.add_argument("--size-mib", type=int, default=2048, help="size of the big file")
    parser.add_argument("--entries", type=int, default=100_000, help="files in the listed folder")
    parser.add_argument("--readers", type=int, default=100, help="slow readers of the listing")
    parser.add_argument("--only", help="run only this scenario (idle, slow, cap, big, stop, listing, bodies, "
                        "tls-idle, compressed)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tws-stress-"))
    site = base / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>stress</p>\n")
    with open(site / "big.bin", "wb") as f:
        f.truncate(256 << 20)
    size = args.size_mib << 20
    with open(site / "huge.bin", "wb") as f:
        f.truncate(size)
    rows = []
    for name, run in [
        ("idle", lambda: scenario_idle(base, rows, args.idle)),
        ("slow", lambda: scenario_slow_clients(base, rows)),
        ("cap", lambda: scenario_cap(base, rows)),
        ("big", lambda: scenario_big_downloads(base, rows, args.clients, size)),
        ("stop", lambda: scenario_stop_under_load(base, rows, size)),
        ("listing", lambda: scenario_listing(base, rows, args.entries, args.readers, 64 * 1024)),
        ("bodies", lambda: scenario_bodies(base, rows)),
        ("tls-idle", lambda: scenario_tls_idle(base, rows, args.idle)),
        ("compressed", lambda: scenario_compressed_download(base, rows, size)),
    ]:
        if args.only and args.only != name:
            continue
        print(f"running {name} ...", file=sys.stderr)
        try:
            run()
        except Exception as e:  # a broken scenario is a failed row, not a crash of the script
            rows.append((name, f"error: {e}", "-", False))
    print("| scenario | figure | target | result |")
    print("|---|---|---|---|")
    for scenario, figure, target, ok in rows:
        print(f"| {scenario} | {figure} | {target} | {'pass' if ok else 'FAIL'} |")
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
