// LeakSanitizer reads this at exit in --config=asan builds (linked into every test and binary
// through //bazel:tsan_suppressions, see bazel/memload.bzl).
//
// OpenSSL: processes that served or made TLS calls (agent_lifecycle_test, agent_security_test)
// sometimes end with a few OpenSSL objects (X509 names, SSL buffers: 2-20 KB, every frame of
// the allocation inside libcrypto) that nothing points to, left by gRPC's asynchronous TLS
// teardown still under way at exit. Neither library is instrumented, and with ASan's fast
// unwinder the stack stops inside libcrypto, so no frame of ours could tell them apart.
// This also hides a leak of an OpenSSL object that memload's own code made
// (core/security/tls_files.cc); everything else is still checked.
extern "C" const char* __lsan_default_suppressions() { return "leak:libcrypto.so\n"; }
