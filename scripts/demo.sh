#!/usr/bin/env bash
# The demo of what runs today: a real identity signs a real deployment, the
# signature verifies against its address, and any change to the signed
# document is caught. (It grows into a whole local grid as components land.)
set -euo pipefail
cd "$(dirname "$0")/.."
zgrid=".venv/bin/zgrid"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ZGRID_HOME="$work/home"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a deployer identity (24-word mnemonic, key file 0600)"
$zgrid identity new
address=$($zgrid identity show --json | $(dirname "$zgrid")/python -c 'import json,sys; print(json.load(sys.stdin)["address"])')
ls -l "$ZGRID_HOME/identity.json"

step "validate the example deployment: hash and capacity"
cp examples/deployment.json "$work/deployment.json"
$zgrid deployment check "$work/deployment.json"

step "sign it as twin 1 and verify the signature requirement"
$zgrid deployment sign "$work/deployment.json" --twin-id 1
$zgrid deployment check "$work/deployment.json" --signer "1=$address"

step "tamper with the signed document (more memory): verification must fail"
sed -i 's/"memory": 2147483648/"memory": 4294967296/' "$work/deployment.json"
if $zgrid deployment check "$work/deployment.json" --signer "1=$address"; then
  echo "tampered deployment verified: this is a bug" >&2
  exit 1
fi
echo "refused, as it must be"
