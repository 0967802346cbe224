#!/usr/bin/env bash
# The README's second command: installs whatever is missing, then runs every test —
# `bazel test //...`, then the core and proto tests again under ASan+UBSan, then three checks
# (no production target depends on test code; the sources are clang-formatted; a clang build
# of everything with -Wthread-safety -Werror) — and ends with one line "N passed, N failed"
# counting test targets (from Bazel's own per-target verdicts) and the checks.
# Exit status: 0 when everything passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

bash bazel/install_deps.sh || exit 1

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Runs `bazel test` with the given arguments and adds its per-target verdicts to the totals.
# Bazel prints one summary line per test target: "//pkg:name  PASSED in 1.2s", "(cached)
# PASSED", "FAILED", "TIMEOUT", "FLAKY", "NO STATUS", "FAILED TO BUILD"...
run_bazel_test() {
  local label=$1
  shift
  echo "=== memload tests: $label ==="
  bazel test "$@" 2>&1 | tee "$log"
  local code=${PIPESTATUS[0]}
  local ok bad
  ok=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
  bad=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE)' "$log")
  # A build that broke before any test ran leaves no per-target line: count it as a failure.
  if [[ $code -ne 0 && $bad -eq 0 ]]; then bad=1; fi
  passed=$((passed + ok))
  failed=$((failed + bad))
  echo "=== $label: $ok passed, $bad failed (bazel exit $code) ==="
}

run_bazel_test "all tests" //...
run_bazel_test "core and proto under ASan+UBSan" --config=asan //core/... //proto/...

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

# clang's thread-safety analysis over everything (--config=clang: -Wthread-safety, and
# -Wall -Wextra -Werror as for gcc): a guarded field touched without its lock fails here.
echo "=== memload tests: clang build with -Wthread-safety -Werror ==="
if bazel build --config=clang //...; then
  passed=$((passed + 1))
else
  echo "the clang build failed"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
