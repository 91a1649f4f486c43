#include "libs/common/blocking.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace coffer {
namespace {

thread_local bool non_blocking = false;
constexpr char kWouldBlockPayload[] = "coffer.would-block";

}  // namespace

bool MayBlock() { return !non_blocking; }

NonBlockingScope::NonBlockingScope() : previous_(non_blocking) { non_blocking = true; }

NonBlockingScope::~NonBlockingScope() { non_blocking = previous_; }

absl::Status WouldBlockError(absl::string_view what) {
  absl::Status status = absl::UnavailableError(absl::StrCat("would block: ", what));
  status.SetPayload(kWouldBlockPayload, absl::Cord("1"));
  return status;
}

bool IsWouldBlock(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kWouldBlockPayload).has_value();
}

}  // namespace coffer
