// UTF-8 of one Unicode code point, for the JSON string decoders (a recording's reader,
// the plan-file key scan). Thread-safe free function.
#ifndef MEMLOAD_CORE_BASE_UTF8_H_
#define MEMLOAD_CORE_BASE_UTF8_H_

#include <cstdint>
#include <string>

namespace memload {

// Appends `code` (at most 0x10FFFF; the caller has checked surrogates) as 1-4 bytes.
inline void AppendUtf8(uint32_t code, std::string* out) {
  if (code < 0x80) {
    *out += static_cast<char>(code);
  } else if (code < 0x800) {
    *out += static_cast<char>(0xc0 | (code >> 6));
    *out += static_cast<char>(0x80 | (code & 0x3f));
  } else if (code < 0x10000) {
    *out += static_cast<char>(0xe0 | (code >> 12));
    *out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (code & 0x3f));
  } else {
    *out += static_cast<char>(0xf0 | (code >> 18));
    *out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
    *out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (code & 0x3f));
  }
}

}  // namespace memload

#endif  // MEMLOAD_CORE_BASE_UTF8_H_
