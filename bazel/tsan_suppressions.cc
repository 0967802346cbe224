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
         // libgrpc, where TSan cannot see it. race_top: only when the racing access itself is
         // gRPC's (race:grpc:: matched any frame, so it hid races in memload's reactors). It
         // also reports memload code on both sides of a hand-off through libgrpc (e.g.
         // ~AgentServer after Server::Shutdown): mark those (bazel/tsan_annotations.h).
         "race_top:grpc::\n"
         "race:google::protobuf::\n"
         // absl::Status counts the references to its heap rep in Debian's libabsl_status.so
         // (uninstrumented): the last owner's delete, inlined into our code, looked like a race
         // with a read by the thread that had just dropped its own copy (placement_manager_test).
         "race:absl::*Status::Unref\n"
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
