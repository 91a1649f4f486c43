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

class FlatParser {
 public:
  explicit FlatParser(absl::string_view text) : s_(text) {}

  absl::StatusOr<std::vector<FlatField>> Parse() {
    std::vector<FlatField> fields;
    SkipSpace();
    if (!Eat('{')) return Error("expected '{'");
    SkipSpace();
    if (Eat('}')) return Finish(std::move(fields));
    while (true) {
      FlatField field;
      SkipSpace();
      if (!String(&field.key)) return Error("expected a key");
      SkipSpace();
      if (!Eat(':')) return Error("expected ':'");
      SkipSpace();
      if (Peek() == '"') {
        if (!String(&field.value)) return Error("bad string");
      } else if (!Integer(&field.value)) {
        return Error("expected a string or an integer");
      } else {
        field.is_number = true;
      }
      fields.push_back(std::move(field));
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat('}')) return Finish(std::move(fields));
      return Error("expected ',' or '}'");
    }
  }

 private:
  absl::StatusOr<std::vector<FlatField>> Finish(std::vector<FlatField> fields) {
    SkipSpace();
    if (pos_ != s_.size()) return Error("text after the object");
    return fields;
  }
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", what, " at offset ", pos_));
  }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool Eat(char c) {
    if (Peek() != c || pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Integer(std::string* out) {
    const size_t start = pos_;
    Eat('-');
    const size_t digits = pos_;
    while (absl::ascii_isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
    if (pos_ == digits) return false;
    if (s_[digits] == '0' && pos_ - digits > 1) return false;  // no leading zeros
    const char next = Peek();
    if (next == '.' || next == 'e' || next == 'E') return false;  // integers only
    *out = std::string(s_.substr(start, pos_ - start));
    return true;
  }
  bool Hex4(uint32_t* cp) {
    if (pos_ + 4 > s_.size()) return false;
    *cp = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      *cp <<= 4;
      if (c >= '0' && c <= '9') {
        *cp |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        *cp |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        *cp |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    out->clear();
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;  // raw control character
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return false;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xdc00 && cp <= 0xdfff) return false;  // lone low surrogate
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t low;
            if (!Eat('\\') || !Eat('u') || !Hex4(&low) || low < 0xdc00 || low > 0xdfff) {
              return false;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return false;
      }
    }
    return false;  // unterminated
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

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
  return FlatParser(text).Parse();
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
