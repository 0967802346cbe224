// Small helpers for absl::Status plumbing. Abseil 20220623 ships no RETURN_IF_ERROR /
// ASSIGN_OR_RETURN, so memload keeps its own.
//
//   absl::Status Grow() {
//     MEMLOAD_RETURN_IF_ERROR(CheckLimits());
//     MEMLOAD_ASSIGN_OR_RETURN(uint64_t bytes, ParseSize(text));
//     ...
//   }
#ifndef MEMLOAD_CORE_BASE_STATUS_MACROS_H_
#define MEMLOAD_CORE_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MEMLOAD_STATUS_CONCAT_INNER_(a, b) a##b
#define MEMLOAD_STATUS_CONCAT_(a, b) MEMLOAD_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define MEMLOAD_RETURN_IF_ERROR(expr)            \
  do {                                           \
    const absl::Status memload_status_ = (expr); \
    if (!memload_status_.ok()) {                 \
      return memload_status_;                    \
    }                                            \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status when not OK, otherwise
// moves the value into `lhs` (which may be a declaration).
#define MEMLOAD_ASSIGN_OR_RETURN(lhs, rexpr) \
  MEMLOAD_ASSIGN_OR_RETURN_IMPL_(MEMLOAD_STATUS_CONCAT_(memload_statusor_, __LINE__), lhs, rexpr)

#define MEMLOAD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) {                                      \
    return statusor.status();                                \
  }                                                          \
  lhs = std::move(statusor).value()

#endif  // MEMLOAD_CORE_BASE_STATUS_MACROS_H_
