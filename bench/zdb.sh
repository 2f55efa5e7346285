#!/usr/bin/env bash
# Zero-DB benchmark: redis-benchmark against `zgrid zdb run` and redis-server in one run.
#
# SET and GET, 50 clients, 100-byte values, 100k random keys, 200k requests, at
# pipeline 1 and 16; prints requests/s of each server and the ratio zgrid/redis
# with the targets (pipeline 1: >= 0.8, pipeline 16: >= 0.4). Each server gets
# a fresh data directory. Usage: bash bench/zdb.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."
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

printf '\n%-5s %-8s %14s %14s %7s %7s %s\n' test pipeline zgrid redis ratio target result
for pipeline in 1 16; do
  target=$([ "$pipeline" = 1 ] && echo 0.8 || echo 0.4)
  for test in set get; do
    ours=${result[zgrid,$test,$pipeline]}
    theirs=${result[redis,$test,$pipeline]}
    "$python" - "$test" "$pipeline" "$ours" "$theirs" "$target" <<'PY'
import sys
test, pipeline, ours, theirs, target = sys.argv[1:]
ratio = float(ours) / float(theirs)
verdict = "met" if ratio >= float(target) else "MISSED"
print(f"{test.upper():<5} {pipeline:<8} {float(ours):14,.0f} {float(theirs):14,.0f} {ratio:7.2f} {target:>7} {verdict}")
PY
  done
done
