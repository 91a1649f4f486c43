#include "libs/audit/record_format.h"

#include <cinttypes>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/common/json.h"
#include "libs/crypto/hash.h"

namespace coffer::audit {
namespace {

constexpr absl::string_view kHashKey = ",\"hash\":\"";
constexpr size_t kHexHashLength = 64;

void AppendString(std::string* out, absl::string_view key, absl::string_view value) {
  absl::StrAppend(out, ",\"", key, "\":", JsonQuote(value));
}

bool IsHexHash(absl::string_view s) {
  if (s.size() != kHexHashLength) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

// The fields of each kind of line, in order. "detail" is optional.
const std::vector<absl::string_view>& RecordKeys(absl::string_view type, bool with_detail) {
  static const auto* const kGenesis = new std::vector<absl::string_view>{
      "seq", "type", "version", "time", "service", "prev", "hash"};
  static const auto* const kContinue = new std::vector<absl::string_view>{
      "seq", "type", "time", "service", "previous_file", "prev", "hash"};
  static const auto* const kRecord = new std::vector<absl::string_view>{
      "seq",      "time", "service", "request_id", "principal", "action",
      "resource", "code", "peer",    "prev",       "hash"};
  static const auto* const kRecordWithDetail = new std::vector<absl::string_view>{
      "seq",      "time", "service", "request_id", "principal", "action",
      "resource", "code", "peer",    "detail",     "prev",      "hash"};
  if (type == kGenesisType) return *kGenesis;
  if (type == kContinueType) return *kContinue;
  return with_detail ? *kRecordWithDetail : *kRecord;
}

bool IsNumberKey(absl::string_view key) { return key == "seq" || key == "version"; }

}  // namespace

std::string AuditFileName(absl::string_view service, uint64_t number) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%06" PRIu64, number);
  return absl::StrCat(service, "-audit-", digits, ".jsonl");
}

bool ParseAuditFileName(absl::string_view name, absl::string_view service, uint64_t* number) {
  const std::string prefix = absl::StrCat(service, "-audit-");
  if (!absl::ConsumePrefix(&name, prefix) || !absl::ConsumeSuffix(&name, ".jsonl")) return false;
  if (name.size() < 6) return false;
  for (char c : name) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(name, number);
}

std::string FormatAuditTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone());
}

std::string GenesisBody(absl::Time time, absl::string_view service) {
  std::string out = absl::StrCat("{\"seq\":0,\"type\":\"", kGenesisType, "\",\"version\":1");
  AppendString(&out, "time", FormatAuditTime(time));
  AppendString(&out, "service", service);
  AppendString(&out, "prev", kZeroHash);
  return out;
}

std::string RecordBody(uint64_t seq, absl::string_view service, const Record& record,
                       absl::string_view prev) {
  std::string out = absl::StrCat("{\"seq\":", seq);
  AppendString(&out, "time", FormatAuditTime(record.time));
  AppendString(&out, "service", service);
  AppendString(&out, "request_id", record.request_id);
  AppendString(&out, "principal", record.principal);
  AppendString(&out, "action", record.action);
  AppendString(&out, "resource", record.resource);
  AppendString(&out, "code", record.code);
  AppendString(&out, "peer", record.peer);
  if (!record.detail.empty()) AppendString(&out, "detail", record.detail);
  AppendString(&out, "prev", prev);
  return out;
}

std::string ContinueBody(uint64_t seq, absl::Time time, absl::string_view service,
                         absl::string_view previous_file, absl::string_view prev) {
  std::string out = absl::StrCat("{\"seq\":", seq, ",\"type\":\"", kContinueType, "\"");
  AppendString(&out, "time", FormatAuditTime(time));
  AppendString(&out, "service", service);
  AppendString(&out, "previous_file", previous_file);
  AppendString(&out, "prev", prev);
  return out;
}

std::string ChainHash(absl::string_view prev, absl::string_view body) {
  return absl::BytesToHexString(crypto::Blake2b(absl::StrCat(prev, "\n", body)));
}

std::string SealLine(absl::string_view body, absl::string_view prev, std::string* hash) {
  *hash = ChainHash(prev, body);
  return absl::StrCat(body, kHashKey, *hash, "\"}");
}

absl::StatusOr<std::vector<FlatField>> ParseFlatObject(absl::string_view text) {
  absl::StatusOr<JsonValue> doc = ParseJson(text);
  if (!doc.ok())
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", doc.status().message()));
  if (doc->type != JsonValue::kObject) return absl::InvalidArgumentError("not JSON: not an object");
  std::vector<FlatField> fields;
  fields.reserve(doc->members.size());
  for (auto& [key, value] : doc->members) {
    FlatField field;
    field.key = key;
    if (value.type == JsonValue::kString) {
      field.value = std::move(value.text);
    } else if (value.type == JsonValue::kNumber &&
               value.text.find_first_of(".eE") == std::string::npos) {
      field.value = std::move(value.text);
      field.is_number = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("not JSON: ", key, " must be a string or an integer"));
    }
    fields.push_back(std::move(field));
  }
  return fields;
}

absl::StatusOr<ChainLink> CheckLine(absl::string_view line) {
  absl::StatusOr<std::vector<FlatField>> fields = ParseFlatObject(line);
  if (!fields.ok()) return absl::InvalidArgumentError("not JSON");
  const absl::Status unexpected = absl::InvalidArgumentError("unexpected fields");

  ChainLink link;
  bool with_detail = false;
  for (const FlatField& f : *fields) {
    if (f.key == "type") link.type = f.value;
    if (f.key == "detail") with_detail = true;
  }
  if (!link.type.empty() && link.type != kGenesisType && link.type != kContinueType) {
    return unexpected;
  }
  const std::vector<absl::string_view>& keys = RecordKeys(link.type, with_detail);
  if (fields->size() != keys.size()) return unexpected;
  for (size_t i = 0; i < keys.size(); ++i) {
    const FlatField& f = (*fields)[i];
    if (f.key != keys[i] || f.is_number != IsNumberKey(f.key)) return unexpected;
  }
  const FlatField& seq = fields->front();
  if (!absl::SimpleAtoi(seq.value, &link.seq) || seq.value[0] == '-') return unexpected;
  link.prev = (*fields)[keys.size() - 2].value;
  link.hash = (*fields)[keys.size() - 1].value;
  if (!IsHexHash(link.prev) || !IsHexHash(link.hash)) return unexpected;

  // The hash must be the very end of the line, written as the writer writes
  // it, so that the body is exactly what was hashed.
  const std::string suffix = absl::StrCat(kHashKey, link.hash, "\"}");
  if (!absl::EndsWith(line, suffix)) return absl::InvalidArgumentError("hash mismatch");
  const absl::string_view body = line.substr(0, line.size() - suffix.size());
  if (ChainHash(link.prev, body) != link.hash) return absl::InvalidArgumentError("hash mismatch");
  return link;
}

}  // namespace coffer::audit
