#!/usr/bin/env bash
# Formats memload's C++ sources with clang-format and the repository's .clang-format
# (Google style, 100 columns).
#
#   bash bazel/format.sh            # rewrite every tracked .h/.cc in place
#   bash bazel/format.sh --check    # change nothing; list the files that would change and
#                                   # exit 1 if there are any
#   bash bazel/format.sh [--check] FILE...   # only these files
#
# Needs clang-format (Debian's clang-format package, installed by bazel/install_deps.sh).
set -uo pipefail
cd "$(dirname "$0")/.."

check=0
if [[ ${1:-} == "--check" ]]; then
  check=1
  shift
fi

if ! command -v clang-format >/dev/null 2>&1; then
  echo "format.sh: clang-format is missing (bash bazel/install_deps.sh installs it)" >&2
  exit 2
fi

files=("$@")
if ((${#files[@]} == 0)); then
  mapfile -t files < <(git ls-files '*.h' '*.cc')
fi

differ=0
for file in "${files[@]}"; do
  # clang-format would read a BUILD or .bzl file given by name as C++ and break it.
  case "$file" in *.h | *.cc) ;; *) continue ;; esac
  if ((check)); then
    if ! clang-format --style=file "$file" | cmp -s - "$file"; then
      echo "needs formatting: $file"
      differ=$((differ + 1))
    fi
  else
    clang-format --style=file -i "$file"
  fi
done

if ((check)); then
  if ((differ > 0)); then
    echo "format.sh: $differ of ${#files[@]} files need formatting (bash bazel/format.sh)" >&2
    exit 1
  fi
  echo "format.sh: ${#files[@]} files formatted"
fi
