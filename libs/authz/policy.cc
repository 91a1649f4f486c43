#include "libs/authz/policy.h"

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/json.h"

namespace coffer::authz {

// ---- Glob ----

Glob::Glob(std::string pattern, bool ignore_case)
    : pattern_(std::move(pattern)),
      ignore_case_(ignore_case),
      literal_(pattern_.find_first_of("*?") == std::string::npos),
      matches_all_(pattern_ == "*") {
  if (ignore_case_) absl::AsciiStrToLower(&pattern_);
}

bool Glob::Matches(absl::string_view text) const {
  if (matches_all_) return true;
  auto eq = [this](char p, char t) {
    return ignore_case_ ? p == absl::ascii_tolower(static_cast<unsigned char>(t)) : p == t;
  };
  if (literal_) {
    if (text.size() != pattern_.size()) return false;
    for (size_t i = 0; i < text.size(); ++i) {
      if (!eq(pattern_[i], text[i])) return false;
    }
    return true;
  }
  // Greedy match with one backtrack point (the last '*'): linear for
  // patterns without '*' and O(n*m) at worst, never exponential.
  size_t p = 0, t = 0, star = std::string::npos, resume = 0;
  while (t < text.size()) {
    // '*' first: a '*' in the text is an ordinary character, never a
    // literal match for the pattern's wildcard.
    if (p < pattern_.size() && pattern_[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern_.size() && (pattern_[p] == '?' || eq(pattern_[p], text[t]))) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern_.size() && pattern_[p] == '*') ++p;
  return p == pattern_.size();
}

// ---- Parsing ----

namespace {

constexpr const char* kServices[] = {"secretsmanager", "ssm", "kms", "rotation"};
constexpr char kContextPrefix[] = "kms:EncryptionContext:";

// Member names of the two dialects.
struct Names {
  const char* statements;
  const char* sid;
  const char* effect;
  const char* principals;
  const char* actions;
  const char* resources;
  const char* condition;
};
constexpr Names kIdentityNames = {"statements", "sid",       "effect",   "principals",
                                  "actions",    "resources", "condition"};
constexpr Names kResourceNames = {"Statement", "Sid",      "Effect",   "Principal",
                                  "Action",    "Resource", "Condition"};

absl::Status At(const JsonValue& v, absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("line ", v.line, ": ", field, ": ", problem));
}

// A string or a non-empty array of strings.
absl::StatusOr<std::vector<std::string>> Strings(const JsonValue& v, const std::string& field) {
  std::vector<std::string> out;
  if (v.type == JsonValue::kString) {
    out.push_back(v.text);
  } else if (v.type == JsonValue::kArray) {
    for (size_t i = 0; i < v.items.size(); ++i) {
      const JsonValue& item = v.items[i];
      if (item.type != JsonValue::kString) {
        return At(item, absl::StrCat(field, "[", i, "]"),
                  absl::StrCat("must be a string, not ", JsonTypeName(item.type)));
      }
      out.push_back(item.text);
    }
  } else {
    return At(v, field,
              absl::StrCat("must be a string or an array of strings, not ", JsonTypeName(v.type)));
  }
  if (out.empty()) return At(v, field, "must not be empty");
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].empty()) {
      return At(v, v.type == JsonValue::kArray ? absl::StrCat(field, "[", i, "]") : field,
                "must not be empty");
    }
  }
  return out;
}

absl::Status CheckAction(const JsonValue& v, const std::string& field, const std::string& action) {
  if (action == "*") return absl::OkStatus();
  size_t colon = action.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == action.size()) {
    return At(v, field,
              absl::StrCat("'", action, "' must be <service>:<operation> (e.g. kms:Decrypt) or *"));
  }
  std::string service = absl::AsciiStrToLower(action.substr(0, colon));
  if (service.find_first_of("*?") != std::string::npos) return absl::OkStatus();
  for (const char* known : kServices) {
    if (service == known) return absl::OkStatus();
  }
  return At(v, field,
            absl::StrCat("unknown service '", action.substr(0, colon),
                         "' (secretsmanager, ssm, kms or rotation)"));
}

