#!/usr/bin/env python3
"""Sharing a folder: tws against miniserve (`cargo install --locked miniserve`).

Uploads of one 1 GiB file with curl (`-F`, a multipart POST, for both servers; `-T`, a PUT,
for tws, which miniserve does not take), and downloads of a 200 MB folder (20 files of 10 MiB,
incompressible) as tar.gz and as zip (MB/s of the archive's bytes; a download is cut after
60 s, and its rate is what arrived by then). Each measurement starts its server afresh (so that its
peak RSS is that operation's), pinned to CPU 0 with curl on CPU 1; servers alternate within a
round; the report gives medians over the rounds of MB/s, server CPU seconds and peak RSS, and
the ratio tws/miniserve of MB/s taken within each round.

tws syncs an upload to disk before it names it (miniserve does not): the upload rows are
measured with the page cache written back before each run, and the time includes tws's sync.
So that durable is also compared with durable, the form upload is run a second time against
miniserve followed by `sync FILE` (an fsync of what it wrote), timed together
("miniserve+fsync").

Usage: bench/folders.py [--rounds N] [--only uploads|archives] [--tws BIN] [--miniserve BIN]
                        [--out FILE]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import harness

GIB = 1 << 30
FOLDER_FILES = 20
FILE_BYTES = 10 << 20
# A download still going after this long is cut; its rate is what arrived in that time.
DOWNLOAD_SECONDS = 60


def write_random(path: Path, size: int):
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(left, 1 << 20)
            out.write(os.urandom(n))
            left -= n


def tws(binary, root, port):
    argv = [str(binary), "--root", str(root), "--port", str(port), "--upload",
            "--log-format", "off", "--data", str(root.parent / f"tws-data-{port}")]
    return harness.Server("tws", argv, port, root.parent)


def miniserve(binary, root, port):
    argv = [str(binary), "--port", str(port), "--interfaces", "127.0.0.1", "--upload-files",
            "--enable-tar-gz", "--enable-zip", str(root)]
    return harness.Server("miniserve", argv, port, root.parent)


def miniserve_synced(binary, root, port):
    server = miniserve(binary, root, port)
    server.name = "miniserve+fsync"
    return server


def peak_kib(server):
    total = 0
    for pid in server.pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


def curl(args):
    run = subprocess.run(["taskset", "-c", harness.LOAD_CPU, "curl", "-sS", "--max-time", "600",
                          "-o", "/dev/null", "-w", "%{http_code}", *args],
                         capture_output=True, text=True, check=False)
    return run.stdout.strip()


def measure(make, binary, root, op, source):
    """Runs `op` once against a fresh server: (MB/s, server CPU s, peak RSS MiB)."""
    port = harness.free_port()
    server = make(binary, root, port)
    server.start()
    try:
        cpu0 = server.cpu_seconds()
        started = time.perf_counter()
        status, size = op(server, source)
        if server.name.endswith("+fsync"):
            subprocess.run(["sync", str(root / "up.bin")], check=True)
        took = time.perf_counter() - started
        cpu = server.cpu_seconds() - cpu0
        peak = peak_kib(server) / 1024
    finally:
        server.stop()
    if not (status.startswith("2") or status == "303"):
        raise RuntimeError(f"{server.name}: {op.__name__} answered {status}")
    return size / took / 1e6, cpu, peak


def clean_uploads(root):
    for entry in root.iterdir():
        if entry.is_file():
            entry.unlink()
    subprocess.run(["sync"], check=True)


def upload_form(server, source):
    if server.name == "tws":
        url = server.url("/")
        field = "file"
    else:
        url = server.url("/upload?path=/")
        field = "file_to_upload"
    status = curl(["-F", f"{field}=@{source};filename=up.bin", url])
    return status, source.stat().st_size


def upload_put(server, source):
    return curl(["-T", str(source), server.url("/up.bin")]), source.stat().st_size


def tar_gz(server, _):
    query = "tar.gz" if server.name == "tws" else "tar_gz"
    return download(server, f"/big/?download={query}")


def zip_(server, _):
    return download(server, "/big/?download=zip")


def download(server, path):
    """Downloads an archive (for at most DOWNLOAD_SECONDS): its status and the bytes received."""
    out = subprocess.run(
        ["taskset", "-c", harness.LOAD_CPU, "curl", "-sS", "--max-time", str(DOWNLOAD_SECONDS),
         "-o", "/dev/null", "-w", "%{http_code} %{size_download}", server.url(path)],
        capture_output=True, text=True, check=False).stdout.split()
    return out[0], int(out[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tws", default=str(harness.TWS))
    parser.add_argument("--miniserve", default=shutil.which("miniserve")
                        or str(Path.home() / ".cargo/bin/miniserve"))
    parser.add_argument("--out", help="also write the report to this Markdown file")
    parser.add_argument("--only", choices=["uploads", "archives"],
                        help="run only the uploads or only the archive downloads")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tws-folders-", dir=os.environ.get("TMPDIR", "/var/tmp")))
    source = base / "source.bin"
    write_random(source, GIB)
    share = base / "share"
    (share / "big").mkdir(parents=True)
    for i in range(FOLDER_FILES):
        write_random(share / "big" / f"part{i:02}.bin", FILE_BYTES)
    uploads = {"tws": base / "up-tws", "miniserve": base / "up-miniserve"}
    for path in uploads.values():
        path.mkdir()
    uploads["miniserve+fsync"] = uploads["miniserve"]
    servers = {"tws": (tws, args.tws), "miniserve": (miniserve, args.miniserve),
               "miniserve+fsync": (miniserve_synced, args.miniserve)}
    ops = [
        ("upload 1 GiB, curl -F", upload_form, True, ["tws", "miniserve", "miniserve+fsync"]),
        ("upload 1 GiB, curl -T (PUT)", upload_put, True, ["tws"]),
        ("200 MB folder as tar.gz", tar_gz, False, ["tws", "miniserve"]),
        ("200 MB folder as zip", zip_, False, ["tws", "miniserve"]),
    ]
    if args.only:
        ops = [op for op in ops if op[2] == (args.only == "uploads")]
    results = {(label, name): [] for label, _, _, names in ops for name in names}
    try:
        for rnd in range(args.rounds):
            for label, op, is_upload, names in ops:
                order = names if rnd % 2 == 0 else names[::-1]
                for name in order:
                    make, binary = servers[name]
                    root = uploads[name] if is_upload else share
                    if is_upload:
                        clean_uploads(root)
                    r = measure(make, binary, root, op, source)
                    results[(label, name)].append(r)
                    print(f"round {rnd + 1} {label:<28} {name:<10} {r[0]:8.1f} MB/s  "
                          f"cpu {r[1]:6.2f} s  peak {r[2]:7.1f} MiB", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    lines = [
        f"# Sharing a folder: tws against miniserve ({args.rounds} rounds)",
        "",
        "Medians (range) over the rounds; on a peer's row, ratio = tws MB/s / that row's MB/s",
        "within each round (above 1: tws is faster).",
        "",
        "| operation | server | MB/s | server CPU s | peak RSS MiB | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, _, _, names in ops:
        for name in names:
            runs = results[(label, name)]
            cells = []
            for i, f in ((0, "{:.0f}"), (1, "{:.2f}"), (2, "{:.1f}")):
                vals = [r[i] for r in runs]
                cells.append(f"{f.format(statistics.median(vals))} ({harness.range_text(vals, f)})")
            ratio = "-"
            if name != "tws":
                rs = [a[0] / b[0] for a, b in zip(results[(label, "tws")], runs)]
                ratio = f"{statistics.median(rs):.2f} ({min(rs):.2f}-{max(rs):.2f})"
            lines.append(f"| {label} | {name} | {' | '.join(cells)} | {ratio} |")
    version = subprocess.run([args.miniserve, "--version"], capture_output=True, text=True).stdout.strip()
    lines += ["", f"miniserve: {version}; tws: {args.tws}"]
    report = "\n".join(lines)
    print()
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")


if __name__ == "__main__":
    main()
