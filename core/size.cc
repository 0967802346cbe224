#include "core/size.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace memload {
namespace {

using uint128 = unsigned __int128;

constexpr uint64_t kMaxBytes = std::numeric_limits<uint64_t>::max();
constexpr size_t kMaxFractionDigits = 20;  // 10^20 * 1000^6 still fits in 128 bits.

absl::Status InvalidSize(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid size \"", absl::CHexEscape(text), "\": ", why));
}

// Returns the multiplier of `unit` (see ParseSize), or 0 if unknown.
uint64_t UnitMultiplier(absl::string_view unit) {
  if (unit.empty() || unit == "B") return 1;
  if (unit.size() > 1 && unit.back() == 'B') unit.remove_suffix(1);
  struct Unit {
    absl::string_view name;
    uint64_t multiplier;
  };
  static constexpr Unit kUnits[] = {
      {"Ki", uint64_t{1} << 10},
      {"Mi", uint64_t{1} << 20},
      {"Gi", uint64_t{1} << 30},
      {"Ti", uint64_t{1} << 40},
      {"Pi", uint64_t{1} << 50},
      {"Ei", uint64_t{1} << 60},
      {"k", 1000},
      {"K", 1000},
      {"M", 1000'000},
      {"G", 1000'000'000},
      {"T", 1000'000'000'000},
      {"P", 1000'000'000'000'000},
      {"E", 1000'000'000'000'000'000},
  };
  for (const Unit& u : kUnits) {
    if (u.name == unit) return u.multiplier;
  }
  return 0;
}

size_t CountLeadingDigits(absl::string_view s) {
  size_t n = 0;
  while (n < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[n]))) ++n;
  return n;
}

}  // namespace

absl::StatusOr<uint64_t> ParseSize(absl::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (s.empty()) return InvalidSize(text, "empty");
  if (s.front() == '-') return InvalidSize(text, "negative sizes are not allowed");

  const size_t int_len = CountLeadingDigits(s);
  if (int_len == 0) return InvalidSize(text, "expected a number");
  absl::string_view int_digits = s.substr(0, int_len);
  s.remove_prefix(int_len);

  absl::string_view frac_digits;
  if (!s.empty() && s.front() == '.') {
    s.remove_prefix(1);
    const size_t frac_len = CountLeadingDigits(s);
    if (frac_len == 0) return InvalidSize(text, "expected digits after '.'");
    frac_digits = s.substr(0, frac_len);
    s.remove_prefix(frac_len);
  }
  if (!s.empty() && s.front() == ' ') s.remove_prefix(1);  // "1.5 GiB"

  const uint64_t multiplier = UnitMultiplier(s);
  if (multiplier == 0) {
    return InvalidSize(text, absl::StrCat("unknown unit \"", absl::CHexEscape(s), "\""));
  }

  auto out_of_range = [text] {
    return InvalidSize(text, absl::StrCat("larger than the maximum of ", kMaxBytes, " bytes"));
  };
  uint128 int_value = 0;
  for (char c : int_digits) {
    int_value = int_value * 10 + (c - '0');
    if (int_value > kMaxBytes) return out_of_range();
  }

  while (!frac_digits.empty() && frac_digits.back() == '0') frac_digits.remove_suffix(1);
  if (frac_digits.size() > kMaxFractionDigits) {
    return InvalidSize(text, absl::StrCat("more than ", kMaxFractionDigits, " fractional digits"));
  }
  uint128 frac_value = 0;
  uint128 frac_scale = 1;
  for (char c : frac_digits) {
    frac_value = frac_value * 10 + (c - '0');
    frac_scale *= 10;
  }
  if (frac_value != 0 && multiplier == 1) {
    return InvalidSize(text, "fractional bytes");
  }

  // Fits: int_value < 2^64 and multiplier <= 2^60; frac_value < 10^20 < 2^67.
  const uint128 total =
      int_value * multiplier + frac_value * multiplier / frac_scale;  // rounds down
  if (total > kMaxBytes) return out_of_range();
  return static_cast<uint64_t>(total);
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnitNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const int exponent = (63 - __builtin_clzll(bytes)) / 10;  // 1..6: largest unit <= bytes
  const int shift = 10 * exponent;
  const uint64_t whole = bytes >> shift;
  const uint64_t remainder = bytes & ((uint64_t{1} << shift) - 1);
  const uint64_t hundredths = static_cast<uint64_t>((uint128{remainder} * 100) >> shift);

  std::string out = absl::StrCat(whole);
  if (hundredths != 0) {
    absl::StrAppend(&out, ".", hundredths / 10);
    if (hundredths % 10 != 0) absl::StrAppend(&out, hundredths % 10);
  }
  absl::StrAppend(&out, " ", kUnitNames[exponent]);
  return out;
}

namespace {

// `a OP b` of two sizes does not fit.
absl::Status SizeOverflow(uint64_t a, absl::string_view op, uint64_t b) {
  return absl::InvalidArgumentError(
      absl::StrCat("size overflow: ", a, " ", op, " ", b, " does not fit in 64 bits"));
}

}  // namespace

absl::StatusOr<uint64_t> MultiplySizes(uint64_t amount, uint64_t size) {
  uint64_t product;
  if (__builtin_mul_overflow(amount, size, &product)) return SizeOverflow(amount, "*", size);
  return product;
}

absl::StatusOr<uint64_t> AddSizes(uint64_t a, uint64_t b) {
  uint64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return SizeOverflow(a, "+", b);
  return sum;
}

absl::StatusOr<uint64_t> PercentOf(double percent, uint64_t whole) {
  if (!(percent > 0 && percent <= 100)) {  // also false for NaN
    return absl::InvalidArgumentError(absl::StrCat("percent must be in (0, 100], got ", percent));
  }
  constexpr uint64_t kNanoPerUnit = 1000'000'000;
  // At most 100 * 10^9, exactly representable; llround recovers "33.3" as 33300000000.
  const uint64_t nano_percent = static_cast<uint64_t>(std::llround(percent * kNanoPerUnit));
  return static_cast<uint64_t>(uint128{whole} * nano_percent / (100 * kNanoPerUnit));
}

}  // namespace memload
