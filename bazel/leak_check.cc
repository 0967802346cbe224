#include "bazel/leak_check.h"

// Defined by the ASan/LSan runtime when linked in (--config=asan); null otherwise.
extern "C" int __lsan_do_recoverable_leak_check() __attribute__((weak));

namespace memload {

int LeakCheckedExitCode(int code) {
  if (__lsan_do_recoverable_leak_check == nullptr) return code;
  const bool leaked = __lsan_do_recoverable_leak_check() != 0;
  return leaked && code == 0 ? 23 : code;
}

}  // namespace memload
