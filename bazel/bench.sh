#!/usr/bin/env bash
# The README's Performance table in one command: installs whatever is missing, builds every
# benchmark with --config=bench (-c opt), prints the machine, then runs, one after the other:
#   //core:core_benchmark           core against malloc/mmap/memset baselines
#   //core:churn_benchmark          streaming churn at 4 KiB-1 MiB, RSS of a held 1 GiB set,
#                                   and memload against stress-ng --vm, per process allocator
#   //agent:agent_benchmark         the agent against core, a memload-agent process
#   //controller:fanout_benchmark   memloadctl over 1,000 and 10,000 light agents
#                                   (agent/testing/light_agents.h) against raw gRPC
# and ends with ONE summary table: every goal of README "Performance", its figure from this
# run, and the ratio against the baseline measured in the same run.
#
#   bash bazel/bench.sh                  # ~11-14 minutes on 2 vCPUs after the build (load 10-25)
#   BENCH_QUICK=1 bash bazel/bench.sh    # shorter: 1 round, fan-out to 1,000 only
#   BENCH_1GIB=1 (also core's 1 GiB retain/touch figures: minutes more on a loaded machine)
#   BENCH_ALLOCATORS=all bash bazel/bench.sh   # also jemalloc, mimalloc, glibc tunables
#   BENCH_ROUNDS=N (allocator rounds, default 3; quick: 1)
#   BENCH_GOAL_ROUNDS=N (rounds of the 64 KiB goal's own comparison, default 15; quick: 5)
#   BENCH_ONLY=goal64 bash bazel/bench.sh   # only that comparison (~1-2 minutes), its table
#
# Every step runs under `timeout`, and the fan-out benchmark also ends itself (alarm) and
# its agents (parent-death signal). Only 127.0.0.1 ports picked by the OS are used. Run it
# on an otherwise idle machine; the load average is printed before and after.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=${BENCH_QUICK:-0}
bash bazel/install_deps.sh >/dev/null

only=${BENCH_ONLY:-}
if [[ -n $only && $only != goal64 ]]; then
  echo "bench.sh: BENCH_ONLY is goal64 or unset, not '$only'" >&2
  exit 2
