// record_format.h: the bytes of an audit log — file names, the three kinds of
// lines, the hash chain and the small parser Verify uses. AuditLog writes
// with these functions and Verify reads with them; nothing else needs them
// except tests.
//
//   std::string body = RecordBody(12, "store", record, prev_hash);
//   std::string hash;
//   std::string line = SealLine(body, prev_hash, &hash);   // + "\n" in the file
//   absl::StatusOr<ChainLink> link = CheckLine(line);      // link->hash == hash
//
// Every line is one compact JSON object, fields in a fixed order, the last
// one "hash":
//
//   {"seq":0,"type":"genesis","version":1,"time":T,"service":S,"prev":"00..00","hash":H}
//   {"seq":N,"time":T,"service":S,"request_id":..,"principal":..,"action":..,
//    "resource":..,"code":..,"peer":..[,"detail":..],"prev":P,"hash":H}
//   {"seq":N,"type":"continue","time":T,"service":S,"previous_file":F,"prev":P,"hash":H}
//
// The body is the line up to (not including) `,"hash":`; H is the lowercase
// hex BLAKE2b-256 of P + "\n" + body, and P is the H of the line before (64
// zeros for genesis). A "continue" line starts every file after the first.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/audit/audit_log.h"

namespace coffer::audit {

// The prev of the genesis record.
inline constexpr char kZeroHash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr char kGenesisType[] = "genesis";
inline constexpr char kContinueType[] = "continue";

// "store", 3 -> "store-audit-000003.jsonl".
std::string AuditFileName(absl::string_view service, uint64_t number);
// The number of `name` when it is a file of `service` (AuditFileName's
// inverse); false otherwise.
bool ParseAuditFileName(absl::string_view name, absl::string_view service, uint64_t* number);

// RFC 3339 in UTC with microseconds: "2026-11-30T07:40:17.123456Z".
std::string FormatAuditTime(absl::Time time);

// Line bodies (everything before `,"hash":`).
std::string GenesisBody(absl::Time time, absl::string_view service);
std::string RecordBody(uint64_t seq, absl::string_view service, const Record& record,
                       absl::string_view prev);
std::string ContinueBody(uint64_t seq, absl::Time time, absl::string_view service,
                         absl::string_view previous_file, absl::string_view prev);

// hex(BLAKE2b(prev + "\n" + body)).
std::string ChainHash(absl::string_view prev, absl::string_view body);
// body + `,"hash":"<ChainHash>"}`; the hash also goes to *hash.
std::string SealLine(absl::string_view body, absl::string_view prev, std::string* hash);

// One "key": value pair of a flat JSON object; numbers keep their text.
struct FlatField {
  std::string key;
  std::string value;  // unescaped string, or the digits of an integer
  bool is_number = false;
};
// Parses one JSON object whose values are only strings and integers (no
// nesting, no true/false/null, no fractions), keeping the order of the keys.
// INVALID_ARGUMENT on anything else.
absl::StatusOr<std::vector<FlatField>> ParseFlatObject(absl::string_view text);

// What linking needs from one line.
struct ChainLink {
  uint64_t seq = 0;
  std::string type;  // "" for a request record, "genesis" or "continue"
  std::string prev;
  std::string hash;
};
// Checks one line on its own: JSON, the exact fields of its kind, and that
// its hash is the hash of its body. The error message is the reason Verify
// reports: "not JSON", "unexpected fields" or "hash mismatch".
absl::StatusOr<ChainLink> CheckLine(absl::string_view line);

}  // namespace coffer::audit
