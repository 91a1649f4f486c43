// aws_json.h: the AWS JSON 1.1 wire format of Secrets Manager, SSM Parameter
// Store and KMS, translated to and from Coffer's gRPC messages: the core of
// coffer-gateway, so that the AWS CLI, the SDKs and External Secrets
// Operator use Coffer unchanged. SigV4 (libs/sigv4) and the HTTP server are
// not here; this library needs neither.
//
//   const AwsOperation* op = FindAwsOperation(x_amz_target);
//   if (op == nullptr) return Reply(AwsErrorFromStatus(nullptr, unknown_operation));
//   // op->signing_service is the SigV4 scope's service the signature must name.
//   absl::StatusOr<std::unique_ptr<google::protobuf::Message>> request =
//       RequestFromAwsJson(*op, body);
//   if (!request.ok()) return Reply(AwsErrorFromStatus(op, request.status()));
//   ... call op->method with **request, get `response` (or an error status) ...
//   absl::StatusOr<std::string> json = ResponseToAwsJson(*op, *response);
//   ... send *json (200), or AwsErrorBody(AwsErrorFromStatus(op, status)) with
//       its http_status; then WipeMessage on both messages and wipe `body`
//       and `*json` (rpc::WipeString): they may hold secrets ...
//
// The translation is generic: protobuf reflection over the method's request
// and response messages, plus the small per-service tables below. Every
// table is checked against botocore's models by
// tests/services/gateway/aws_model_test.py (gateway_aws_model_check).
//
// Operations: every unary RPC of coffer.secrets.v1.SecretsManager
// ("secretsmanager.<Rpc>", signed for "secretsmanager"),
// coffer.params.v1.ParameterStore ("AmazonSSM.<Rpc>", "ssm") and
// coffer.kms.v1.KeyManagement ("TrentService.<Rpc>", "kms"); Coffer's RPC
// names are AWS's operation names. Coffer RPCs without an AWS counterpart,
// not operations: WatchSecrets, WatchParameters (server streams). AWS
// operations Coffer lacks (replication, grants, key policies, imported and
// asymmetric keys, the rest of SSM) have no AwsOperation: FindAwsOperation
// returns nullptr and the gateway answers UnknownOperationException.
//
// Members: the PascalCase of the proto field name (secret_id -> SecretId,
// version_ids_to_stages -> VersionIdsToStages, ciphertext_blob ->
// CiphertextBlob, key_arn -> KeyArn), except:
//   arn (Secrets Manager, SSM)       -> ARN (KMS keeps the rule's Arn)
//   rotation_worker                  -> RotationLambdaARN (RotateSecret,
//                                       DescribeSecret, ListSecrets); it holds
//                                       a Coffer worker name, not a Lambda ARN
// Response fields Coffer has and AWS does not are not sent:
//   DescribeSecret deletion_date, rotation_state; KMS KeyMetadata
//   current_key_material_version, RotateKeyOnDemand and ListKeyRotations
//   key_material_version, ReEncrypt source_/destination_key_material_version.
// Response members AWS has that are derived rather than stored (KMS
// KeyMetadata): AWSAccountId (the account in Arn), CustomerMasterKeySpec
// (= KeySpec, its deprecated name), Origin "AWS_KMS", MultiRegion false.
//
// Values:
//   string            <-> JSON string (UTF-8 checked)
//   bytes             <-> base64 string (standard alphabet, padded; strict)
//   bool, integers    <-> JSON true/false, JSON integer (fractions and
//                         out-of-range values refused)
//   Timestamp         <-> epoch seconds (fractions accepted; sent with the
//                         milliseconds, 1700000000.123, as AWS does)
//   enum              <-> AWS's string: the value name without the enum's
//                         prefix, as AWS spells it — SortOrder lower case
//                         ("asc"), ParameterType, ParameterTier and KeyState
//                         PascalCase ("SecureString", "PendingDeletion"),
//                         KeyUsage, KeySpec, KeyManager, DataKeySpec and
//                         RotationType as they are ("ENCRYPT_DECRYPT",
//                         "AES_256"), and KEY_MANAGER_COFFER -> "AWS" (AWS's
//                         name for keys the service owns). *_UNSPECIFIED is
//                         never sent and never accepted.
//   map               <-> JSON object (keys sorted on output);
//                         map<string, VersionStages> <-> {"id": ["AWSCURRENT"]}
//   repeated, message <-> JSON array, JSON object
// Presence on output: AWS omits absent members, so unset messages, empty
// strings, empty lists and maps, zeros, false and *_UNSPECIFIED are left out
// — except proto3 `optional` fields, sent whenever set, and the members AWS
// always sends: the list a List*, GetParameters*, DescribeParameters,
// GetParameterHistory, DeleteParameters, (Un)LabelParameterVersion and
// BatchGetSecretValue call returns (even empty), both members of a tag
// (even an empty value), KMS Truncated, KeyMetadata KeyId, Enabled and
// Description, KeyRotationEnabled, PolicyValidationPassed and
// ValidationErrors.
// On input a JSON null is an absent member.
//
// AWS request members Coffer lacks:
//   ForceOverwriteReplicaSecret  CreateSecret        ignored (only means
//                                                     something with replicas)
//   AddReplicaRegions            CreateSecret        only [] (no replication)
//   Filters                      DescribeParameters  only [] (the legacy form;
//                                                     use ParameterFilters)
//   GrantTokens                  DescribeKey, Encrypt, Decrypt, ReEncrypt,
//                                GenerateDataKey*    ignored (no grants: a
//                                                     token could only add
//                                                     permissions, so ignoring
//                                                     one never widens access)
//   EncryptionAlgorithm          Encrypt, Decrypt    only SYMMETRIC_DEFAULT
//   Source/DestinationEncryptionAlgorithm ReEncrypt  only SYMMETRIC_DEFAULT
//   CustomerMasterKeySpec        CreateKey           KeySpec's old name; not
//                                                     both
//   Origin                       CreateKey           only AWS_KMS
//   Policy                       CreateKey           only "" (key policies
//                                                     come from the policy
//                                                     file)
//   BypassPolicyLockoutSafetyCheck CreateKey         ignored (no per-key
//                                                     policy to lock out)
//   CustomKeyStoreId             CreateKey, GenerateRandom  only ""
//   MultiRegion                  CreateKey           only false
//   XksKeyId                     CreateKey           only ""
// Every other member AWS defines maps to a Coffer field (WithDecryption ->
// with_decryption, ClientRequestToken -> client_request_token: the new
// version's id, as in AWS); an unknown member is refused.
//
// Request errors (INVALID_ARGUMENT, the AWS type as the Coffer reason, the
// message naming the member, never echoing a value):
//   SerializationException  not JSON, not an object, a member of the wrong
//                           JSON type ("SecretId: expected a string, got
//                           number"), a non-integer integer, bad base64,
//                           invalid UTF-8, a member given twice, a body over
//                           kMaxRequestBytes, nested deeper than
//                           kMaxRequestDepth or with more than
//                           kMaxRequestValues values
//   the service's validation type (Secrets Manager InvalidParameterException,
//   SSM and KMS ValidationException): an unknown member, an unknown enum
//   string (the message lists the allowed ones), an integer out of range, an
//   unsupported value of a member Coffer lacks (table above)
//
// Errors from Coffer: AwsErrorFromStatus keeps a reason the service's
// clients know (its model's exception names, plus AccessDeniedException,
// ThrottlingException, SerializationException, UnknownOperationException
// and SigV4's four), else names one by gRPC code in that service's
// vocabulary:
//   code                 secretsmanager             AmazonSSM            TrentService
//   INVALID_ARGUMENT,    InvalidParameterException  ValidationException  ValidationException
//    OUT_OF_RANGE
//   NOT_FOUND            ResourceNotFoundException  ParameterNotFound    NotFoundException
//   ALREADY_EXISTS       ResourceExistsException    ParameterAlreadyExists AlreadyExistsException
//   FAILED_PRECONDITION  InvalidRequestException    ValidationException  KMSInvalidStateException
//   RESOURCE_EXHAUSTED   LimitExceededException     ThrottlingException  LimitExceededException
//   ABORTED              ThrottlingException        TooManyUpdates       ThrottlingException
//   PERMISSION_DENIED    AccessDeniedException (all)
//   UNAUTHENTICATED      UnrecognizedClientException (all)
//   UNIMPLEMENTED        UnknownOperationException (all)
//   UNAVAILABLE          ServiceUnavailable, HTTP 503 (all)
//   DEADLINE_EXCEEDED    RequestTimeoutException 504, KMS DependencyTimeoutException 503
//   anything else        InternalServiceError       InternalServerError  KMSInternalException (500)
// HTTP status: 503 for UNAVAILABLE whatever the reason (botocore retries
// it: the KMS behind a secret is down, the audit log is full), 500 for the
// models' server faults (InternalServiceError, InternalServerError,
// KMSInternalException, KeyUnavailableException, InternalFailure), 503 for
// DependencyTimeoutException and ServiceUnavailable, 504 for
// RequestTimeoutException, 400 for everything else — AWS's JSON services
// answer AccessDeniedException, ThrottlingException and SigV4 failures with
// 400 too. A message starting "<proto field>:" is rewritten to the member
// name ("secret_id: ..." -> "SecretId: ...").
//
// Secrets: GetSecretValue, BatchGetSecretValue, GetParameter*, Decrypt,
// GenerateDataKey and GenerateRandom responses, and PutSecretValue,
// CreateSecret, UpdateSecret, PutParameter and Encrypt requests, carry
// secret values. Nothing here logs; the response JSON is written into one
// buffer sized beforehand (no reallocation copies), request strings are
// moved into the message rather than copied, and the parsed JSON tree is
// wiped before it is freed. The caller wipes the request body, the response
// JSON and both messages (WipeMessage). libs/common's JSON reader grows each
// decoded string as it reads it, which can leave freed fragments of a
// request's value on the heap; it is the reader all of Coffer uses.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace coffer::gateway {

