#!/usr/bin/env bash
# What `make demo` runs once the packages and the venv are there: a whole grid on this
# machine (zgrid devnet up), a real deployment on it (examples/hello-web.yaml: a web page
# from a container, with a Zero-DB namespace), and the page fetched from this shell.
#
# The demo deploys as a deployer of its own (its store is ~/.zgrid-demo), so your own
# ~/.zgrid is left for the README's tour. Running it again finds everything running.
set -euo pipefail
cd "$(dirname "$0")/.."
zgrid="$PWD/.venv/bin/zgrid"
started=$SECONDS

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "make demo needs root: the devnet makes network namespaces, bridges and containers" >&2
  exit 1
fi

export ZGRID_HOME="$HOME/.zgrid-demo"
export ZGRID_KEY_FILE="$HOME/.zgrid-demo.key"
unset ZGRID_LEDGER ZGRID_HUB ZGRID_NETWORK ZGRID_PASSPHRASE

step "a grid on this machine: ledger, hub, base images, 2 nodes (zgrid devnet up --nodes 2)"
"$zgrid" devnet up --nodes 2

step "a deployer: an identity and tokens from the devnet's faucet"
if ! "$zgrid" identity show >/dev/null 2>&1; then
  "$zgrid" identity new >/dev/null
fi
"$zgrid" identity show
free=$("$zgrid" account balance --json | jq -r '.free_units')
if [ "$free" -lt 1000000000 ]; then   # 100 tokens (7 decimals)
  "$zgrid" account faucet 500
fi

step "deploy examples/hello-web.yaml (zgrid apply: creates it, or finds it running)"
"$zgrid" apply examples/hello-web.yaml --yes
"$zgrid" show hello-web

step "fetch the page from this shell, over the planetary network"
web=$("$zgrid" show hello-web --json | jq -r '.workloads[] | select(.name == "web") | .planetary_ip')
url="http://[$web]:8080/"
echo "curl -g $url"
curl -sS -g --retry 15 --retry-connrefused --retry-delay 1 "$url"

cat <<EOF

The page above came from a container on a devnet node, through yggdrasil.
It ran in $((SECONDS - started)) s. Reach it again with:   curl -g '$url'
This deployment is the demo's:   ZGRID_HOME=$ZGRID_HOME ZGRID_KEY_FILE=$ZGRID_KEY_FILE $zgrid show hello-web
Now do it yourself: the five-minute tour in README.md. Stop everything: $zgrid devnet down
EOF
