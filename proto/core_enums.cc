#include "proto/core_enums.h"

namespace memload {

TouchMode FromProto(v1::TouchMode mode) {
  switch (mode) {
    case v1::TOUCH_MODE_NONE:
      return TouchMode::kNone;
    case v1::TOUCH_MODE_FILL:
      return TouchMode::kFill;
    default:
      return TouchMode::kPage;
  }
}

Backing FromProto(v1::Backing backing) {
  switch (backing) {
    case v1::BACKING_MALLOC:
      return Backing::kMalloc;
    case v1::BACKING_SHMEM:
      return Backing::kShmem;
    default:
      return Backing::kMmap;
  }
}

v1::TouchMode ToProto(TouchMode mode) {
  switch (mode) {
    case TouchMode::kNone:
      return v1::TOUCH_MODE_NONE;
    case TouchMode::kPage:
      return v1::TOUCH_MODE_PAGE;
    case TouchMode::kFill:
      return v1::TOUCH_MODE_FILL;
  }
  return v1::TOUCH_MODE_UNSPECIFIED;
}

v1::Backing ToProto(Backing backing) {
  switch (backing) {
    case Backing::kMalloc:
      return v1::BACKING_MALLOC;
    case Backing::kMmap:
      return v1::BACKING_MMAP;
    case Backing::kShmem:
      return v1::BACKING_SHMEM;
  }
  return v1::BACKING_UNSPECIFIED;
}

}  // namespace memload
