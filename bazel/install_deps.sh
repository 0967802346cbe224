#!/usr/bin/env bash
# Installs what memload needs to build and test on Debian 12, and nothing when it is all
# there already (idempotent: apt runs only for missing packages). Run as root.
set -euo pipefail

PACKAGES=(
  # Bazel 4.2.3 and the toolchain data it asks for (see bazel/shims/README.md).
  bazel-bootstrap bazel-platforms bazel-rules-java
  # Compilers and libraries; everything links against Debian's builds.
  g++ pkg-config
  # --config=clang/asan (bazel/toolchain): Debian's clang 14; its sanitizer and libFuzzer
  # runtimes (libclang_rt.asan/ubsan/fuzzer) ship in libclang-rt-14-dev. clang-format for
  # bazel/format.sh.
  clang libclang-rt-14-dev clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev libc-ares-dev
  # The deployment tests parse the Kubernetes manifests.
  libyaml-cpp-dev
  # The agent's /metrics endpoint; the metrics test scrapes it with a real Prometheus.
  libcivetweb-dev prometheus
  # Tests read and drive processes (ps, kill) and cgroups.
  procps
  # The end-to-end cluster's DNS server (/usr/sbin/dnsmasq), a headless Service stand-in.
  dnsmasq-base
  # memloadctl's live views are tested under a real pseudo-terminal (tmux), and its HTML
  # report in a real browser (headless Chromium, with a font to lay text out).
  tmux chromium fonts-dejavu-core
  # The security tests make their CAs and certificates with the openssl CLI; libssl-dev
  # (libcrypto, for PEM checks and SHA-256) comes with libgrpc++-dev, named here anyway.
  openssl libssl-dev
  # memload-worker's process allocator, tcmalloc (README "Performance"); bazel/bench.sh
  # also measures the other candidates Debian ships, and memload against stress-ng.
  libgoogle-perftools-dev libjemalloc-dev libmimalloc-dev stress-ng
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "memload: missing packages: ${missing[*]}; run this as root to install them" >&2
    exit 1
  fi
  echo "memload: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Debian's prometheus package starts its own server (port 9090) where systemd runs; the
  # tests start their own on a free loopback port, so do not leave a server behind.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [[ -d /run/systemd/system ]]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
