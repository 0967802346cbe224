#!/usr/bin/env bash
# The README's Performance table in one command: installs whatever is missing, builds every
# benchmark with --config=bench (-c opt), prints the machine, then runs, one after the other:
#   //core:core_benchmark           core against malloc/mmap/memset baselines
#   //agent:agent_benchmark         the agent against core, a memload-agent process
#   //controller:fanout_benchmark   memloadctl over 100/1,000/3,000 agents against raw gRPC
# Every ratio is against a baseline measured in the same run. Only 127.0.0.1 ports picked by
# the OS are used. About 3 minutes on 2 vCPUs; run it on an otherwise idle machine.
# Extra arguments go to fanout_benchmark (e.g. --sizes=100,1000 --repetitions=1).
set -euo pipefail
cd "$(dirname "$0")/.."

bash bazel/install_deps.sh

targets=(//core:core_benchmark //agent:agent_benchmark //controller:fanout_benchmark)
bazel build --config=bench "${targets[@]}"
# Not the bazel-bin symlink: another build in this workspace may have repointed it.
bin=$(bazel info --config=bench bazel-bin 2>/dev/null)

echo "=== machine ==="
echo "$(nproc) vCPU, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)," \
  "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)," \
  "open files $(ulimit -n); load: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "=== core (median of 3 repetitions) ==="
"$bin/core/core_benchmark" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.2 2>&1 | grep -E '_median|^Run on|^CPU|^Load'

echo "=== agent ==="
"$bin/agent/agent_benchmark"

echo "=== fleet fan-out ==="
"$bin/controller/fanout_benchmark" "$@"

echo "=== load after: $(cut -d' ' -f1-3 /proc/loadavg) ==="
