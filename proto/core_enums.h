// Touch mode and backing: core's enums (core/touch.h, core/block_allocator.h) and the
// proto's, mapped in one place for the agent (plan conversion) and memloadctl (which parses
// --touch/--backing with core's ParseTouchMode/ParseBacking).
//
//   v1::TouchMode mode = ToProto(TouchMode::kFill);       // TOUCH_MODE_FILL
//   TouchMode core = FromProto(v1::TOUCH_MODE_UNSPECIFIED);  // kPage, the default
//
// Thread-safe pure functions.
#ifndef MEMLOAD_PROTO_CORE_ENUMS_H_
#define MEMLOAD_PROTO_CORE_ENUMS_H_

#include "core/block_allocator.h"
#include "core/touch.h"
#include "proto/memload.pb.h"

namespace memload {

// UNSPECIFIED (and, defensively, values this build does not know) → the documented
// default: page, mmap. plan_rules::CheckTouch/CheckBacking reject unknown values first.
TouchMode FromProto(v1::TouchMode mode);
Backing FromProto(v1::Backing backing);
v1::TouchMode ToProto(TouchMode mode);
v1::Backing ToProto(Backing backing);

}  // namespace memload

#endif  // MEMLOAD_PROTO_CORE_ENUMS_H_
