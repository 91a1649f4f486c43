// secret_list.h: ListSecrets at scale — filters, the by-creation-date index
// and opaque page tokens.
//
// The "by_created" column family holds one ListIndexEntry per secret under
// key schema::CreatedKey(created_micros, name): 8-byte big-endian
// microseconds then the name, so a scan in key order is creation order, and ties are broken
// by name. The entry carries what filters look at (name, description, tags,
// planned deletion), so skipping a non-matching secret reads nothing else.
//
// A page examines at most `scan_budget` index entries; if it runs out before
// the page is full it returns what it has with a token to continue — so a
// page may be empty yet carry a token (as AWS does), and no call scans a
// million entries. Tokens encode the last examined key plus a fingerprint of
// the query; a token used with other filters/sort/flags, or forged, is
// InvalidNextTokenException. Secrets added while paging never cause
// duplicates or gaps among those that existed when paging began: keys only
// grow and a page resumes strictly after the last examined key.
//
//   COFFER_ASSIGN_OR_RETURN(auto filters, ParseFilters(request.filters()));
//   ListQuery q{filters, request.include_planned_deletion(), ascending, 100};
//   COFFER_ASSIGN_OR_RETURN(ListPage page, ListIndex(db, q, request.next_token()));
//   for (const std::string& name : page.names) { ...read the record... }
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coffer/internal/store/v1/store.pb.h"
#include "coffer/secrets/v1/secrets.pb.h"
#include "google/protobuf/repeated_field.h"
#include "libs/storage/database.h"

namespace coffer::store {

struct SecretFilter {
  enum class Key { kName, kDescription, kTagKey, kTagValue, kAll };
  struct Value {
    bool negate = false;
    std::string text;  // without the leading '!'
  };
  Key key;
  std::vector<Value> values;
};

// At most 10 filters; key one of name, description, tag-key, tag-value,
// all; 1-10 values each, 1-512 characters (InvalidParameterException naming
// "filters").
absl::StatusOr<std::vector<SecretFilter>> ParseFilters(
    const google::protobuf::RepeatedPtrField<secrets::v1::Filter>& filters);

// Filters combine with AND; within one filter a secret matches when some
// non-negated value matches (or there is none) and no negated value does.
// name, tag-key, tag-value: case-sensitive prefix. description:
// case-insensitive prefix. all: every word of the value is a
// case-insensitive prefix of a word of the name, description, a tag key or
// a tag value (words split on anything but letters and digits).
bool MatchesFilters(const internal::store::v1::ListIndexEntry& entry,
                    const std::vector<SecretFilter>& filters);

struct ListQuery {
  std::vector<SecretFilter> filters;
  bool include_planned_deletion = false;
  bool ascending = false;
  int max_results = 100;
  size_t scan_budget = 5000;
};

struct ListPage {
  std::vector<std::string> names;  // in page order
  std::string next_token;          // empty at the end
  // Index entries this page looked at (the scan's cost; <= scan_budget).
  size_t examined = 0;
};

// `fingerprint_input` identifies the query for token validation (the
// caller passes e.g. the serialized filters + flags).
absl::StatusOr<ListPage> ListIndex(const storage::Database& db, const ListQuery& query,
                                   absl::string_view fingerprint_input,
                                   absl::string_view next_token);

}  // namespace coffer::store
