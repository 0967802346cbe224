"""cc_grpc_proto: protoc + grpc_cpp_plugin from Debian, compiled into a cc_library.

    cc_grpc_proto(name = "memload_cc_proto", src = "memload.proto", grpc = True,
                  deps = [":memload_types_cc_proto"])

produces memload.pb.{h,cc} (and memload.grpc.pb.{h,cc} when grpc = True) next to the
.proto in the output tree, and a cc_library `name` that links them against @system.
Includes work as "proto/memload.pb.h" from the workspace root; imports as
"proto/memload_types.proto".
"""

def cc_grpc_proto(name, src, grpc = False, deps = [], visibility = None):
    base = src[:-len(".proto")]
    outs = [base + ".pb.h", base + ".pb.cc"]
    if grpc:
        outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    cmd = ("/usr/bin/protoc --proto_path=. --proto_path=/usr/include " +
           "--cpp_out=$(GENDIR) $(location %s)" % src)
    if grpc:
        cmd += (" --grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin")
    native.genrule(
        name = name + "_codegen",
        srcs = [src] + [d + "_srcs" for d in deps],
        outs = outs,
        cmd = cmd,
        visibility = ["//visibility:private"],
    )
    # This .proto and, transitively, every .proto it imports (protoc needs them all).
    native.filegroup(
        name = name + "_srcs",
        srcs = [src] + [d + "_srcs" for d in deps],
        visibility = visibility,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["@system//:grpc" if grpc else "@system//:protobuf"],
        visibility = visibility,
    )
