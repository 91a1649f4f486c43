// Catagram: the application Coffer was built for. It reads its PostgreSQL
// credential from Coffer through the caching client (push invalidation:
// a rotated credential reaches it within about a second), serves a tiny
// HTTP endpoint that queries the database, and when a login fails after a
// rotation it refreshes the secret and reconnects, within a retry budget.
//
//   export COFFER_ENDPOINT=localhost:7702 COFFER_CA=var/certs/ca.crt
//   export COFFER_CERT=var/certs/app-catagram.crt COFFER_KEY=var/certs/app-catagram.key
//   build/examples/catagram/catagram --secret_id=demo/catagram/db
//   curl localhost:8080/cats        {"cats":3,"user":"catagram"}
//   curl localhost:8080/stats       {"requests":...,"failed":...,"login_retries":...}
//
// The secret is the PostgreSQL credential JSON that Coffer's rotation
// workers keep (host, port, dbname, username, password, sslmode). Works with
// both rotation strategies: with alternating users a login never fails (the
// previous user stays valid until the next rotation); with a single user the
// few logins between the password change and the label move fail, and the
// retry (refresh, back off, reconnect) rides over them.
#include <libpq-fe.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/client/clients.h"
#include "libs/client/connection.h"
#include "libs/client/secret_cache.h"
#include "libs/common/json.h"
#include "libs/common/log.h"
#include "libs/http/http_server.h"
#include "libs/rpc/server.h"

ABSL_FLAG(std::string, http_address, "127.0.0.1:8080", "host:port to serve on");
ABSL_FLAG(bool, allow_remote_http, false,
          "serve a non-loopback --http_address (e.g. 0.0.0.0 inside a container)");
ABSL_FLAG(std::string, secret_id, "demo/catagram/db", "the secret with the database credential");
ABSL_FLAG(int, login_attempts, 8, "logins tried per request before it fails (the retry budget)");
ABSL_FLAG(absl::Duration, login_backoff, absl::Milliseconds(250),
          "wait between logins after a failed one (doubles, at most 2s)");
ABSL_FLAG(std::string, query, "SELECT count(*) FROM cats", "what /cats runs (one number)");
ABSL_FLAG(bool, reuse_connections, true,
          "keep database sessions between requests (false: log in on every request, which shows "
          "the refresh-and-retry path on every rotation)");
ABSL_FLAG(bool, push_invalidation, true,
          "watch the secret for changes (false: rely on the TTL and on refreshing after a "
          "failed login)");

