#!/usr/bin/env bash
# The demo of what runs today: a dev ledger on this machine, a farmer who funds an
# account, creates a twin and a farm with a public IP, signs a real deployment that is
# checked against the keys on the ledger, a Zero-DB server storing a value, flists, and
# a replay of the whole chain. (It grows into a whole local grid as components land.)
set -euo pipefail
cd "$(dirname "$0")/.."
zgrid="$PWD/.venv/bin/zgrid"
python="$PWD/.venv/bin/python"
work=$(mktemp -d)
ledger_pid=""
zdb_pid=""
hub_pid=""
mount_pid=""
cleanup() {
  for pid in "$mount_pid" "$hub_pid" "$ledger_pid" "$zdb_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json_field() { "$python" -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }

port=$(free_port)
export ZGRID_LEDGER="http://127.0.0.1:$port"
export ZGRID_HOME="$work/farmer"

step "a dev ledger (1 s blocks) on 127.0.0.1:$port"
$zgrid chain init --dev --data "$work/chain"
$zgrid chain run --data "$work/chain" --listen "127.0.0.1:$port" &
ledger_pid=$!
for _ in $(seq 100); do $zgrid chain status >/dev/null 2>&1 && break; sleep 0.1; done
$zgrid chain status

step "a farmer: identity, tokens from the faucet, a twin, a farm with a public IP"
$zgrid identity new
$zgrid account faucet 500
$zgrid account balance
$zgrid twin create
$zgrid farm create demo-farm
$zgrid farm add-ip 1 203.0.113.10/24 203.0.113.1   # a documentation range
$zgrid farm show 1

step "twin 1 signs a deployment; checked against twin 1's key on the ledger; a tampered copy is refused"
cp examples/deployment.json "$work/deployment.json"
$zgrid deployment sign "$work/deployment.json" --twin-id 1
$zgrid deployment check "$work/deployment.json"   # against the ledger at $ZGRID_LEDGER
sed -i 's/"memory": 2147483648/"memory": 4294967296/' "$work/deployment.json"
if $zgrid deployment check "$work/deployment.json" 2>/dev/null; then
  echo "tampered deployment verified: this is a bug" >&2
  exit 1
fi
echo "tampered copy refused, as it must be"
export ZGRID_HOME="$work/deployer"
$zgrid identity new
address=$($zgrid identity show --json | json_field address)
cp examples/deployment.json "$work/forged.json"
$zgrid deployment sign "$work/forged.json" --twin-id 1   # someone else's key, claiming twin 1
if $zgrid deployment check "$work/forged.json" 2>/dev/null; then
  echo "a signature by the wrong key verified against the ledger: this is a bug" >&2
  exit 1
fi
echo "a signature by a key that is not twin 1's is refused"
$zgrid deployment check "$work/forged.json" --signer "1=$address" | tail -1   # offline, by hand

step "Zero-DB: store and read a value through the Redis protocol, in 0-db's file format"
zdb_port=$(free_port)
$zgrid zdb run --data "$work/zdb-data" --index "$work/zdb-index" --listen 127.0.0.1 --port "$zdb_port" &
zdb_pid=$!
for _ in $(seq 100); do [ "$(redis-cli -p "$zdb_port" PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
redis-cli -p "$zdb_port" SET greeting "hello from zgrid"
redis-cli -p "$zdb_port" GET greeting
redis-cli -p "$zdb_port" NSINFO default | head -4
kill "$zdb_pid"; wait "$zdb_pid" || true
zdb_pid=""
ls -l "$work/zdb-data/default" "$work/zdb-index/default"

step "flist: pack a busybox root, publish it on a hub, pull it as someone else, run it lazily"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in sh echo cat ls; do ln -s busybox "$work/rootfs/bin/$applet"; done
echo "hello from inside an flist" > "$work/rootfs/etc/motd"
$zgrid flist pack "$work/rootfs" -o "$work/busybox.fl" --store "dir://$work/blocks" --tag os=busybox
$zgrid flist inspect "$work/busybox.fl"
hub_port=$(free_port)
$zgrid hub run --data "$work/hub" --listen "127.0.0.1:$hub_port" &
hub_pid=$!
export ZGRID_HUB="http://127.0.0.1:$hub_port"
for _ in $(seq 100); do $zgrid flist ls --owners --retry-for 0 >/dev/null 2>&1 && break; sleep 0.1; done
ZGRID_HOME="$work/farmer" $zgrid flist push "$work/busybox.fl" busybox.fl
$zgrid flist ls 1
ZGRID_HOME="$work/someone" $zgrid flist pull 1/busybox.fl -o "$work/pulled.fl"
if [ "$(id -u)" = 0 ] && [ -e /dev/fuse ]; then
  mkdir -p "$work/mnt"
  $zgrid flist mount "$work/pulled.fl" "$work/mnt" --cache "$work/cache" &
  mount_pid=$!
  for _ in $(seq 100); do mountpoint -q "$work/mnt" && break; sleep 0.1; done
  chroot "$work/mnt" /bin/sh -c 'cat /etc/motd; echo "busybox ran from the mount"'
  kill "$mount_pid"; wait "$mount_pid" || true
  mount_pid=""
  echo "blocks fetched on demand: $(find "$work/cache" -type f | wc -l)"
else
  $zgrid flist unpack "$work/pulled.fl" "$work/unpacked"
  cat "$work/unpacked/etc/motd"
fi
kill "$hub_pid"; wait "$hub_pid" || true
hub_pid=""

step "stop the ledger and replay the whole chain from genesis"
kill -INT "$ledger_pid"; wait "$ledger_pid" || true
ledger_pid=""
$zgrid chain verify --data "$work/chain"
