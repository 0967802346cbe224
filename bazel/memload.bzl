"""memload's own rule wrappers: every test and binary gets what each build config needs.

    load("//bazel:memload.bzl", "memload_cc_binary", "memload_cc_test")

    memload_cc_test(
        name = "size_test",
        size = "small",
        srcs = ["size_test.cc"],
        deps = [":size", "@system//:gtest_main"],
    )

Both link //bazel:tsan_suppressions (TSan's suppressions for Debian's uninstrumented gRPC,
Abseil, protobuf and OpenSSL, and LeakSanitizer's for OpenSSL's objects at exit; no-ops outside
--config=tsan / --config=asan), so no BUILD file lists it by hand.
Everything else is passed through to cc_test / cc_binary unchanged.
"""

_SANITIZER_SUPPORT = "//bazel:tsan_suppressions"

def _with_sanitizer_support(deps):
    deps = list(deps or [])
    if _SANITIZER_SUPPORT not in deps:
        deps.append(_SANITIZER_SUPPORT)
    return deps

def memload_cc_test(name, deps = [], **kwargs):
    """A cc_test linked with what the sanitizer configs need."""
    native.cc_test(name = name, deps = _with_sanitizer_support(deps), **kwargs)

def memload_cc_binary(name, deps = [], **kwargs):
    """A cc_binary (a product, or a helper process a test starts) linked the same way."""
    native.cc_binary(name = name, deps = _with_sanitizer_support(deps), **kwargs)

# libFuzzer's driver without its main(): tests/fuzz/fuzz_main.cc calls LLVMFuzzerRunDriver
# (Debian 12: libclang-rt-14-dev).
_LIBFUZZER_NO_MAIN = "/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a"

def memload_fuzz_test(name, srcs, deps = [], corpus = None, **kwargs):
    """A fuzz target (defines LLVMFuzzerTestOneInput) run as a test.

    Under --config=asan it fuzzes for a bounded time (10 s; more with
    `bazel run --config=asan //tests/fuzz:NAME -- -max_total_time=600`), starting from the seed
    corpus in `corpus` (default corpus/NAME without "_test"); elsewhere it replays the seeds.
    """
    corpus = corpus or "corpus/" + name[:-len("_test")] if name.endswith("_test") else "corpus/" + name
    memload_cc_test(
        name = name,
        srcs = srcs + ["//tests/fuzz:fuzz_main.cc"],
        deps = deps,
        data = native.glob([corpus + "/**"]),
        args = ["--corpus=%s/%s" % (native.package_name(), corpus)],
        copts = select({
            "//bazel:libfuzzer": ["-DMEMLOAD_LIBFUZZER"],
            "//conditions:default": [],
        }),
        linkopts = select({
            "//bazel:libfuzzer": [_LIBFUZZER_NO_MAIN],
            "//conditions:default": [],
        }),
        **kwargs
    )
