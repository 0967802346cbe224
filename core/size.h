// Byte sizes: parsing human-written sizes, formatting them back, and overflow-checked
// arithmetic on them. Everything is a uint64_t count of bytes; nothing wraps silently.
//
//   MEMLOAD_ASSIGN_OR_RETURN(uint64_t chunk, ParseSize("1.5GiB"));     // 1610612736
//   MEMLOAD_ASSIGN_OR_RETURN(uint64_t total, MultiplySizes(4, chunk));  // checked
//   std::cout << FormatSize(total);                                     // "6 GiB"
//   MEMLOAD_ASSIGN_OR_RETURN(uint64_t target, PercentOf(80, mem_total));
//
// All functions are pure and thread-safe.
#ifndef MEMLOAD_CORE_SIZE_H_
#define MEMLOAD_CORE_SIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memload {

// Parses a size in bytes written as `<number>[ ]<unit>`, with optional surrounding
// whitespace and at most one space between number and unit.
//
// Number: decimal digits, optionally followed by '.' and more digits ("1.5"). Signs,
// exponents ("1e9"), thousands separators and a bare "." or ".5" are rejected.
//
// Units are case-sensitive, as in Kubernetes quantities, and each may carry a trailing "B":
//   (none), B                        bytes
//   Ki Mi Gi Ti Pi Ei (KiB ... EiB)  powers of 1024
//   k K M G T P E     (kB KB ... EB) powers of 1000 ("K"/"KB" accepted besides "k")
// Anything else ("Q", "mb", "m", "KIB") is an unknown unit.
//
// Fractions are computed exactly with integer arithmetic and then rounded down to whole
// bytes ("0.3Ki" is 307). A fraction on a plain byte count ("1.5", "2.5B") is an error;
// "1.0" is fine. At most 20 fractional digits after dropping trailing zeros.
//
// Errors: InvalidArgument for empty, negative, malformed, unknown-unit or out-of-range
// (> 2^64 - 1 bytes) input; the message quotes the input, e.g.
//   invalid size "12Q": unknown unit "Q"
absl::StatusOr<uint64_t> ParseSize(absl::string_view text);

// Formats `bytes` with binary units: "0 B", "1023 B", "1.5 KiB", "1 GiB", "16 EiB" at most.
// Picks the largest unit not above `bytes` and shows at most two decimals, truncated (never
// rounded up) and without trailing zeros. The output parses back with ParseSize, to the
// exact value when `bytes` is a multiple of a quarter of its unit (1, 1.25, 1.5, 1.75 ...).
std::string FormatSize(uint64_t bytes);

// Returns amount * size, or InvalidArgument naming both operands if the product does not
// fit in 64 bits.
absl::StatusOr<uint64_t> MultiplySizes(uint64_t amount, uint64_t size);

// Returns a + b, or InvalidArgument naming both operands if the sum does not fit in 64 bits.
absl::StatusOr<uint64_t> AddSizes(uint64_t a, uint64_t b);

// Returns floor(whole * percent / 100), exact for every `whole` (no overflow, no floating
// point rounding of `whole`). `percent` is taken to 9 decimal places, so 33.3 means exactly
// 33.3 and PercentOf(33.3, 1000) is 333. InvalidArgument unless 0 < percent <= 100 (NaN and
// infinities are rejected).
absl::StatusOr<uint64_t> PercentOf(double percent, uint64_t whole);

}  // namespace memload

#endif  // MEMLOAD_CORE_SIZE_H_
