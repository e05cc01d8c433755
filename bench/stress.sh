#!/usr/bin/env bash
# Stress scenarios for tws (idle connections, slow clients, the connection cap, big downloads,
# a stop under load); prints a table of figure, target, pass or fail.
# Usage: bench/stress.sh [--idle N] [--clients N] [--size-mib N]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null 2>&1 || { apt-get update && apt-get install -y curl; }
cargo build --release --quiet
exec python3 bench/stress.py "$@"
