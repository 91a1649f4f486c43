// postgres_credential.h: the value of a PostgreSQL secret, as rotation.md
// defines it:
//
//   {"engine":"postgres","host":"db.internal","port":5432,"dbname":"app",
//    "username":"app","password":"...","master_secret":"prod/db/master",
//    "sslmode":"verify-full"}
//
//   COFFER_ASSIGN_OR_RETURN(PostgresCredential c, ParseCredential(json, "AWSCURRENT"));
//   c.password = new_password;
//   COFFER_ASSIGN_OR_RETURN(std::string out, SerializeCredential(c));
//
// Fields it does not know are kept as they were. Error messages name the
// version and the field, never the text (which holds a password).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace coffer::workers {

struct PostgresCredential {
  std::string host;
  int port = 5432;
  std::string dbname = "postgres";
  std::string username;
  std::string password;
  // Alternating users: the secret (name or ARN) with the admin credential.
  std::string master_secret;
  // libpq sslmode; "" = the worker's default (verify-full with a configured
  // CA, else require: never plaintext unless the secret says so).
  std::string sslmode;
  // The whole object, so that unknown fields survive a rotation.
  google::protobuf::Struct fields;
};

// INVALID_ARGUMENT for text that is not a JSON object, an engine other than
// "postgres", a missing/ill-typed host, username or password, or an
// sslmode libpq does not know. `what`
// names the version in messages ("AWSCURRENT", "pending version").
absl::StatusOr<PostgresCredential> ParseCredential(absl::string_view json, absl::string_view what);

// The credential as a JSON object (known fields from the struct members).
absl::StatusOr<std::string> SerializeCredential(const PostgresCredential& credential);

}  // namespace coffer::workers