namespace catagram {

using coffer::http::HttpRequest;
using coffer::http::HttpResponse;

struct Credential {
  std::string host, port, dbname, username, password, sslmode;
  bool operator==(const Credential& o) const {
    return host == o.host && port == o.port && dbname == o.dbname && username == o.username &&
           password == o.password && sslmode == o.sslmode;
  }
};

absl::StatusOr<Credential> ParseCredential(const std::string& json) {
  absl::StatusOr<coffer::JsonValue> doc = coffer::ParseJson(json);
  if (!doc.ok()) return absl::InvalidArgumentError("the secret is not JSON");
  auto field = [&](const char* name) -> std::string {
    const coffer::JsonValue* v = doc->Find(name);
    return v == nullptr ? "" : v->text;  // strings, and numbers as written
  };
  Credential c{field("host"),     field("port"),     field("dbname"),
               field("username"), field("password"), field("sslmode")};
  if (c.host.empty() || c.username.empty() || c.password.empty()) {
    return absl::InvalidArgumentError("the secret lacks host, username or password");
  }
  if (c.port.empty()) c.port = "5432";
  if (c.dbname.empty()) c.dbname = "postgres";
  if (c.sslmode.empty()) c.sslmode = "prefer";
  return c;
}

// Connections made with one credential; those of an older one are closed
// when they come back.
class Pool {
 public:
  ~Pool() {
    for (auto& [cred, conn] : idle_) PQfinish(conn);
  }
  // An idle connection made with `cred`, or nullptr.
  PGconn* Take(const Credential& cred) {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < idle_.size(); ++i) {
      if (idle_[i].first == cred) {
        PGconn* c = idle_[i].second;
        idle_.erase(idle_.begin() + i);
        return c;
      }
    }
    return nullptr;
  }
  void Return(const Credential& cred, PGconn* conn) {
    absl::MutexLock lock(&mu_);
    // Drop connections of credentials that are no longer current.
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (!(it->first == cred)) {
        PQfinish(it->second);
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
    idle_.emplace_back(cred, conn);
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<Credential, PGconn*>> idle_ ABSL_GUARDED_BY(mu_);
};

bool AuthenticationFailed(PGconn* conn) {
  const std::string message = PQerrorMessage(conn);
  return message.find("password authentication failed") != std::string::npos ||
         message.find("does not exist") != std::string::npos;  // a dropped role
}

class App {
 public:
  explicit App(coffer::client::SecretCache* secrets) : secrets_(secrets) {}

  HttpResponse Handle(const HttpRequest& r) {
    if (r.method != "GET") return {405, "text/plain", "GET only\n"};
    if (r.path == "/healthz") return {200, "text/plain", "ok\n"};
    if (r.path == "/stats") {
      return {200, "application/json",
              absl::StrCat("{\"requests\":", requests_.load(), ",\"failed\":", failed_.load(),
                           ",\"login_failures\":", login_failures_.load(),
                           ",\"refreshes\":", refreshes_.load(), "}\n")};
    }
    if (r.path != "/cats") return {404, "text/plain", "not found\n"};
    ++requests_;
    HttpResponse out = Cats();
    if (out.status != 200) ++failed_;
    return out;
  }

 private:
  HttpResponse Cats() {
    const std::string secret_id = absl::GetFlag(FLAGS_secret_id);
    absl::Duration backoff = absl::GetFlag(FLAGS_login_backoff);
    std::string last_error;
    for (int attempt = 1; attempt <= absl::GetFlag(FLAGS_login_attempts); ++attempt) {
      absl::StatusOr<std::string> json = secrets_->GetSecretString(secret_id);
      if (!json.ok()) return {503, "text/plain", "credential unavailable\n"};
      absl::StatusOr<Credential> cred = ParseCredential(*json);
      if (!cred.ok()) return {500, "text/plain", std::string(cred.status().message()) + "\n"};
      const bool reuse = absl::GetFlag(FLAGS_reuse_connections);
      PGconn* conn = reuse ? pool_.Take(*cred) : nullptr;
      if (conn == nullptr) conn = Connect(*cred);
      if (PQstatus(conn) != CONNECTION_OK) {
        last_error = PQerrorMessage(conn);
        const bool auth = AuthenticationFailed(conn);
        PQfinish(conn);
        if (!auth) return {503, "text/plain", "database unavailable\n"};
        // Rotated under us: ask Coffer now instead of waiting for the push
        // or the TTL, then try again a little later.
        ++login_failures_;
        ++refreshes_;
        secrets_->RefreshNow(secret_id).IgnoreError();
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(2));
        continue;
      }
      PGresult* res = PQexec(conn, absl::GetFlag(FLAGS_query).c_str());
      const bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
      const std::string value = ok ? PQgetvalue(res, 0, 0) : "";
      PQclear(res);
      if (!ok) {
        PQfinish(conn);  // a broken session: do not pool it
        return {500, "text/plain", "query failed\n"};
      }
      if (reuse) {
        pool_.Return(*cred, conn);
      } else {
        PQfinish(conn);
      }
      return {200, "application/json",
              absl::StrCat("{\"cats\":", value, ",\"user\":", coffer::JsonQuote(cred->username),
                           "}\n")};
    }
    coffer::log::Warn("catagram", "login failed after every retry", {{"error", last_error}});
    return {503, "text/plain", "cannot log in to the database\n"};
  }

  static PGconn* Connect(const Credential& c) {
    const char* keys[] = {"host",     "port",    "dbname",          "user",
                          "password", "sslmode", "connect_timeout", nullptr};
    const char* values[] = {c.host.c_str(),
                            c.port.c_str(),
                            c.dbname.c_str(),
                            c.username.c_str(),
                            c.password.c_str(),
                            c.sslmode.c_str(),
                            "5",
                            nullptr};
    return PQconnectdbParams(keys, values, 0);
  }

  coffer::client::SecretCache* secrets_;
  Pool pool_;
  std::atomic<int64_t> requests_{0}, failed_{0}, login_failures_{0}, refreshes_{0};
};

absl::Status Run() {
  absl::StatusOr<coffer::client::ClientOptions> options =
      coffer::client::OptionsFromEnvironment(coffer::client::Service::kStore);
  if (!options.ok()) return options.status();
  absl::StatusOr<std::shared_ptr<coffer::client::Connection>> store =
      coffer::client::Connection::Create(*options, "coffer-store");
  if (!store.ok()) return store.status();
  coffer::client::SecretCacheOptions cache_options;
  cache_options.push_invalidation = absl::GetFlag(FLAGS_push_invalidation);
  coffer::client::SecretCache secrets(coffer::client::SecretsClient(*store), cache_options);
  App app(&secrets);
  coffer::http::HttpServerOptions http_options;
  http_options.listen_address = absl::GetFlag(FLAGS_http_address);
  http_options.allow_remote = absl::GetFlag(FLAGS_allow_remote_http);
  absl::StatusOr<std::unique_ptr<coffer::http::HttpServer>> server =
      coffer::http::HttpServer::Start(http_options,
                                      [&app](const HttpRequest& r) { return app.Handle(r); });
  if (!server.ok()) return server.status();
  coffer::log::Info("catagram", "serving", {{"port", absl::StrCat((*server)->port())}});
  coffer::rpc::WaitForShutdownSignal();
  return absl::OkStatus();
}

}  // namespace catagram

int main(int argc, char** argv) {
  coffer::rpc::BlockShutdownSignals();
  absl::SetProgramUsageMessage("catagram: a tiny app that survives credential rotations");
  absl::ParseCommandLine(argc, argv);
  absl::Status s = catagram::Run();
  if (!s.ok()) {
    coffer::log::Error("catagram", "fatal", {{"error", s.ToString()}});
    return 1;
  }
  return 0;
}
