#!/usr/bin/env bash
# The OpenAPI document checked by outside tools: for the bundled routes.toml and for
# tests/data/openapi-routes.toml (every field type and option), start tws on a free port
# with a fresh data folder, validate /openapi.json with openapi-spec-validator, then let
# schemathesis generate requests from it against the live server (a bounded number of
# examples) and fail on any 5xx, response outside the document, or crash.
# Live updates (`/things/events`: a stream that does not end) are in the validated document
# but not called.
#
# Needs openapi-spec-validator and schemathesis (4.x) on PATH, or in the venv named by
# $TWS_OPENAPI_VENV (.ci/run makes one). $TWS_BIN: the tws binary (default
# target/debug/tws, built first). $TWS_OPENAPI_EXAMPLES: examples per operation (30).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${TWS_OPENAPI_VENV:-}" ]; then
  PATH="$TWS_OPENAPI_VENV/bin:$PATH"
fi
for tool in openapi-spec-validator schemathesis; do
  command -v "$tool" >/dev/null || { echo "openapi: $tool is not installed"; exit 1; }
done
bin=${TWS_BIN:-target/debug/tws}
if [ -z "${TWS_BIN:-}" ]; then
  cargo build --quiet
fi
examples=${TWS_OPENAPI_EXAMPLES:-30}
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

check() {
  local config=$1 auth=$2 name
  name=$(basename "$config" .toml)
  mkdir -p "$work/$name"
  # Port 0: tws binds a free port and prints its URL (no probing for a free one).
  "$bin" --config "$config" --data "$work/$name/data" --port 0 --log-format off \
    >"$work/$name/out" 2>"$work/$name/err" &
  pid=$!
  local url=
  for _ in $(seq 100); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/$name/out" | head -n1 || true)
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "openapi: tws did not start with $config:"; cat "$work/$name/out" "$work/$name/err"
    exit 1
  fi
  curl -fsS "$url/openapi.json" -o "$work/$name/openapi.json"
  openapi-spec-validator "$work/$name/openapi.json"
  local args=(--config-file "$PWD/.ci/schemathesis.toml" run "$url/openapi.json" --max-examples "$examples" --seed "${TWS_OPENAPI_SEED:-1}"
    --request-timeout 10 --exclude-path-regex '/events$' --report junit --report-dir "$work/$name/report")
  [ -n "$auth" ] && args+=(--auth "$auth")
  # Run from the scratch folder: schemathesis keeps a cache (.schemathesis/) where it runs.
  if ! (cd "$work/$name" && schemathesis "${args[@]}") >"$work/$name/schemathesis" 2>&1; then
    cat "$work/$name/schemathesis"
    echo "openapi: schemathesis found problems with $config (tws stderr follows)"
    tail -n 20 "$work/$name/err"
    exit 1
  fi
  sed -n "/WARNINGS/,/SUMMARY/p;/passed\|failed\|warning\|generated/p" "$work/$name/schemathesis" | tail -n 12
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "openapi: tws exited during the run with $config"; cat "$work/$name/err"; exit 1
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "openapi: $config: document valid, schemathesis clean"
}

check routes.toml ""
check tests/data/openapi-routes.toml "alice:secret"
