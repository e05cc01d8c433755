#!/usr/bin/env python3
"""Runs README.md as a newcomer would: every runnable block, in order, in one bash session.

Which blocks run (the words after the fence's language; GitHub shows none of them):

  ```sh run               a shell block, run as written (stdin /dev/null, one bash session:
                          `cd`, variables and background jobs carry over to later blocks)
  ```sh run timeout=900   the same, allowed 900 seconds instead of the default 60
  ```toml file=NAME       not run: its text is written to NAME when the blocks before it
                          have run (a routes file the next blocks use)

Plain ```sh blocks are illustrative (root, port 443, a CA on the internet, systemd) and are
listed, not run.

Where: a fresh copy of the repository's files (tracked and untracked-but-not-ignored, with
their modification times, so cargo sees them as already built) in a temporary folder, with no
data folder. Its `target` is a link to this repository's, so `cargo build --release` in the
first block reuses what is built and leaves the binary where the next run finds it.

Ports: the README keeps its documented ports (8080 for the bundled site, 8081 beside it, 8443
for HTTPS, 8000 for a folder), which read naturally and are what a person pasting the blocks
gets. Here each of them is replaced, in every runnable block and in the copy's routes.toml,
by a port that was free a moment before (bound to port 0 and released: a small race with
other programs, which only fails the run), so that the run neither needs nor disturbs those
ports on a machine where something else (another tws, another CI run) holds them.

Servers: a command that ends in `&` is a server started in the background. Before it, its
port must be free (else an earlier server is still there: the README collides); after it,
the block waits until the port answers (at most 60 s), failing at once if the server exits.
Its port is the command's `--port N`, or else the `port =` of its `--config FILE`. Its output
goes to the output of the block that started it. Every process of the session is stopped at
the end.

Failures: `curl` runs with --fail-with-body (an HTTP error fails the block), bash with
errexit and pipefail, and `tws` alone is refused (it is not on the PATH before the install
step: use ./target/release/tws). The first block that fails, or outlasts its time, stops the
run: its text and output (and the output of the servers started before it) are printed, and
the exit status is 1.

Usage: python3 .ci/readme.py [--list] [--keep]
"""

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
DOCUMENTED_PORTS = (8080, 8081, 8443, 8000)
DEFAULT_TIMEOUT = 60
SERVER_WAIT = 60

FENCE = re.compile(r"^(\s*)(`{3,})\s*([^`]*)$")
# A command ending in a single `&` (a trailing comment allowed): a background server.
BACKGROUND = re.compile(r"^(?P<cmd>.*[^&])&\s*(#.*)?$")

PRELUDE = r"""
set -eo pipefail
export NO_COLOR=1
curl() { command curl --fail-with-body -sS "$@"; }
tws() {
  echo "README: a bare \`tws\` is not on the PATH before the install step; use ./target/release/tws" >&2
  return 127
}
__tws_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
__tws_free() {
  # A server stopped just before (kill $!) may take a moment to close its port.
  local deadline=$((SECONDS + 5))
  while __tws_answers "$1" && ((SECONDS < deadline)); do sleep 0.05; done
  if __tws_answers "$1"; then
    echo "README: port $1 (the README's $2) already answers before this server starts: an earlier server still holds it" >&2
    return 1
  fi
}
__tws_wait() {
  local deadline=$((SECONDS + %(wait)d))
  until __tws_answers "$1"; do
    if ! kill -0 "$3" 2>/dev/null; then
      echo "README: the server for port $1 (the README's $2) exited before answering" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "README: nothing answers on port $1 (the README's $2) after %(wait)d s" >&2
      return 1
    fi
    sleep 0.05
  done
}
__tws_run() { source "$2" </dev/null >"$3" 2>&1; echo "__TWS_DONE__ $1"; }
""" % {"wait": SERVER_WAIT}


class Block:
    def __init__(self, line, lang, words, text):
        self.line, self.lang, self.text = line, lang, text
        self.run = "run" in words
        self.file = next((w[5:] for w in words if w.startswith("file=")), None)
        self.timeout = next(
            (int(w[8:]) for w in words if w.startswith("timeout=")), DEFAULT_TIMEOUT
        )


def blocks(path):
    """Every fenced block of the file, with its line number, language and marker words."""
    found, lines, i = [], open(path, encoding="utf-8").read().split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group(1), m.group(2), m.group(3).split()
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        lang = info[0] if info else ""
        found.append(Block(i + 1, lang, info[1:], "\n".join(body) + "\n"))
        i = j + 1
    return found


def free_ports():
    """One port per documented port, each free a moment ago (see the module's docs)."""
    ports, held = {}, []
    for documented in DOCUMENTED_PORTS:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
        ports[documented] = s.getsockname()[1]
    for s in held:
        s.close()
    return ports


def substitute(text, ports):
    pattern = r"\b(%s)\b" % "|".join(str(p) for p in ports)
    return re.sub(pattern, lambda m: str(ports[int(m.group(1))]), text)


