#!/usr/bin/env bash
# The README's first command: installs whatever is missing, builds memload, and runs a
# small cluster on this machine — three agents on their own loopback addresses, each a
# "node" with its own name and labels — then memloadctl runs a real plan across them with
# live progress, prints the usage table and the summary, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

bash bazel/install_deps.sh

echo "=== building memload"
bazel build //agent:memload-agent //agent:memload-worker //controller:memloadctl
bin=$(bazel info bazel-bin 2>/dev/null)
ctl="$bin/controller/memloadctl"

logs=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$logs"
}
trap cleanup EXIT

echo "=== starting three agents (nodes demo-1..3 on 127.0.0.1-3, ports picked by the OS)"
targets=()
for i in 1 2 3; do
  zone=$([[ $i -eq 1 ]] && echo east || echo west)
  "$bin/agent/memload-agent" --listen="127.0.0.$i:0" --node-name="demo-$i" \
    --labels="zone=$zone,demo=yes" --reserve=1GiB 2>"$logs/agent-$i.log" &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 100); do
    address=$(grep -o 'listening on [^ ]*' "$logs/agent-$i.log" | cut -d' ' -f3 || true)
    [[ -n "$address" ]] && break
    sleep 0.1
  done
  [[ -n "$address" ]] || { cat "$logs/agent-$i.log"; exit 1; }
  head -1 "$logs/agent-$i.log"
  targets+=("$address")
done
all=$(IFS=,; echo "${targets[*]}")

echo
echo "=== memloadctl agents --targets=$all"
"$ctl" agents --targets="$all"

echo
echo "=== memloadctl run: 256 MiB per node, 3 s ramp, 4 s hold, one node at a time (1 s stagger)"
"$ctl" run --targets="$all" --kind=retained --target=256MiB --touch=page --ramp=3s \
  --hold=4s --rollout=batch:1 --stagger=1s --interval=1s --plan-id=demo-ramp

echo
echo "=== memloadctl start + usage: a 128 MiB plan on zone=west, measured from the OS"
"$ctl" start --targets="$all" --selector=zone=west --kind=retained --target=128MiB \
  --plan-id=demo-hold --lease=30s
sleep 1
"$ctl" usage --targets="$all"

echo
echo "=== memloadctl stop --all"
"$ctl" stop --targets="$all" --all
echo
echo "demo finished: every plan stopped, every agent exits (SIGTERM) and returns its memory"
