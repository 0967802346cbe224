#!/usr/bin/env bash
# Long libFuzzer runs of every fuzz target, one after another (the machine is shared):
#   bash tests/fuzz/long_run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 600, all five)
# Builds the targets with Debian's clang 14, ASan + UBSan and libFuzzer's coverage
# instrumentation (libclang-rt-14-dev, installed by bazel/install_deps.sh) in an output base
# of its own, so the usual build's cache and server are left alone. Each target starts from
# its seed corpus (read-only) and writes new inputs to a scratch directory; a crashing input
# is kept in $OUT/TARGET/ (crash-*, leak-*, timeout-*). Prints one line per target:
# executions, new corpus inputs, crashes. Exit 1 if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-600}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(size_fuzz_test targets_fuzz_test plan_file_fuzz_test plan_spec_fuzz_test
           node_readers_fuzz_test)
fi
out="${OUT:-/tmp/memload-fuzz}"
output_base="${FUZZ_OUTPUT_BASE:-$HOME/.cache/memload-fuzz-output-base}"
flags=(--config=clang --config=asan --define=memload_fuzz=libfuzzer
       --copt=-fsanitize=fuzzer-no-link --platform_suffix=fuzz --dynamic_mode=off
       --linkopt=-fsanitize-link-c++-runtime)

labels=()
for target in "${targets[@]}"; do labels+=("//tests/fuzz:${target}"); done
nice -n 10 bazel --output_base="$output_base" build "${flags[@]}" "${labels[@]}"
bin="$(bazel --output_base="$output_base" info "${flags[@]}" bazel-bin)"

status=0
for target in "${targets[@]}"; do
  dir="$out/$target"
  mkdir -p "$dir"
  rm -f "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*
  log="$dir/fuzz.log"
  corpus="tests/fuzz/corpus/${target%_test}"
  # fuzz_main.cc: --corpus, then libFuzzer flags (later ones win over its defaults).
  TEST_TMPDIR="$dir" TEST_UNDECLARED_OUTPUTS_DIR="$dir" \
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    nice -n 10 "$bin/tests/fuzz/$target" --corpus="$corpus" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || true
  executions="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  found="$(find "$dir" -maxdepth 1 -name 'fuzz-corpus-*' -type d -exec sh -c 'ls "$1" | wc -l' _ {} \; | tail -1)"
  crashes="$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
  echo "$target: ${seconds}s, ${executions} executions, ${found:-0} new inputs, ${crashes} crashes (log $log)"
  ((crashes == 0)) || status=1
done
exit "$status"
