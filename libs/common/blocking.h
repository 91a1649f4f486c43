// blocking.h: a thread-local "must not block" mark, so that a call can first
// run on a thread that must never wait (gRPC's callback threads) and move to
// a thread that may only when it needs to.
//
// Code that would wait on I/O — a synced storage write, a call to another
// service — checks MayBlock() first and, when it may not, returns
// WouldBlockError() before doing anything. The caller (runtime::CallGate)
// sees IsWouldBlock() and runs the whole call again where blocking is fine.
// Only idempotent work (reads) is tried this way.
//
//   {
//     NonBlockingScope scope;              // on a gRPC callback thread
//     absl::StatusOr<Resp> r = work();     // a cached read completes here...
//     if (IsWouldBlock(r.status())) executor.Schedule(work);  // ...else again there
//   }
//   // In the storage layer:
//   if (!MayBlock()) return WouldBlockError("synced write");
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace coffer {

// False inside a NonBlockingScope on this thread.
bool MayBlock();

class NonBlockingScope {
 public:
  NonBlockingScope();
  ~NonBlockingScope();
  NonBlockingScope(const NonBlockingScope&) = delete;
  NonBlockingScope& operator=(const NonBlockingScope&) = delete;

 private:
  bool previous_;
};

// The status of work that stopped because it would have blocked (`what`
// names what, for debugging). Never meant to reach a client.
absl::Status WouldBlockError(absl::string_view what);
bool IsWouldBlock(const absl::Status& status);

}  // namespace coffer
