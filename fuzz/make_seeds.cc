// make_seeds: writes the seeds that only the library can make — a real KMS
// ciphertext (under ciphertext_fuzz's fixed key and context), a valid
// audit log, and requests signed for sigv4_fuzz's clock and key — into
// <corpus dir>/<target>/. Run once; the files are checked in:
//
//   ninja -C build-fuzz make_seeds && build-fuzz/make_seeds fuzz/corpus
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "fuzz/sigv4_request_text.h"
#include "libs/audit/audit_log.h"
#include "libs/audit/record_format.h"
#include "libs/crypto/secure_buffer.h"
#include "libs/sigv4/sigv4.h"
#include "services/kms/ciphertext.h"

namespace {

void Write(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

// `r` signed as SignRequest signs, by `access_key_id` at `at`, then
// `unsigned_headers` added, as sigv4_fuzz's input text.
std::string SignedRequestText(
    coffer::fuzz::RequestText r, absl::string_view access_key_id, absl::string_view service,
    absl::Time at, const std::vector<std::pair<std::string, std::string>>& unsigned_headers = {}) {
  absl::StatusOr<coffer::sigv4::SignedAuthHeaders> auth = coffer::sigv4::SignRequest(
      r.View(), {access_key_id, coffer::fuzz::kSigv4FuzzSecret, "local", service, at});
  if (!auth.ok()) {
    std::fprintf(stderr, "cannot sign a seed: %s\n", auth.status().ToString().c_str());
    std::exit(1);
  }
  r.headers.emplace_back("X-Amz-Date", auth->x_amz_date);
  r.headers.emplace_back("Authorization", auth->authorization);
  for (const auto& h : unsigned_headers) r.headers.push_back(h);
  return coffer::fuzz::FormatRequestText(r);
}

void WriteSigv4Seeds(const std::string& dir) {
  const absl::Time now = coffer::fuzz::Sigv4FuzzNow();
  const char* const id = coffer::fuzz::kSigv4FuzzAccessKeyId;
  coffer::fuzz::RequestText get;  // the AWS CLI's get-secret-value
  get.method = "POST";
  get.path = "/";
  get.headers = {{"X-Amz-Target", "secretsmanager.GetSecretValue"},
                 {"Content-Type", "application/x-amz-json-1.1"},
                 {"Host", "127.0.0.1:7704"}};
  get.body = "{\"SecretId\": \"prod/orders/db\"}";
  const std::vector<std::pair<std::string, std::string>> cli_extras = {
      {"User-Agent", "aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0 source/x86_64.debian.12"},
      {"Content-Length", "30"}};
  const std::string signed_get = SignedRequestText(get, id, "secretsmanager", now, cli_extras);
  Write(dir + "/sigv4_fuzz/get_secret_value", signed_get);
  Write(dir + "/sigv4_fuzz/kms_four_minutes_old",
        SignedRequestText(get, id, "kms", now - absl::Minutes(4)));
  Write(dir + "/sigv4_fuzz/unknown_key", SignedRequestText(get, "AKIAUNKNOWN", "ssm", now));
  Write(dir + "/sigv4_fuzz/store_down",
        SignedRequestText(get, coffer::fuzz::kSigv4FuzzUnavailableKeyId, "ssm", now));

  coffer::fuzz::RequestText odd;  // path, query, repeats, spaces, a signed body hash
  odd.method = "GET";
  odd.path = "/a%20b/./c//..//d/";
  odd.query = "b=2&a=%2f&a=1&flag&%E1%88%B4=x+y";
  odd.body = "Param1=value1";
  odd.headers = {{"host", "example.amazonaws.com"},
                 {"My-Header1", "  a   b\tc "},
                 {"my-header1", "second"},
                 {"X-Amz-Content-Sha256", coffer::sigv4::HexSha256(odd.body)}};
  Write(dir + "/sigv4_fuzz/ssm_query_path_repeats", SignedRequestText(odd, id, "ssm", now));

  // Refusals: start from the signed request and break one thing.
  auto without = [](std::string text, absl::string_view line_prefix) {
    const size_t at = text.find(std::string("\n") + std::string(line_prefix));
    if (at != std::string::npos) text.erase(at + 1, text.find('\n', at + 1) - at);
    return text;
  };
  Write(dir + "/sigv4_fuzz/no_authorization", without(signed_get, "Authorization:"));
  Write(dir + "/sigv4_fuzz/no_x_amz_date", without(signed_get, "X-Amz-Date:"));
  std::string session = signed_get;
  session.insert(session.find("\n") + 1, "X-Amz-Security-Token:FQoGZXIvYXdzEXAMPLE\n");
  Write(dir + "/sigv4_fuzz/session_token", session);
  std::string no_signature = signed_get;
  no_signature.erase(no_signature.find(", Signature="), 12 + 64);
  Write(dir + "/sigv4_fuzz/no_signature", no_signature);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <corpus dir>\n");
    return 2;
  }
  const std::string dir = argv[1];

  // ciphertext_fuzz's key and context.
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(i));
  auto material = coffer::crypto::SecureBuffer::Copy(bytes);
  const coffer::kms::EncryptionContext context{
      {"SecretARN", "arn:coffer:secretsmanager:local:000000000000:secret:demo/db-Ab3xQ9"},
      {"SecretVersionId", "11111111-2222-3333-4444-555555555555"}};
  Write(dir + "/ciphertext_fuzz/sealed_v1",
        coffer::kms::SealCiphertext("e5674858-0000-4000-8000-000000000000", 1, material,
                                    "example-plaintext", context));
  Write(dir + "/ciphertext_fuzz/sealed_v7_empty",
        coffer::kms::SealCiphertext("e5674858-0000-4000-8000-000000000000", 7, material, "",
                                    context));

  // A store audit log: genesis, two requests (one with a detail).
  namespace audit = coffer::audit;
  const absl::Time t = absl::FromUnixMicros(1796024417123456);
  std::string hash = audit::kZeroHash;
  std::string log;
  auto add = [&](const std::string& body) {
    std::string prev = hash;
    log += audit::SealLine(body, prev, &hash) + "\n";
  };
  add(audit::GenesisBody(t, "store"));
  audit::Record r;
  r.time = t + absl::Milliseconds(5);
  r.request_id = "0f6c3b1e-6a1d-4c5e-9a43-1d2f3e4a5b6c";
  r.principal = "spiffe://coffer.local/app/catagram";
  r.action = "secretsmanager:GetSecretValue";
  r.resource = "arn:coffer:secretsmanager:local:000000000000:secret:demo/catagram/db-Ab3xQ9";
  r.code = "OK";
  r.peer = "ipv4:127.0.0.1:50312";
  add(audit::RecordBody(1, "store", r, hash));
  r.action = "secretsmanager:PutSecretValue";
  r.code = "PERMISSION_DENIED";
  r.detail = "AccessDeniedException";
  add(audit::RecordBody(2, "store", r, hash));
  Write(dir + "/audit_verify_fuzz/valid_log", log);
  // Rotated: the next file starts with a continue record (audit_verify_fuzz
  // reads the input "resealed" as a new file at each continue line).
  std::string next;
  std::string prev = hash;
  next += audit::SealLine(audit::ContinueBody(3, t + absl::Seconds(1), "store",
                                              audit::AuditFileName("store", 1), prev),
                          prev, &hash) +
          "\n";
  Write(dir + "/audit_verify_fuzz/rotated_log", log + next);

  WriteSigv4Seeds(dir);
  return 0;
}
