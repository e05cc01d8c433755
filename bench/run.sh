#!/usr/bin/env bash
# Benchmark tws against nginx, lighttpd and static-web-server on this machine; writes
# bench/RESULTS.md.
# Usage: bench/run.sh [--quick] [--rounds N] [--duration SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in wrk ab nginx lighttpd taskset; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update
  apt-get install -y wrk apache2-utils nginx-light lighttpd util-linux
fi
# The best Rust peer, built from crates.io.
command -v static-web-server >/dev/null 2>&1 || cargo install --locked static-web-server

cargo build --release --quiet
exec python3 bench/harness.py "$@"
