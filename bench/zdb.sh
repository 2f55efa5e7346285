#!/usr/bin/env bash
# Zero-DB benchmark: redis-benchmark against `zgrid zdb run` and redis-server in one run.
#
# SET and GET, 50 clients, 100-byte values, 100k random keys, 200k requests, at
# pipeline 1 and 16; prints requests/s of each server and the ratio zgrid/redis
# with the targets (pipeline 1: >= 0.8, pipeline 16: >= 0.4). Each server gets
# a fresh data directory. Then bench/zdb_binary.py: SET and GET of random binary
# values (4 KiB, 64 KiB, 512 KiB) against both, in MB/s with the ratio.
# Usage: bash bench/zdb.sh [--json] [requests]  (--json: one JSON object on stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
json=""
if [ "${1:-}" = "--json" ]; then json="--json"; shift; fi
requests="${1:-200000}"
zgrid="$PWD/.venv/bin/zgrid"
python="$PWD/.venv/bin/python"
for tool in redis-benchmark redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "bench/zdb.sh needs $tool (make install)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ping() {
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$1" PING 2>/dev/null)" = "PONG" ] && return 0
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2; exit 1
}
measure() {  # port test pipeline -> requests per second
  redis-benchmark -h 127.0.0.1 -p "$1" -t "$2" -c 50 -d 100 -r 100000 -n "$requests" -P "$3" -q 2>/dev/null \
    | tr '\r' '\n' | grep "requests per second" | tail -1 | sed -E 's/^[A-Z]+: ([0-9.]+) requests per second.*/\1/'
}

declare -A result
for pipeline in 1 16; do
  for server in zgrid redis; do
    port=$(free_port)
    if [ "$server" = zgrid ]; then
      "$zgrid" zdb run --data "$work/$pipeline/data" --index "$work/$pipeline/index" \
        --listen 127.0.0.1 --port "$port" >"$work/zgrid-$pipeline.log" 2>&1 &
    else
      redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null 2>&1 &
    fi
    pids+=($!)
    wait_ping "$port"
    for test in set get; do
      result[$server,$test,$pipeline]=$(measure "$port" "$test" "$pipeline")
      echo "  $server ${test^^} pipeline $pipeline: ${result[$server,$test,$pipeline]} req/s" >&2
    done
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
    unset 'pids[-1]'
  done
done

rows=()
for pipeline in 1 16; do
  target=$([ "$pipeline" = 1 ] && echo 0.8 || echo 0.4)
  for test in set get; do
    rows+=("$test $pipeline ${result[zgrid,$test,$pipeline]} ${result[redis,$test,$pipeline]} $target")
  done
done
small=$("$python" - "$json" "${rows[@]}" <<'PY'
import json, sys
as_json, rows = sys.argv[1] == "--json", [row.split() for row in sys.argv[2:]]
results = []
for test, pipeline, ours, theirs, target in rows:
    ratio = float(ours) / float(theirs)
    results.append({"command": test.upper(), "pipeline": int(pipeline), "zgrid_rps": float(ours),
                    "redis_rps": float(theirs), "ratio": round(ratio, 2), "target": float(target),
                    "met": ratio >= float(target)})
if as_json:
    print(json.dumps(results))
else:
    print(f"\n{'test':<5} {'pipeline':<8} {'zgrid':>14} {'redis':>14} {'ratio':>7} {'target':>7} result")
    for r in results:
        print(f"{r['command']:<5} {r['pipeline']:<8} {r['zgrid_rps']:14,.0f} {r['redis_rps']:14,.0f}"
              f" {r['ratio']:7.2f} {r['target']:>7} {'met' if r['met'] else 'MISSED'}")
PY
)
binary=$("$python" bench/zdb_binary.py $json)
if [ -n "$json" ]; then
  printf '{"small_values": %s, "binary_values": %s}\n' "$small" "$binary"
else
  printf '%s\n\nRandom binary values, pipeline 16, MB/s of payload:%s\n' "$small" "$binary"
fi
