#include "services/store/secrets/secret_list.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/errors.h"
#include "libs/common/paging.h"
#include "libs/common/status_macros.h"
#include "libs/storage/key_encoding.h"
#include "services/store/schema.h"

namespace coffer::store {

using ::coffer::internal::store::v1::ListIndexEntry;

namespace {

constexpr char kFiltersField[] = "filters";
constexpr char kNextTokenField[] = "next_token";
constexpr int kMaxFilters = 10;
constexpr int kMaxValuesPerFilter = 10;
constexpr size_t kMaxValueChars = 512;
constexpr size_t kMaxNameChars = 512;
constexpr size_t kMicrosBytes = schema::kTimeBytes;

// Token payload (inside libs/common/paging.h's "list" token): version, direction, 8-byte check,
// then the last examined index key. The check is FNV-1a over the query's fingerprint, the header
// bytes and the key, so a token presented with another query, or altered, fails to validate. It is
// not a MAC: forging a token only moves where a scan of the caller's own query starts.
constexpr char kTokenVersion = 1;
constexpr char kDescending = 0;
constexpr char kAscending = 1;
constexpr size_t kTokenHeaderBytes = 2 + 8;
constexpr char kTokenKind[] = "list";

struct FilterKeyName {
  absl::string_view name;
  SecretFilter::Key key;
};
constexpr FilterKeyName kFilterKeys[] = {
    {"name", SecretFilter::Key::kName},      {"description", SecretFilter::Key::kDescription},
    {"tag-key", SecretFilter::Key::kTagKey}, {"tag-value", SecretFilter::Key::kTagValue},
    {"all", SecretFilter::Key::kAll},
};

absl::Status BadFilter(absl::string_view problem) {
  return InvalidField(kFiltersField, problem, reason::kInvalidParameter);
}

absl::Status BadToken(absl::string_view problem) {
  return Error(reason::kInvalidNextToken, absl::StrCat(kNextTokenField, ": ", problem), "",
               kNextTokenField);
}

// Characters, not bytes: UTF-8 continuation bytes are not counted.
size_t Utf8Length(absl::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Letters and digits. Bytes of non-ASCII UTF-8 sequences count as word
// characters so that words in other scripts are not cut apart.
bool IsWordByte(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         static_cast<unsigned char>(c) >= 0x80;
}

void AppendWords(absl::string_view text, std::vector<std::string>* words) {
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !IsWordByte(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && IsWordByte(text[i])) ++i;
    if (i > start) words->push_back(absl::AsciiStrToLower(text.substr(start, i - start)));
  }
}

// The words of every attribute the "all" filter searches, lowercased;
// computed at most once per entry.
class EntryWords {
 public:
  explicit EntryWords(const ListIndexEntry& entry) : entry_(entry) {}

  const std::vector<std::string>& words() {
    if (!computed_) {
      AppendWords(entry_.name(), &words_);
      AppendWords(entry_.description(), &words_);
      for (const auto& tag : entry_.tags()) {
        AppendWords(tag.key(), &words_);
        AppendWords(tag.value(), &words_);
      }
      computed_ = true;
    }
    return words_;
  }

