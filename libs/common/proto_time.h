// proto_time.h: google.protobuf.Timestamp <-> absl::Time, in one place.
//
//   *record.mutable_created_date() = coffer::ToProto(clock->Now());
//   absl::Time due = coffer::FromProto(record.deletion_date());
#pragma once

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace coffer {

inline google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  ts.set_nanos(
      static_cast<int32_t>((t - absl::FromUnixSeconds(ts.seconds())) / absl::Nanoseconds(1)));
  return ts;
}

inline absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace coffer
