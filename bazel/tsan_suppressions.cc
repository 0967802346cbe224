// TSan reads this at start-up in instrumented builds. Debian's gRPC, abseil and protobuf
// are not built with -fsanitize=thread, so their internal synchronisation is invisible to
// TSan and reports inside them are noise. Our own code uses std primitives, which TSan sees.
extern "C" const char* __tsan_default_suppressions() {
  // called_from_lib: also ignore the interceptors (epoll, fds, memmove) these libraries call.
  return "called_from_lib:libgrpc.so\n"
         "called_from_lib:libgpr.so\n"
         "called_from_lib:libgrpc++.so\n"
         "called_from_lib:libprotobuf.so\n"
         "called_from_lib:libcrypto.so\n"
         "called_from_lib:libssl.so\n"
         // gRPC's upb (its own protobuf runtime, for xDS/TLS config messages) and Abseil's
         // Cord (gRPC's slices) are not instrumented either: their copies looked like races.
         "called_from_lib:libupb.so\n"
         "race:libupb.so\n"
         "race:libgrpc.so\n"
         // gRPC's C++ templates are compiled into our binaries, but synchronise inside
         // libgrpc, where TSan cannot see it. (Narrowing this to race_top:grpc:: is not done yet:
         // it then reports memload code on both sides of a hand-off through libgrpc, e.g.
         // ~AgentServer after Server::Shutdown; see bazel/tsan_annotations.h, issue 17.)
         "race:grpc::\n"
         "race:google::protobuf::\n"
         "race:libgrpc++.so\n"
         "race:libgpr.so\n"
         "race:libabsl_\n"
         "race:libprotobuf.so\n"
         // OpenSSL (TLS inside gRPC, memload's PEM checks) is not instrumented either.
         "race:libcrypto.so\n"
         "race:libssl.so\n"
         "deadlock:libgrpc.so\n"
         "deadlock:libabsl_\n";
}