 private:
  const ListIndexEntry& entry_;
  bool computed_ = false;
  std::vector<std::string> words_;
};

bool MatchesAllWords(absl::string_view value, EntryWords& entry_words) {
  std::vector<std::string> wanted;
  AppendWords(value, &wanted);
  const std::vector<std::string>& have = entry_words.words();
  for (const std::string& w : wanted) {
    bool found = std::any_of(have.begin(), have.end(),
                             [&w](const std::string& h) { return absl::StartsWith(h, w); });
    if (!found) return false;
  }
  return true;
}

bool MatchesValue(SecretFilter::Key key, absl::string_view text, const ListIndexEntry& entry,
                  EntryWords& entry_words) {
  switch (key) {
    case SecretFilter::Key::kName:
      return absl::StartsWith(entry.name(), text);
    case SecretFilter::Key::kDescription:
      return absl::StartsWithIgnoreCase(entry.description(), text);
    case SecretFilter::Key::kTagKey:
      return std::any_of(entry.tags().begin(), entry.tags().end(),
                         [text](const auto& tag) { return absl::StartsWith(tag.key(), text); });
    case SecretFilter::Key::kTagValue:
      return std::any_of(entry.tags().begin(), entry.tags().end(),
                         [text](const auto& tag) { return absl::StartsWith(tag.value(), text); });
    case SecretFilter::Key::kAll:
      return MatchesAllWords(text, entry_words);
  }
  return false;
}

void AppendLengthPrefixed(absl::string_view s, std::string* out) {
  storage::AppendBigEndian64(s.size(), out);
  out->append(s.data(), s.size());
}

// Stable across processes and builds (unlike absl::Hash), which tokens need.
uint64_t Fnv1a64(absl::string_view data, uint64_t hash = 14695981039346656037ull) {
  for (char c : data) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

// Everything a token is only valid for: the caller's fingerprint plus the
// parsed filters and flags (so tokens are checked even when the caller's
// fingerprint input is incomplete). Page size and scan budget may change
// between pages.
std::string QueryFingerprint(const ListQuery& query, absl::string_view fingerprint_input) {
  std::string out = "coffer-store/list/v1";
  AppendLengthPrefixed(fingerprint_input, &out);
  out.push_back(query.include_planned_deletion ? 1 : 0);
  out.push_back(query.ascending ? 1 : 0);
  storage::AppendBigEndian64(query.filters.size(), &out);
  for (const SecretFilter& filter : query.filters) {
    out.push_back(static_cast<char>(filter.key));
    storage::AppendBigEndian64(filter.values.size(), &out);
    for (const SecretFilter::Value& value : filter.values) {
      out.push_back(value.negate ? 1 : 0);
      AppendLengthPrefixed(value.text, &out);
    }
  }
  return out;
}

uint64_t TokenCheck(absl::string_view query_fingerprint, char version, char direction,
                    absl::string_view key) {
  uint64_t h = Fnv1a64(query_fingerprint);
  const char header[2] = {version, direction};
  h = Fnv1a64(absl::string_view(header, 2), h);
  return Fnv1a64(key, h);
}

std::string EncodeToken(absl::string_view query_fingerprint, bool ascending,
                        absl::string_view last_key) {
  const char direction = ascending ? kAscending : kDescending;
  std::string raw;
  raw.push_back(kTokenVersion);
  raw.push_back(direction);
  storage::AppendBigEndian64(TokenCheck(query_fingerprint, kTokenVersion, direction, last_key),
                             &raw);
  raw.append(last_key.data(), last_key.size());
  return EncodePageToken(kTokenKind, raw);
}

// The last examined key of the previous page ("" for the first page).
absl::StatusOr<std::string> DecodeToken(absl::string_view token,
                                        absl::string_view query_fingerprint, bool ascending) {
  if (token.empty()) return std::string();
  auto decoded = DecodePageToken(kTokenKind, token, {kNextTokenField, reason::kInvalidNextToken});
  if (!decoded.ok() || decoded->size() < kTokenHeaderBytes) {
    return BadToken("is not a token returned by ListSecrets");
  }
  const std::string& raw = *decoded;
  if (raw[0] != kTokenVersion) return BadToken("is not a token returned by ListSecrets");
  const char direction = raw[1];
  absl::string_view key = absl::string_view(raw).substr(kTokenHeaderBytes);
  if (key.size() <= kMicrosBytes || key.size() > kMicrosBytes + kMaxNameChars ||
      storage::ReadBigEndian64(absl::string_view(raw).substr(2, 8)) !=
          TokenCheck(query_fingerprint, raw[0], direction, key)) {
    return BadToken("does not belong to this query (filters, sort order or flags changed)");
  }
  if (direction != (ascending ? kAscending : kDescending)) {
    return BadToken("does not belong to this query (sort order changed)");
  }
  return std::string(key);
}

}  // namespace

absl::StatusOr<std::vector<SecretFilter>> ParseFilters(
    const google::protobuf::RepeatedPtrField<secrets::v1::Filter>& filters) {
  if (filters.size() > kMaxFilters) {
    return BadFilter(absl::StrCat("at most ", kMaxFilters, " filters"));
  }
  std::vector<SecretFilter> parsed;
  parsed.reserve(filters.size());
  for (const secrets::v1::Filter& filter : filters) {
    const auto* known =
        std::find_if(std::begin(kFilterKeys), std::end(kFilterKeys),
                     [&](const FilterKeyName& k) { return k.name == filter.key(); });
    if (known == std::end(kFilterKeys)) {
      return BadFilter(absl::StrCat("unknown filter key '", absl::CHexEscape(filter.key()),
                                    "' (name, description, tag-key, tag-value or all)"));
    }
    if (filter.values().empty() || filter.values().size() > kMaxValuesPerFilter) {
      return BadFilter(
          absl::StrCat("filter '", filter.key(), "' needs 1-", kMaxValuesPerFilter, " values"));
    }
    SecretFilter out;
    out.key = known->key;
    for (const std::string& value : filter.values()) {
      size_t chars = Utf8Length(value);
      if (chars < 1 || chars > kMaxValueChars) {
        return BadFilter(absl::StrCat("values of filter '", filter.key(), "' must be 1-",
                                      kMaxValueChars, " characters"));
      }
      SecretFilter::Value v;
      v.negate = value[0] == '!';
      v.text = v.negate ? value.substr(1) : value;
      if (v.negate && v.text.empty()) {
        return BadFilter(
            absl::StrCat("filter '", filter.key(), "' has a value '!' that negates nothing"));
      }
      out.values.push_back(std::move(v));
    }
    parsed.push_back(std::move(out));
  }
  return parsed;
}

bool MatchesFilters(const ListIndexEntry& entry, const std::vector<SecretFilter>& filters) {
  EntryWords entry_words(entry);
  for (const SecretFilter& filter : filters) {
    bool has_positive = false;
    bool positive_matched = false;
    for (const SecretFilter::Value& value : filter.values) {
      if (value.negate) {
        if (MatchesValue(filter.key, value.text, entry, entry_words)) return false;
      } else {
        has_positive = true;
        if (!positive_matched && MatchesValue(filter.key, value.text, entry, entry_words)) {
          positive_matched = true;
        }
      }
    }
    if (has_positive && !positive_matched) return false;
  }
  return true;
}

absl::StatusOr<ListPage> ListIndex(const storage::Database& db, const ListQuery& query,
                                   absl::string_view fingerprint_input,
                                   absl::string_view next_token) {
  if (query.max_results < 1) {
    return InvalidField("max_results", "must be at least 1", reason::kInvalidParameter);
  }
  const std::string fingerprint = QueryFingerprint(query, fingerprint_input);
  COFFER_ASSIGN_OR_RETURN(std::string resume_after,
                          DecodeToken(next_token, fingerprint, query.ascending));

  const size_t max_results = static_cast<size_t>(query.max_results);
  // A budget of 0 would never make progress.
  const size_t budget = std::max<size_t>(query.scan_budget, 1);

  storage::ScanOptions scan;
  scan.start_after = resume_after;  // strictly after, in either direction
  scan.reverse = !query.ascending;

  ListPage page;
  std::string last_key;
  bool more = false;
  absl::Status entry_error;
  ListIndexEntry entry;
  COFFER_RETURN_IF_ERROR(
      db.Scan(schema::kByCreated, scan, [&](absl::string_view key, absl::string_view value) {
        if (page.names.size() >= max_results || page.examined >= budget) {
          // Looked at only to learn that the index goes on.
          more = true;
          return false;
        }
        if (key.size() <= kMicrosBytes ||
            !entry.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          entry_error = Error(reason::kInternal, "corrupt ListSecrets index entry");
          return false;
        }
        ++page.examined;
        last_key.assign(key.data(), key.size());
        absl::string_view name = key.substr(kMicrosBytes);
        if (entry.name().empty()) entry.set_name(std::string(name));
        if (entry.planned_deletion() && !query.include_planned_deletion) return true;
        if (MatchesFilters(entry, query.filters)) page.names.emplace_back(name);
        return true;
      }));
  COFFER_RETURN_IF_ERROR(entry_error);
  if (more) page.next_token = EncodeToken(fingerprint, query.ascending, last_key);
  return page;
}

}  // namespace coffer::store
