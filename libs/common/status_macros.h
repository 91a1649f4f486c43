// status_macros.h: early-return helpers for absl::Status / absl::StatusOr.
//
// Abseil 20220623 has no public status macros, so Coffer has its own:
//
//   absl::Status Save(const Record& r) {
//     COFFER_RETURN_IF_ERROR(Validate(r));
//     COFFER_ASSIGN_OR_RETURN(std::string bytes, Encode(r));
//     return db.Put(bytes);
//   }
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define COFFER_STATUS_CONCAT_INNER_(a, b) a##b
#define COFFER_STATUS_CONCAT_(a, b) COFFER_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if it is not OK.
#define COFFER_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status coffer_status_ = (expr);          \
    if (!coffer_status_.ok()) return coffer_status_; \
  } while (0)

// `lhs` is assigned the value of a StatusOr `rexpr`, or the enclosing function
// returns its error. `lhs` may be a declaration ("auto x") or an lvalue.
#define COFFER_ASSIGN_OR_RETURN(lhs, rexpr) \
  COFFER_ASSIGN_OR_RETURN_IMPL_(COFFER_STATUS_CONCAT_(coffer_statusor_, __LINE__), lhs, rexpr)

#define COFFER_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

// Crashes loudly on an impossible state (Envoy's RELEASE_ASSERT). Never for
// untrusted input: that gets an error status.
#define COFFER_CHECK(cond, msg)                                                   \
  do {                                                                            \
    if (!(cond)) ::coffer::internal::CheckFailed(__FILE__, __LINE__, #cond, msg); \
  } while (0)

namespace coffer::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, const char* msg);
}  // namespace coffer::internal
