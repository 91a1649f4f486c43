// make_seeds: writes the seeds that only the library can make — a real KMS
// ciphertext (under ciphertext_fuzz's fixed key and context) and a valid
// audit log — into <corpus dir>/<target>/. Run once; the files are checked
// in:
//
//   ninja -C build-fuzz make_seeds && build-fuzz/make_seeds fuzz/corpus
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/time/time.h"
#include "libs/audit/audit_log.h"
#include "libs/audit/record_format.h"
#include "libs/crypto/secure_buffer.h"
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
  return 0;
}