absl::Status CheckPrincipal(const JsonValue& v, const std::string& field, const std::string& p) {
  if (p == "*" || absl::StartsWith(p, "spiffe://")) return absl::OkStatus();
  return At(v, field, absl::StrCat("'", p, "' must be a SPIFFE ID (spiffe://...) or *"));
}

// Principal of a resource policy: "*" or {"Coffer"|"AWS"|"SPIFFE": ...}.
absl::StatusOr<std::vector<std::string>> ResourcePrincipals(const JsonValue& v,
                                                            const std::string& field) {
  if (v.type == JsonValue::kString) {
    if (v.text != "*")
      return At(v, field, "must be \"*\" or an object such as {\"Coffer\": [...]}");
    return std::vector<std::string>{"*"};
  }
  if (v.type != JsonValue::kObject || v.members.empty()) {
    return At(v, field, "must be \"*\" or an object such as {\"Coffer\": [...]}");
  }
  std::vector<std::string> out;
  for (const auto& [kind, value] : v.members) {
    std::string sub = absl::StrCat(field, ".", kind);
    if (kind != "Coffer" && kind != "AWS" && kind != "SPIFFE") {
      return At(value, sub, "unknown principal type (Coffer, SPIFFE or AWS)");
    }
    auto list = Strings(value, sub);
    if (!list.ok()) return list.status();
    for (auto& p : *list) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

absl::StatusOr<Policy> Policy::Parse(absl::string_view text, Dialect dialect) {
  auto doc = ParseJson(text);
  if (!doc.ok()) return doc.status();
  const Names& n = dialect == kIdentity ? kIdentityNames : kResourceNames;
  if (doc->type != JsonValue::kObject) {
    return At(*doc, "policy", absl::StrCat("must be a JSON object, not ", JsonTypeName(doc->type)));
  }
  const JsonValue* list = nullptr;
  for (const auto& [name, value] : doc->members) {
    if (name == n.statements) {
      list = &value;
    } else if (dialect == kIdentity ? name == "version" : (name == "Version" || name == "Id")) {
      if (value.type != JsonValue::kString) return At(value, name, "must be a string");
    } else {
      return At(value, name, "unknown member");
    }
  }
  if (list == nullptr) {
    return At(*doc, n.statements, "missing: a policy is a list of statements");
  }
  std::vector<const JsonValue*> items;
  if (list->type == JsonValue::kArray) {
    for (const JsonValue& item : list->items) items.push_back(&item);
  } else if (dialect == kResource && list->type == JsonValue::kObject) {
    items.push_back(list);  // AWS allows one statement without the array
  } else {
    return At(*list, n.statements, "must be an array of statements");
  }

  Policy policy;
  for (size_t i = 0; i < items.size(); ++i) {
    const JsonValue& sv = *items[i];
    const std::string at = absl::StrCat(n.statements, "[", i, "]");
    if (sv.type != JsonValue::kObject) return At(sv, at, "must be an object");
    Statement s;
    bool has_effect = false, has_principals = false, has_actions = false, has_resources = false;
    for (const auto& [name, value] : sv.members) {
      const std::string field = absl::StrCat(at, ".", name);
      if (name == n.sid) {
        if (value.type != JsonValue::kString) return At(value, field, "must be a string");
      } else if (name == n.effect) {
        if (value.type != JsonValue::kString || (value.text != "Allow" && value.text != "Deny")) {
          return At(value, field, "must be \"Allow\" or \"Deny\"");
        }
        s.allow = value.text == "Allow";
        has_effect = true;
      } else if (name == n.principals) {
        auto list = dialect == kIdentity ? Strings(value, field) : ResourcePrincipals(value, field);
        if (!list.ok()) return list.status();
        for (const std::string& p : *list) {
          if (absl::Status st = CheckPrincipal(value, field, p); !st.ok()) return st;
          s.principals.emplace_back(p);
        }
        has_principals = true;
      } else if (name == n.actions) {
        auto list = Strings(value, field);
        if (!list.ok()) return list.status();
        for (const std::string& a : *list) {
          if (absl::Status st = CheckAction(value, field, a); !st.ok()) return st;
          s.actions.emplace_back(a, /*ignore_case=*/true);
        }
        has_actions = true;
      } else if (name == n.resources) {
        auto list = Strings(value, field);
        if (!list.ok()) return list.status();
        for (const std::string& r : *list) s.resources.emplace_back(r);
        has_resources = true;
      } else if (name == n.condition) {
        if (value.type != JsonValue::kObject) return At(value, field, "must be an object");
        for (const auto& [op, tests] : value.members) {
          const std::string opfield = absl::StrCat(field, ".", op);
          if (op != "StringEquals" && op != "StringLike") {
            return At(tests, opfield, "unknown operator (StringEquals or StringLike)");
          }
          if (tests.type != JsonValue::kObject || tests.members.empty()) {
            return At(tests, opfield, "must be an object of condition keys");
          }
          for (const auto& [key, want] : tests.members) {
            const std::string keyfield = absl::StrCat(opfield, ".", key);
            if (!absl::StartsWith(key, kContextPrefix) || key.size() == strlen(kContextPrefix)) {
              return At(want, keyfield,
                        "unknown condition key (kms:EncryptionContext:<name> is supported)");
            }
            auto values = Strings(want, keyfield);
            if (!values.ok()) return values.status();
            Condition c;
            c.like = op == "StringLike";
            c.context_key = key.substr(strlen(kContextPrefix));
            for (std::string& v : *values) {
              // StringEquals compares literally: escape nothing, match as a
              // literal pattern unless it is a glob under StringLike.
              c.values.emplace_back(std::move(v));
            }
            s.conditions.push_back(std::move(c));
          }
        }
      } else if (name == "NotPrincipal" || name == "NotAction" || name == "NotResource" ||
                 name == "not_principals" || name == "not_actions" || name == "not_resources") {
        return At(value, field, "not supported: write a Deny statement instead");
      } else {
        return At(value, field, "unknown member");
      }
    }
    if (!has_effect) return At(sv, absl::StrCat(at, ".", n.effect), "missing");
    if (!has_principals) return At(sv, absl::StrCat(at, ".", n.principals), "missing");
    if (!has_actions) return At(sv, absl::StrCat(at, ".", n.actions), "missing");
    if (!has_resources) {
      // A resource policy is attached to its secret: Resource defaults to it.
      if (dialect == kIdentity) return At(sv, absl::StrCat(at, ".", n.resources), "missing");
      s.resources.emplace_back("*");
    }
    policy.statements_.push_back(std::move(s));
  }
  return policy;
}

// ---- Evaluation ----

bool Policy::Applies(const Statement& s, const Request& request) {
  auto any = [](const std::vector<Glob>& globs, absl::string_view text) {
    for (const Glob& g : globs) {
      if (g.Matches(text)) return true;
    }
    return false;
  };
  if (!any(s.actions, request.action) || !any(s.principals, request.principal)) return false;
  bool resource = false;
  for (const Glob& g : s.resources) {
    if (g.matches_all()) {
      resource = true;
      break;
    }
    for (absl::string_view r : request.resources) {
      if (!r.empty() && g.Matches(r)) {
        resource = true;
        break;
      }
    }
    if (resource) break;
  }
  if (!resource) return false;
  for (const Condition& c : s.conditions) {
    if (request.context == nullptr) return false;
    auto it = request.context->find(c.context_key);
    if (it == request.context->end()) return false;
    bool ok = false;
    for (const Glob& v : c.values) {
      if (c.like ? v.Matches(it->second) : v.pattern() == it->second) {
        ok = true;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

Decision Policy::Evaluate(const Request& request) const {
  Decision decision = Decision::kImplicitDeny;
  for (const Statement& s : statements_) {
    if (!Applies(s, request)) continue;
    if (!s.allow) return Decision::kExplicitDeny;
    decision = Decision::kAllow;
  }
  return decision;
}

bool Policy::GrantsEveryone() const {
  for (const Statement& s : statements_) {
    if (!s.allow) continue;
    for (const Glob& p : s.principals) {
      if (p.matches_all() || p.pattern() == "spiffe://*") return true;
    }
  }
  return false;
}

Decision Combine(Decision identity, Decision resource) {
  if (identity == Decision::kExplicitDeny || resource == Decision::kExplicitDeny) {
    return Decision::kExplicitDeny;
  }
  if (identity == Decision::kAllow || resource == Decision::kAllow) return Decision::kAllow;
  return Decision::kImplicitDeny;
}

}  // namespace coffer::authz