def server_port(command, work):
    """The port a background command listens on, or None when it cannot be told."""
    m = re.search(r"(?:--port|-p)[ =](\d+)", command)
    if m:
        return int(m.group(1))
    m = re.search(r"(?:--config|-c)[ =](\S+)", command)
    if m:
        try:
            text = open(os.path.join(work, m.group(1)), encoding="utf-8").read()
        except OSError:
            return None
        m = re.search(r"^port\s*=\s*(\d+)", text, re.M)
        if m:
            return int(m.group(1))
    return None


def instrument(text, ports, work):
    """The block's script, with a port check before and a wait after each background server."""
    documented = {v: k for k, v in ports.items()}
    out, pending = [], []
    for line in text.split("\n"):
        pending.append(line)
        if line.rstrip().endswith("\\"):
            continue
        command = "\n".join(pending)
        pending = []
        m = BACKGROUND.match(command.replace("\\\n", " "))
        if not m or command.lstrip().startswith("#"):
            out.append(command)
            continue
        port = server_port(m.group("cmd"), work)
        if port is None:
            raise SystemExit(
                "README: cannot tell the port of a background server; name it with --port:\n"
                + command
            )
        doc = documented.get(port, port)
        out.append(f"__tws_free {port} {doc}")
        out.append(command)
        out.append(f"__tws_wait {port} {doc} $!")
    return "\n".join(out + pending)


def copy_repo(work):
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in names)):
        source = os.path.join(REPO, name)
        if not os.path.isfile(source) or name == "target" or name.startswith("target/"):
            continue
        os.makedirs(os.path.dirname(os.path.join(work, name)), exist_ok=True)
        shutil.copy2(source, os.path.join(work, name))
    os.makedirs(os.path.join(REPO, "target"), exist_ok=True)
    os.symlink(os.path.join(REPO, "target"), os.path.join(work, "target"))


def tail(path, lines=60):
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return "(no output)\n"
    kept = text.splitlines()[-lines:]
    return ("\n".join(kept) + "\n") if kept else "(no output)\n"


def main():
    listing, keep = "--list" in sys.argv, "--keep" in sys.argv
    every = blocks(README)
    used = [b for b in every if b.run or b.file]
    for b in every:
        if b.lang in ("sh", "bash", "console") and not b.run:
            print(f"not run (illustrative): README.md:{b.line}")
    if listing:
        for b in used:
            what = f"writes {b.file}" if b.file else f"runs (timeout {b.timeout} s)"
            print(f"README.md:{b.line}: {what}")
        return 0
    ports = free_ports()
    print("ports: " + ", ".join(f"{k} -> {v}" for k, v in ports.items()))
    work = tempfile.mkdtemp(prefix="tws-readme-")
    meta = os.path.join(work, ".readme-run")
    os.makedirs(meta)
    copy_repo(work)
    routes = os.path.join(work, "routes.toml")
    with open(routes, encoding="utf-8") as f:
        text = substitute(f.read(), ports)
    with open(routes, "w", encoding="utf-8") as f:
        f.write(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWS_")}
    shell = subprocess.Popen(
        ["bash", "--norc", "--noprofile"], cwd=work, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines = queue.Queue()

    def read():
        for line in shell.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    shell.stdin.write(PRELUDE)
    shell.stdin.flush()
    started, failed, servers = time.time(), None, []
    try:
        for n, b in enumerate(used):
            if b.file:
                with open(os.path.join(work, b.file), "w", encoding="utf-8") as f:
                    f.write(substitute(b.text, ports))
                print(f"README.md:{b.line}: wrote {b.file}")
                continue
            script = os.path.join(meta, f"block{n}.sh")
            output = os.path.join(meta, f"block{n}.out")
            with open(script, "w", encoding="utf-8") as f:
                f.write(instrument(substitute(b.text, ports), ports, work))
            began = time.time()
            shell.stdin.write(f"__tws_run {n} {script} {output}\n")
            shell.stdin.flush()
            outcome = None
            while outcome is None:
                try:
                    line = lines.get(timeout=max(0.0, began + b.timeout - time.time()))
                except queue.Empty:
                    outcome = f"did not finish within {b.timeout} s"
                    break
                if line is None:
                    outcome = f"failed (exit status {shell.wait()})"
                elif line.strip() == f"__TWS_DONE__ {n}":
                    outcome = "ok"
                else:
                    sys.stdout.write(line)
            if outcome != "ok":
                failed = (b, script, output, outcome)
                break
            print(f"README.md:{b.line}: ok in {time.time() - began:.1f} s")
            if re.search(r"[^&]&\s*(#.*)?$", b.text, re.M):
                servers.append((b, output))
    finally:
        try:
            os.killpg(shell.pid, signal.SIGTERM)
            shell.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(shell.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if failed:
        b, script, output, outcome = failed
        print(f"\nREADME.md:{b.line}: the block {outcome}. As run:\n")
        print(open(script, encoding="utf-8").read())
        print("Its output:\n" + tail(output, 200))
        for s, out in servers:
            print(f"Output of the servers started at README.md:{s.line} (last lines):\n" + tail(out))
        print(f"The working folder is kept: {work}")
        return 1
    print(f"every runnable block of README.md passed in {time.time() - started:.0f} s")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"The working folder is kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
