#!/bin/sh
# Bazel's toolchain calls its compiler "gcc" and uses it for C and C++ alike (as clang++ does
# when linking C++): Debian's clang 14 from the clang package.
exec /usr/bin/clang "$@"