fi
targets=(//core:core_benchmark //core:churn_benchmark //agent:agent_benchmark
  //controller:fanout_benchmark)
if [[ $only == goal64 ]]; then targets=(//core:churn_benchmark); fi
bazel build --config=bench "${targets[@]}" 2>&1 | grep -E '^(ERROR|FAILED)' && exit 1
# Not the bazel-bin symlink: another build in this workspace may have repointed it.
bin=$(bazel info --config=bench bazel-bin 2>/dev/null)

# The 64 KiB churn goal's baseline: the code as it was when issue 16 was filed (glibc malloc,
# each reused block populated with MADV_POPULATE_WRITE). churn_benchmark came with the
# issue's first change (d9c671d), so its first version is built on that change's parent,
# whose streaming, touch and allocator code is that of cacb8db, the last commit before the
# issue. Built once (a tree from `git archive`, its own bazel server, shut down after) and
# kept in BENCH_BASELINE_DIR; without git history the goal row falls back to glibc at HEAD.
baseline_dir=${BENCH_BASELINE_DIR:-$HOME/.cache/memload-bench-baseline}
baseline_bin=$baseline_dir/churn_benchmark
if [[ ! -x $baseline_bin ]] && git cat-file -e d9c671d^{commit} 2>/dev/null; then
  rm -rf "$baseline_dir/src" && mkdir -p "$baseline_dir/src"
  git archive d9c671d^ | tar -x -C "$baseline_dir/src"
  git show d9c671d:core/churn_benchmark.cc >"$baseline_dir/src/core/churn_benchmark.cc"
  git show d9c671d:core/BUILD | sed -n '/^cc_binary($/{N;/churn_benchmark/{:a;N;/\n)$/!ba;p}}' \
    >>"$baseline_dir/src/core/BUILD"
  if ! (cd "$baseline_dir/src" && bazel build --config=bench //core:churn_benchmark >/dev/null 2>&1 &&
    cp "$(bazel info --config=bench bazel-bin 2>/dev/null)/core/churn_benchmark" "$baseline_bin"); then
    echo "(the issue-16 baseline did not build: the 64 KiB goal is shown against glibc at HEAD)"
  fi
  (cd "$baseline_dir/src" && bazel shutdown >/dev/null 2>&1) || true
fi

started=$(date +%s)
echo "=== machine ==="
echo "$(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))," \
  "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)," \
  "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)," \
  "open files $(ulimit -n) (hard $(ulimit -Hn)); load: $(cut -d' ' -f1-3 /proc/loadavg)"

raw=$(mktemp)
fanout=$(mktemp)
trap 'rm -f "$raw" "$fanout"' EXIT

# A step that overruns its time limit is reported and skipped, never the end of the run.
limit() {
  local seconds=$1
  shift
  timeout "$seconds" "$@" || echo "(stopped: $1 exited $? — time limit ${seconds}s?)"
}

# One run; the 1-byte figures are repeated in the allocator rounds below. The 1 GiB figures
# (page faults: slow, very slow on a loaded machine) only with BENCH_1GIB=1. Line
# buffered, so that a step stopped by its time limit keeps the lines it printed.
if [[ $only != goal64 ]]; then
  echo "=== core (one run) ==="
  core_filter=-1GiB
  if [[ ${BENCH_1GIB:-0} == 1 ]]; then core_filter=.; fi
  limit 300 stdbuf -oL "$bin/core/core_benchmark" --benchmark_min_time=0.2 \
    --benchmark_filter="$core_filter" 2>&1 | grep -E '^BM_|^Load|stopped'
fi

# The process allocator (issue 16): the same binaries with each candidate Debian ships
# preloaded, alternated round by round so that the machine's noise falls on all of them
# alike. memload-worker links tcmalloc (README); glibc is what it linked before. CPU time is
# the figure compared: wall time on 2 shared cores says more about the neighbours.
lib=/usr/lib/x86_64-linux-gnu
alloc_names=(glibc tcmalloc)
alloc_preload=("" "$lib/libtcmalloc_minimal.so.4")
alloc_tunables=("" "")
if [[ ${BENCH_ALLOCATORS:-} == all ]]; then
  alloc_names+=(glibc-tuned jemalloc mimalloc)
  alloc_preload+=("" "$lib/libjemalloc.so.2" "$lib/libmimalloc.so.2")
  # glibc-tuned: no trimming and no mmap per block below 32 MiB.
  alloc_tunables+=("glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824" "" "")
fi
if [[ $quick == 1 ]]; then rounds=${BENCH_ROUNDS:-1}; else rounds=${BENCH_ROUNDS:-3}; fi
if [[ $only == goal64 ]]; then rounds=0; fi
for ((round = 0; round < rounds; round++)); do
  for i in "${!alloc_names[@]}"; do
    run() {
      env LD_PRELOAD="${alloc_preload[$i]}" GLIBC_TUNABLES="${alloc_tunables[$i]}" \
        timeout 120 stdbuf -oL "$@" | sed "s/^/${alloc_names[$i]}\t$round\t/" >>"$raw" ||
        echo "(stopped: ${alloc_names[$i]} round $round: $1 $2, time limit 120s?)"
    }
    run "$bin/core/core_benchmark" --benchmark_filter='1Byte' --benchmark_min_time=0.2
    # 4 and 64 KiB blocks with and without a window; 1 MiB without (a 1 GiB window would
    # measure its first faults, not churn). 2 workers at most: there are 2 vCPUs.
    run "$bin/core/churn_benchmark" --mode=churn --seconds=0.25 --sizes=4096,65536 \
      --windows=0,1000 --workers=1,2
    run "$bin/core/churn_benchmark" --mode=churn --seconds=0.25 --sizes=1048576 --windows=0 \
      --workers=1,2
    if [[ $round == 0 ]]; then
      run "$bin/core/churn_benchmark" --mode=rss --rss_sizes=4096
      run "$bin/core/churn_benchmark" --mode=rss --rss_sizes=1048576
    fi
    # Against stress-ng: the linked allocator (tcmalloc) and glibc.
    if [[ ${alloc_names[$i]} == glibc || ${alloc_names[$i]} == tcmalloc ]]; then
      run "$bin/core/churn_benchmark" --mode=peers --peer_block_size=1048576
      if [[ $quick != 1 ]]; then
        run "$bin/core/churn_benchmark" --mode=peers --peer_block_size=65536
      fi
    fi
  done
done
if [[ $only != goal64 ]]; then
  echo "=== process allocator ($rounds rounds, alternated) ==="
  python3 bazel/bench_tables.py <"$raw"
fi

# The 64 KiB churn goal (issue 16): memload ≥ 1.5× the bytes/s of the code when the issue was
# filed. At a window of 1,000 both sides spend most of their time on the same page writes,
# so one round's ratio swings with the neighbours' load (1.25-2.97× in one run): many short
# rounds, the baseline and memload-worker's setup (tcmalloc) back to back in each, which one
# goes first alternating; bench_tables takes the median of the per-round ratios and shows
# their spread, and the ratio of each side's least disturbed round.
if [[ -x $baseline_bin ]]; then
  if [[ $quick == 1 ]]; then goal_rounds=${BENCH_GOAL_ROUNDS:-5}; else goal_rounds=${BENCH_GOAL_ROUNDS:-15}; fi
  echo "=== 64 KiB churn goal: $goal_rounds interleaved rounds (load before: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
  # One side of a round: the issue-time binary on glibc, or this release's under tcmalloc.
  # Every point in a process of its own, as every plan runs in a memload-worker of its own:
  # run one after another in one process, a point inherits the heap its predecessors left
  # (at window 1,000 with 2 workers, memload's CPU per GiB was 0.0032-0.0034 after the other
  # points in the same process, 0.0016-0.0023 alone, 5 rounds each, quiet machine).
  goal_side() {
    local who=$1 round=$2 binary=$bin/core/churn_benchmark preload=$lib/libtcmalloc_minimal.so.4
    if [[ $who == baseline ]]; then binary=$baseline_bin preload=; fi
    local window workers
    for window in 0 1000; do
      for workers in 1 2; do
        env LD_PRELOAD="$preload" timeout 60 stdbuf -oL "$binary" --mode=churn --seconds=0.25 \
          --sizes=65536 --windows=$window --workers=$workers |
          sed "s/^/goal64-$who\t$round\t/" >>"$raw" ||
          echo "(stopped: goal64 $who round $round window $window workers $workers, time limit 60s?)"
      done
    done
  }
  for ((round = 0; round < goal_rounds; round++)); do
    if ((round % 2 == 0)); then
      goal_side baseline $round && goal_side memload $round
    else
      goal_side memload $round && goal_side baseline $round
    fi
  done
  python3 bazel/bench_tables.py --goal64 <"$raw"
  echo "(load after: $(cut -d' ' -f1-3 /proc/loadavg))"
else
  echo "(no issue-16 baseline binary: the 64 KiB goal is shown against glibc at HEAD)"
fi
if [[ $only == goal64 ]]; then exit 0; fi

echo "=== agent ==="
limit 300 "$bin/agent/agent_benchmark"

echo "=== fleet fan-out (load before: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
if [[ $quick == 1 ]]; then
  limit 200 "$bin/controller/fanout_benchmark" --sizes=100,1000 --repetitions=1 | tee "$fanout"
else
  # memloadctl's default --parallelism (0: AutoParallelism, targets/8 in 256..4096): 256 at
  # 1,000 agents, 1,250 at 10,000. 10,000 ends itself within 300 s (fewer repetitions on a
  # loaded machine).
  limit 200 "$bin/controller/fanout_benchmark" --sizes=1000 --repetitions=3 | tee "$fanout"
  limit 330 "$bin/controller/fanout_benchmark" --sizes=10000 --repetitions=3 \
    --time_limit_seconds=300 | tee -a "$fanout"
fi

echo "=== summary: goals of README \"Performance\", this run ($(($(date +%s) - started)) s;" \
  "load after: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
python3 bazel/bench_tables.py --summary="$fanout" <"$raw"
