#!/usr/bin/env bash
# The README's Performance table in one command: installs whatever is missing, builds every
# benchmark with --config=bench (-c opt), prints the machine, then runs, one after the other:
#   //core:core_benchmark           core against malloc/mmap/memset baselines
#   //agent:agent_benchmark         the agent against core, a memload-agent process
#   //core:churn_benchmark          streaming churn at 4 KiB-1 MiB, RSS of a held 1 GiB set,
#                                   and memload against stress-ng --vm, per candidate allocator
#   //controller:fanout_benchmark   memloadctl over 100/1,000/3,000 agents against raw gRPC
#                                   (--sizes=...,10000 for 10,000: see README "Performance")
# Every ratio is against a baseline measured in the same run. Only 127.0.0.1 ports picked by
# the OS are used. About 10 minutes on 2 idle vCPUs (BENCH_ROUNDS=1 for a quicker allocator
# comparison); run it on an otherwise idle machine.
# Extra arguments go to fanout_benchmark (e.g. --sizes=100,1000 --repetitions=1).
set -euo pipefail
cd "$(dirname "$0")/.."

bash bazel/install_deps.sh

targets=(//core:core_benchmark //core:churn_benchmark //agent:agent_benchmark
  //controller:fanout_benchmark)
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

# The process allocator (issue 16): the same binaries with each candidate Debian ships
# preloaded (glibc itself, glibc with tunables, tcmalloc, jemalloc, mimalloc), alternated
# round by round so that the machine's noise falls on all of them alike. CPU time is the
# figure compared: wall time on 2 shared cores says more about the neighbours.
lib=/usr/lib/x86_64-linux-gnu
alloc_names=(glibc glibc-tuned tcmalloc jemalloc mimalloc)
alloc_preload=("" "" "$lib/libtcmalloc_minimal.so.4" "$lib/libjemalloc.so.2" "$lib/libmimalloc.so.2")
# glibc-tuned: no trimming and no mmap per block below 32 MiB, so freed blocks stay reusable.
alloc_tunables=("" "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824" "" "" "")
rounds=${BENCH_ROUNDS:-3}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for ((round = 0; round < rounds; round++)); do
  for i in "${!alloc_names[@]}"; do
    run() {
      env LD_PRELOAD="${alloc_preload[$i]}" GLIBC_TUNABLES="${alloc_tunables[$i]}" "$@" |
        sed "s/^/${alloc_names[$i]}\t$round\t/" >>"$raw"
    }
    run "$bin/core/core_benchmark" --benchmark_filter='1Byte' --benchmark_min_time=0.2
    run "$bin/core/churn_benchmark" --mode=churn --seconds=0.25
    run "$bin/core/churn_benchmark" --mode=rss --rss_sizes=4096
    run "$bin/core/churn_benchmark" --mode=rss --rss_sizes=1048576
    # Against stress-ng: the linked allocator (tcmalloc, see README) and glibc.
    if [[ ${alloc_names[$i]} == glibc || ${alloc_names[$i]} == tcmalloc ]]; then
      run "$bin/core/churn_benchmark" --mode=peers --peer_block_size=1048576
      run "$bin/core/churn_benchmark" --mode=peers --peer_block_size=65536
    fi
  done
done
echo "=== process allocator ($rounds rounds, alternated) ==="
python3 bazel/bench_tables.py <"$raw"

echo "=== agent ==="
"$bin/agent/agent_benchmark"

echo "=== fleet fan-out ==="
"$bin/controller/fanout_benchmark" "$@"

echo "=== load after: $(cut -d' ' -f1-3 /proc/loadavg) ==="