enum class Backend { kSecrets, kParams, kKms };

struct AwsOperation {
  std::string target;           // "secretsmanager.GetSecretValue"
  std::string signing_service;  // SigV4 scope service: "secretsmanager" | "ssm" | "kms"
  Backend backend;
  const google::protobuf::MethodDescriptor* method;  // the Coffer gRPC method it maps to
};

// Bounds on a request body (AWS's own shapes nest at most four deep and
// hold a few hundred values; a 64 KiB secret escaped as \uXXXX is 384 KiB).
inline constexpr size_t kMaxRequestBytes = 1 << 20;
inline constexpr int kMaxRequestDepth = 16;
inline constexpr size_t kMaxRequestValues = 20000;

// The operation of an X-Amz-Target header ("AmazonSSM.GetParameter"), or
// nullptr for an unknown one. Exact match, as AWS.
const AwsOperation* FindAwsOperation(absl::string_view target);

// Every operation, grouped by service in the services' RPC order.
const std::vector<AwsOperation>& AllAwsOperations();

// An AWS JSON 1.1 request body ("" or "{}": empty input) -> a new message of
// the method's request type. Errors: see "Request errors" above.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> RequestFromAwsJson(
    const AwsOperation& op, absl::string_view body);

// The method's response message -> the AWS JSON 1.1 response body.
// INVALID_ARGUMENT when `response` is not of the method's response type.
absl::StatusOr<std::string> ResponseToAwsJson(const AwsOperation& op,
                                              const google::protobuf::Message& response);

struct AwsError {
  int http_status;
  std::string type;  // the "__type": ResourceNotFoundException, ParameterNotFound...
  std::string message;
};

// A Coffer error (absl::Status with a reason) -> the AWS error as this
// service's clients expect it. `op` may be null for errors before the
// operation is known (then only the service-independent names are used).
AwsError AwsErrorFromStatus(const AwsOperation* op, const absl::Status& status);

// {"__type":"<type>","message":"<message>"} (botocore reads __type and
// message/Message).
std::string AwsErrorBody(const AwsError& error);

// Overwrites every string and bytes field of `message`, recursively, in
// place (the values die with the message right after). Map fields are left
// alone: the only maps are encryption contexts and version-to-stage lists,
// which are not secret.
void WipeMessage(google::protobuf::Message* message);

}  // namespace coffer::gateway
