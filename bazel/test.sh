#!/usr/bin/env bash
# The README's second command: installs whatever is missing, then runs every test three times
# over, each build configuration in its own output folder (--platform_suffix):
#   1. `bazel test //...` (gcc 12, unsanitized): builds everything and runs every test,
#      including those whose figures only hold without a sanitizer;
#   2. `--config=asan` (clang 14, ASan + UBSan; LeakSanitizer on for the test processes and
#      for the memload processes they start): builds everything again — with clang's
#      -Wthread-safety as an error, so this build is also the thread-safety check — and runs
#      every test target not tagged no-asan;
#   3. `--config=tsan` (gcc 12, ThreadSanitizer): every test target not tagged no-tsan
#      (--build_tests_only: benchmarks and demo binaries were built by passes 1 and 2).
# Before them two quick checks: no production target depends on test code (a Bazel query),
# and the sources are clang-formatted.
# A test whose figure cannot hold under a sanitizer (cgroup limits sized for unsanitized
# processes, RSS deltas) carries a `no-asan` / `no-tsan` tag with the reason in its BUILD
# file; .bazelrc filters those tags in passes 2 and 3, this script names them, and pass 1
# runs them. Each pass prints its wall time; the script ends with one line
# "N passed, N failed" counting test targets over the three passes (from Bazel's own
# per-target verdicts) and the checks. Exit status: 0 when everything passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

bash bazel/install_deps.sh || exit 1

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS

# No production target (library or binary) depends on test code (a testonly target).
echo "=== memload tests: no production target depends on a testonly target ==="
if bad=$(bazel query --noshow_progress \
    'let prod = kind("cc_(library|binary) rule", //...) except attr(testonly, 1, //...) in
     attr(testonly, 1, deps($prod))'); then
  if [[ -n "$bad" ]]; then
    echo "production targets depend on these testonly targets:"; echo "$bad"
    failed=$((failed + 1))
  else
    echo "none"; passed=$((passed + 1))
  fi
else
  echo "bazel query failed"; failed=$((failed + 1))
fi

# Every C++ source is formatted as .clang-format says (bash bazel/format.sh fixes it).
echo "=== memload tests: sources are clang-formatted ==="
if bash bazel/format.sh --check; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

# Runs `bazel test` with the given arguments and adds its per-target verdicts to the totals.
# Bazel prints one summary line per test target: "//pkg:name  PASSED in 1.2s", "(cached)
# PASSED", "FAILED", "TIMEOUT", "FLAKY", "NO STATUS", "FAILED TO BUILD"...
run_bazel_test() {
  local label=$1
  shift
  local began=$SECONDS
  echo "=== memload tests: $label ==="
  bazel test --keep_going "$@" 2>&1 | tee "$log"
  local code=${PIPESTATUS[0]}
  local ok bad
  ok=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
  bad=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE)' "$log")
  # A build that broke (a test or any other target: a binary, a benchmark) with no failed
  # test line to show for it: count it as a failure.
  if [[ $code -ne 0 && $bad -eq 0 ]]; then bad=1; fi
  passed=$((passed + ok))
  failed=$((failed + bad))
  echo "=== $label: $ok passed, $bad failed (bazel exit $code) in $((SECONDS - began)) s ==="
}

# Names the test targets a sanitizer pass leaves out (their tag's reason is in the BUILD file).
name_left_out() {
  local tag=$1
  echo "=== not run under this sanitizer (tagged $tag; they ran in the first pass): ==="
  bazel query --noshow_progress "attr(tags, '$tag', tests(//...))" 2>/dev/null ||
    echo "(bazel query failed)"
}

run_bazel_test "1/3 everything, gcc, unsanitized" //...
name_left_out no-asan
run_bazel_test "2/3 everything, clang -Wthread-safety, ASan+UBSan+LSan" --config=asan //...
name_left_out no-tsan
run_bazel_test "3/3 every test, gcc, TSan" --config=tsan --build_tests_only //...

echo "=== memload tests took $((SECONDS - start)) s ==="
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
