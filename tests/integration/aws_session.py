#!/usr/bin/python3
"""A scripted session against coffer-gateway with the real AWS CLI (Debian's
awscli 2.9) and boto3 (1.26), each answer checked field by field; then the
refusals, signed by botocore itself. Run by GatewayE2ETest:

  aws_session.py --endpoint https://127.0.0.1:PORT --ca ca.crt \
      --key AKID:SECRET --denied-key AKID:SECRET --disabled-key AKID:SECRET

--key belongs to an identity the policy allows everything, --denied-key to
one it allows nothing, --disabled-key was disabled before the run. Exits 0
when every check passed, else 1 after printing each failure.
"""
import argparse
import base64
import datetime
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions

parser = argparse.ArgumentParser()
parser.add_argument("--endpoint", required=True)
parser.add_argument("--ca", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--denied-key", required=True)
parser.add_argument("--disabled-key", required=True)
args = parser.parse_args()
AKID, SECRET = args.key.split(":", 1)
REGION = "local"
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def aws(*argv, key=(AKID, SECRET), expect_error=None):
    """Runs the AWS CLI; its JSON answer, or (for expect_error) its stderr."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key[0], AWS_SECRET_ACCESS_KEY=key[1],
               AWS_DEFAULT_REGION=REGION, AWS_PAGER="", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    cmd = ["/usr/bin/aws", "--endpoint-url", args.endpoint, "--ca-bundle", args.ca,
           "--output", "json", *argv]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    if expect_error is not None:
        check(out.returncode != 0 and expect_error in out.stderr,
              f"aws {' '.join(argv)}: expected {expect_error}, got rc={out.returncode} "
              f"{out.stderr.strip()[:300]}")
        return out.stderr
    check(out.returncode == 0, f"aws {' '.join(argv)}: rc={out.returncode} {out.stderr[:400]}")
    return json.loads(out.stdout) if out.stdout.strip() else {}


def is_uuid(s):
    return bool(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                             s or ""))


SECRET_ARN = re.compile(r"arn:coffer:secretsmanager:local:000000000000:secret:(.+)-[A-Za-z0-9]{6}")

# ---------------------------------------------------------------- Secrets Manager
created = aws("secretsmanager", "create-secret", "--name", "demo/aws/db", "--description",
              "the orders database", "--secret-string", '{"password":"s1"}', "--tags",
              "Key=team,Value=cats")
check(set(created) == {"ARN", "Name", "VersionId"}, f"create-secret members {sorted(created)}")
m = SECRET_ARN.fullmatch(created.get("ARN", ""))
check(m is not None and m.group(1) == "demo/aws/db", f"create-secret ARN {created.get('ARN')}")
check(created.get("Name") == "demo/aws/db", "create-secret Name")
check(is_uuid(created.get("VersionId")), "create-secret VersionId")
v1 = created.get("VersionId")
arn = created.get("ARN")

got = aws("secretsmanager", "get-secret-value", "--secret-id", "demo/aws/db")
check(got.get("SecretString") == '{"password":"s1"}', "get-secret-value SecretString")
check(got.get("VersionStages") == ["AWSCURRENT"], "get-secret-value VersionStages")
check(got.get("ARN") == arn and got.get("Name") == "demo/aws/db" and got.get("VersionId") == v1,
      "get-secret-value ARN/Name/VersionId")
check("CreatedDate" in got and "SecretBinary" not in got, "get-secret-value CreatedDate only")
by_arn = aws("secretsmanager", "get-secret-value", "--secret-id", arn)
check(by_arn.get("VersionId") == v1, "get-secret-value by ARN")

put = aws("secretsmanager", "put-secret-value", "--secret-id", "demo/aws/db", "--secret-string",
          '{"password":"s2"}')
v2 = put.get("VersionId")
check(is_uuid(v2) and v2 != v1, "put-secret-value VersionId")
check(put.get("VersionStages") == ["AWSCURRENT"] and put.get("ARN") == arn,
      "put-secret-value VersionStages/ARN")
aws("secretsmanager", "put-secret-value", "--secret-id", "demo/aws/missing", "--secret-string",
    "x", expect_error="ResourceNotFoundException")

described = aws("secretsmanager", "describe-secret", "--secret-id", "demo/aws/db")
check(described.get("VersionIdsToStages") == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]},
      f"describe-secret VersionIdsToStages {described.get('VersionIdsToStages')}")
check(described.get("Description") == "the orders database", "describe-secret Description")
check(described.get("Tags") == [{"Key": "team", "Value": "cats"}], "describe-secret Tags")
check(described.get("ARN") == arn and "CreatedDate" in described and
      "LastChangedDate" in described, "describe-secret ARN and dates")

# Staging labels.
aws("secretsmanager", "update-secret-version-stage", "--secret-id", "demo/aws/db",
    "--version-stage", "AWSCURRENT", "--move-to-version-id", v1, "--remove-from-version-id", v2)
stages = aws("secretsmanager", "describe-secret", "--secret-id", "demo/aws/db")[
    "VersionIdsToStages"]
check("AWSCURRENT" in stages.get(v1, []) and "AWSCURRENT" not in stages.get(v2, []),
      f"update-secret-version-stage moved AWSCURRENT: {stages}")
check(aws("secretsmanager", "get-secret-value", "--secret-id", "demo/aws/db")
      .get("SecretString") == '{"password":"s1"}', "AWSCURRENT reads the moved-to version")
check(aws("secretsmanager", "get-secret-value", "--secret-id", "demo/aws/db", "--version-id", v2)
      .get("SecretString") == '{"password":"s2"}', "get-secret-value --version-id")

# Tags.
aws("secretsmanager", "tag-resource", "--secret-id", "demo/aws/db", "--tags",
    "Key=env,Value=prod")
aws("secretsmanager", "untag-resource", "--secret-id", "demo/aws/db", "--tag-keys", "team")
tags = aws("secretsmanager", "describe-secret", "--secret-id", "demo/aws/db").get("Tags")
check(tags == [{"Key": "env", "Value": "prod"}], f"tag-resource / untag-resource: {tags}")

# Listing: filters and pagination (the CLI follows NextToken itself).
for i in range(3):
    aws("secretsmanager", "create-secret", "--name", f"demo/aws/page-{i}", "--secret-string",
        f"p{i}")
paged = aws("secretsmanager", "list-secrets", "--filters", "Key=name,Values=demo/aws/page-",
            "--page-size", "1")
names = sorted(s["Name"] for s in paged.get("SecretList", []))
check(names == ["demo/aws/page-0", "demo/aws/page-1", "demo/aws/page-2"],
      f"list-secrets filtered, one per page: {names}")
first = aws("secretsmanager", "list-secrets", "--filters", "Key=name,Values=demo/aws/page-",
            "--page-size", "1", "--max-items", "2")
check(len(first.get("SecretList", [])) == 2 and "NextToken" in first,
      f"list-secrets --max-items 2: {len(first.get('SecretList', []))} NextToken "
      f"{'NextToken' in first}")
rest = aws("secretsmanager", "list-secrets", "--filters", "Key=name,Values=demo/aws/page-",
           "--page-size", "1", "--starting-token", first.get("NextToken", ""))
check(len(rest.get("SecretList", [])) == 1, "list-secrets --starting-token: the rest")
entry = next((s for s in paged.get("SecretList", []) if s["Name"] == "demo/aws/page-0"), {})
check(SECRET_ARN.fullmatch(entry.get("ARN", "")) is not None and
      list(entry.get("SecretVersionsToStages", {}).values()) == [["AWSCURRENT"]],
      f"list-secrets entry {entry}")
tagged = aws("secretsmanager", "list-secrets", "--filters", "Key=tag-key,Values=env")
check([s["Name"] for s in tagged.get("SecretList", [])] == ["demo/aws/db"],
      "list-secrets tag-key filter")
versions = aws("secretsmanager", "list-secret-version-ids", "--secret-id", "demo/aws/db")
check(sorted(v["VersionId"] for v in versions.get("Versions", [])) == sorted([v1, v2]),
      "list-secret-version-ids")

# Delete with a recovery window, restore, and delete for good.
deleted = aws("secretsmanager", "delete-secret", "--secret-id", "demo/aws/page-2",
              "--recovery-window-in-days", "7")
check(deleted.get("Name") == "demo/aws/page-2" and "DeletionDate" in deleted,
      "delete-secret Name/DeletionDate")
days = (deleted.get("DeletionDate", "") or "")[:10]
check(days == (datetime.datetime.utcnow() + datetime.timedelta(days=7)).strftime("%Y-%m-%d"),
      f"delete-secret DeletionDate 7 days out: {deleted.get('DeletionDate')}")
aws("secretsmanager", "get-secret-value", "--secret-id", "demo/aws/page-2",
    expect_error="InvalidRequestException")
restored = aws("secretsmanager", "restore-secret", "--secret-id", "demo/aws/page-2")
check(restored.get("Name") == "demo/aws/page-2", "restore-secret Name")
check(aws("secretsmanager", "get-secret-value", "--secret-id", "demo/aws/page-2")
      .get("SecretString") == "p2", "readable after restore-secret")
aws("secretsmanager", "delete-secret", "--secret-id", "demo/aws/page-1",
    "--force-delete-without-recovery")
aws("secretsmanager", "describe-secret", "--secret-id", "demo/aws/page-1",
    expect_error="ResourceNotFoundException")

password = aws("secretsmanager", "get-random-password", "--password-length", "24",
               "--exclude-punctuation")
check(len(password.get("RandomPassword", "")) == 24 and
      password["RandomPassword"].isalnum(), "get-random-password")

# ---------------------------------------------------------------- SSM
for name, value, kind in (("/demo/aws/app/url", "https://cats", "String"),
                          ("/demo/aws/app/hosts", "a,b,c", "StringList"),
                          ("/demo/aws/app/db/password", "hunter2", "SecureString")):
    put = aws("ssm", "put-parameter", "--name", name, "--value", value, "--type", kind)
    check(put == {"Version": 1, "Tier": "Standard"}, f"put-parameter {name}: {put}")
    plain = aws("ssm", "get-parameter", "--name", name)["Parameter"]
    check(plain.get("Name") == name and plain.get("Type") == kind and
          plain.get("Version") == 1 and plain.get("DataType") == "text" and
          plain.get("ARN") == f"arn:coffer:ssm:local:000000000000:parameter{name}" and
          "LastModifiedDate" in plain, f"get-parameter {name}: {plain}")
    if kind == "SecureString":
        check(plain.get("Value") != value, "SecureString without decryption is not the value")
        clear = aws("ssm", "get-parameter", "--name", name, "--with-decryption")["Parameter"]
        check(clear.get("Value") == value, "SecureString --with-decryption")
    else:
        check(plain.get("Value") == value, f"get-parameter {name} Value")
aws("ssm", "put-parameter", "--name", "/demo/aws/app/url", "--value", "https://dogs",
    "--type", "String", expect_error="ParameterAlreadyExists")
over = aws("ssm", "put-parameter", "--name", "/demo/aws/app/url", "--value", "https://dogs",
           "--type", "String", "--overwrite")
check(over.get("Version") == 2, "put-parameter --overwrite: Version 2")

tree = aws("ssm", "get-parameters-by-path", "--path", "/demo/aws", "--recursive",
           "--with-decryption", "--page-size", "1")
check(sorted(p["Name"] for p in tree.get("Parameters", [])) ==
      ["/demo/aws/app/db/password", "/demo/aws/app/hosts", "/demo/aws/app/url"],
      f"get-parameters-by-path recursive, one per page: {tree}")
check({p["Name"]: p["Value"] for p in tree.get("Parameters", [])}.get(
    "/demo/aws/app/db/password") == "hunter2", "get-parameters-by-path decrypted")
level = aws("ssm", "get-parameters-by-path", "--path", "/demo/aws/app")
check(sorted(p["Name"] for p in level.get("Parameters", [])) ==
      ["/demo/aws/app/hosts", "/demo/aws/app/url"], "get-parameters-by-path one level")
several = aws("ssm", "get-parameters", "--names", "/demo/aws/app/url", "/demo/aws/nope")
check([p["Name"] for p in several.get("Parameters", [])] == ["/demo/aws/app/url"] and
      several.get("InvalidParameters") == ["/demo/aws/nope"], "get-parameters")

labeled = aws("ssm", "label-parameter-version", "--name", "/demo/aws/app/url",
              "--parameter-version", "1", "--labels", "stable")
check(labeled.get("ParameterVersion") == 1 and labeled.get("InvalidLabels") == [],
      f"label-parameter-version {labeled}")
check(aws("ssm", "get-parameter", "--name", "/demo/aws/app/url:stable")["Parameter"]
      .get("Value") == "https://cats", "get-parameter name:label")
history = aws("ssm", "get-parameter-history", "--name", "/demo/aws/app/url")
entries = history.get("Parameters", [])
check([(h.get("Version"), h.get("Value"), h.get("Labels", [])) for h in entries] ==
      [(1, "https://cats", ["stable"]), (2, "https://dogs", [])],
      f"get-parameter-history {entries}")
described = aws("ssm", "describe-parameters", "--parameter-filters",
                "Key=Name,Option=BeginsWith,Values=/demo/aws/app/h")
check([p["Name"] for p in described.get("Parameters", [])] == ["/demo/aws/app/hosts"] and
      described["Parameters"][0].get("Type") == "StringList", "describe-parameters")
aws("ssm", "add-tags-to-resource", "--resource-type", "Parameter", "--resource-id",
    "/demo/aws/app/url", "--tags", "Key=team,Value=cats")
ptags = aws("ssm", "list-tags-for-resource", "--resource-type", "Parameter", "--resource-id",
            "/demo/aws/app/url")
check(ptags.get("TagList") == [{"Key": "team", "Value": "cats"}], "parameter tags")
aws("ssm", "delete-parameter", "--name", "/demo/aws/app/hosts")
aws("ssm", "get-parameter", "--name", "/demo/aws/app/hosts", expect_error="ParameterNotFound")

# ---------------------------------------------------------------- KMS
key = aws("kms", "create-key", "--description", "for the AWS session")["KeyMetadata"]
key_id = key.get("KeyId")
check(is_uuid(key_id) and key.get("Arn") == f"arn:coffer:kms:local:000000000000:key/{key_id}" and
      key.get("KeyState") == "Enabled" and key.get("Enabled") is True and
      key.get("KeyUsage") == "ENCRYPT_DECRYPT" and key.get("KeySpec") == "SYMMETRIC_DEFAULT" and
      key.get("Description") == "for the AWS session", f"create-key {key}")
aws("kms", "create-alias", "--alias-name", "alias/aws-session", "--target-key-id", key_id)
aliases = aws("kms", "list-aliases")
check(any(a.get("AliasName") == "alias/aws-session" and a.get("TargetKeyId") == key_id
          for a in aliases.get("Aliases", [])), "list-aliases")
with open("/tmp/.coffer-aws-plain", "wb") as f:
    f.write(b"meow, in confidence")
encrypted = aws("kms", "encrypt", "--key-id", "alias/aws-session", "--plaintext",
                "fileb:///tmp/.coffer-aws-plain", "--encryption-context", "purpose=session")
os.unlink("/tmp/.coffer-aws-plain")
check(encrypted.get("KeyId") == key.get("Arn") and
      encrypted.get("EncryptionAlgorithm") == "SYMMETRIC_DEFAULT", f"encrypt {encrypted}")
blob = base64.b64decode(encrypted.get("CiphertextBlob", ""))
with open("/tmp/.coffer-aws-blob", "wb") as f:
    f.write(blob)
decrypted = aws("kms", "decrypt", "--ciphertext-blob", "fileb:///tmp/.coffer-aws-blob",
                "--encryption-context", "purpose=session")
check(base64.b64decode(decrypted.get("Plaintext", "")) == b"meow, in confidence" and
      decrypted.get("KeyId") == key.get("Arn"), "decrypt with the context")
aws("kms", "decrypt", "--ciphertext-blob", "fileb:///tmp/.coffer-aws-blob",
    "--encryption-context", "purpose=other", expect_error="InvalidCiphertextException")
os.unlink("/tmp/.coffer-aws-blob")
data_key = aws("kms", "generate-data-key", "--key-id", "alias/aws-session", "--key-spec",
               "AES_256")
plain_key = base64.b64decode(data_key.get("Plaintext", ""))
check(len(plain_key) == 32 and data_key.get("KeyId") == key.get("Arn"), "generate-data-key")
kms = boto3.client("kms", endpoint_url=args.endpoint, verify=args.ca, region_name=REGION,
                   aws_access_key_id=AKID, aws_secret_access_key=SECRET)
check(kms.decrypt(CiphertextBlob=base64.b64decode(data_key.get("CiphertextBlob", "")))
      ["Plaintext"] == plain_key, "boto3 decrypt of the data key")

# ---------------------------------------------------------------- boto3: the caching clients'
# refresh protocol — DescribeSecret's VersionIdsToStages, then GetSecretValue by VersionId.
sm = boto3.client("secretsmanager", endpoint_url=args.endpoint, verify=args.ca,
                  region_name=REGION, aws_access_key_id=AKID, aws_secret_access_key=SECRET)
sm.create_secret(Name="demo/aws/cached", SecretString="before")


def cached_read():
    stages = sm.describe_secret(SecretId="demo/aws/cached")["VersionIdsToStages"]
    current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
    return current, sm.get_secret_value(SecretId="demo/aws/cached",
                                        VersionId=current)["SecretString"]


old_version, old_value = cached_read()
check(old_value == "before", "caching protocol: first value")
sm.put_secret_value(SecretId="demo/aws/cached", SecretString="after")  # a rotation's result
new_version, new_value = cached_read()
check(new_version != old_version and new_value == "after", "caching protocol: rotated value")
try:
    sm.get_secret_value(SecretId="demo/aws/missing")
    check(False, "boto3: missing secret raised nothing")
except sm.exceptions.ResourceNotFoundException as e:
    check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400 and
          e.response["ResponseMetadata"]["RequestId"], "boto3 ResourceNotFoundException shape")


# ---------------------------------------------------------------- signed by hand with botocore
def signed_post(target, service, body, key=(AKID, SECRET), mutate=None, when=None):
    """POSTs `body` as botocore signs it; (status, headers, JSON)."""
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=args.endpoint + "/", data=body.encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(*key), service, REGION)
    if when is not None:
        real = botocore.auth.datetime.datetime

        class Then(real):
            @classmethod
            def utcnow(cls):
                return when
        botocore.auth.datetime.datetime = Then
        try:
            signer.add_auth(request)
        finally:
            botocore.auth.datetime.datetime = real
    else:
        signer.add_auth(request)
    prepared = request.prepare()
    data = prepared.body
    headers = dict(prepared.headers)
    if mutate is not None:
        data, headers = mutate(data, headers)
    return raw_post(headers, data)


def raw_post(headers, data):
    context = ssl.create_default_context(cafile=args.ca)
    req = urllib.request.Request(args.endpoint + "/", data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, context=context, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


# BatchGetSecretValue (newer than Debian's CLI and boto3), signed by botocore.
status, headers, batch = signed_post("secretsmanager.BatchGetSecretValue", "secretsmanager",
                                     json.dumps({"SecretIdList": ["demo/aws/db",
                                                                  "demo/aws/page-0"]}))
check(status == 200 and sorted(v["Name"] for v in batch.get("SecretValues", [])) ==
      ["demo/aws/db", "demo/aws/page-0"] and batch.get("Errors", []) == [],
      f"BatchGetSecretValue {status} {sorted(batch)}")


def refused(what, result, status, error_type):
    code, headers, body = result
    check(code == status and body.get("__type") == error_type and
          headers.get("x-amzn-RequestId"),
          f"{what}: {code} {body.get('__type')} (want {status} {error_type})")


body = json.dumps({"SecretId": "demo/aws/db"})
refused("no signature", raw_post({"Content-Type": "application/x-amz-json-1.1",
                                  "X-Amz-Target": "secretsmanager.GetSecretValue"},
                                 body.encode()),
        400, "MissingAuthenticationTokenException")
refused("a wrong secret", signed_post("secretsmanager.GetSecretValue", "secretsmanager", body,
                                      key=(AKID, "x" * 40)), 400, "InvalidSignatureException")
refused("another body", signed_post(
    "secretsmanager.GetSecretValue", "secretsmanager", body,
    mutate=lambda d, h: (json.dumps({"SecretId": "demo/aws/pg0"}).encode(),
                         {**h, "Content-Length": str(len(json.dumps({"SecretId": "demo/aws/pg0"})))})),
    400, "InvalidSignatureException")
refused("another target", signed_post(
    "secretsmanager.GetSecretValue", "secretsmanager", body,
    mutate=lambda d, h: (d, {**h, "X-Amz-Target": "secretsmanager.DeleteSecret"})),
    400, "InvalidSignatureException")
refused("scoped to another service", signed_post("secretsmanager.GetSecretValue", "kms", body),
        400, "InvalidSignatureException")
refused("an expired date", signed_post(
    "secretsmanager.GetSecretValue", "secretsmanager", body,
    when=datetime.datetime.utcnow() - datetime.timedelta(minutes=6)),
    400, "InvalidSignatureException")
refused("an unknown key", signed_post("secretsmanager.GetSecretValue", "secretsmanager", body,
                                      key=("AKCOUNKNOWNUNKNOWN22", SECRET)),
        400, "UnrecognizedClientException")
refused("a disabled key", signed_post("secretsmanager.GetSecretValue", "secretsmanager", body,
                                      key=tuple(args.disabled_key.split(":", 1))),
        400, "UnrecognizedClientException")
refused("an identity without permission",
        signed_post("secretsmanager.GetSecretValue", "secretsmanager", body,
                    key=tuple(args.denied_key.split(":", 1))),
        400, "AccessDeniedException")
refused("an unknown operation", signed_post("secretsmanager.ReplicateSecretToRegions",
                                            "secretsmanager", "{}"),
        400, "UnknownOperationException")
refused("not JSON", signed_post("secretsmanager.GetSecretValue", "secretsmanager", "{not json"),
        400, "SerializationException")
# The gateway's own limits, AWS-shaped: a body over --max_body_bytes (1 MiB)
# and more than --max_headers (64) headers.
refused("a 2 MiB body", signed_post("secretsmanager.PutSecretValue", "secretsmanager",
                                    json.dumps({"SecretId": "demo/aws/db",
                                                "SecretString": "x" * (2 << 20)})),
        413, "SerializationException")
refused("70 headers", signed_post(
    "secretsmanager.GetSecretValue", "secretsmanager", body,
    mutate=lambda d, h: (d, {**h, **{f"X-Extra-{i}": "v" for i in range(70)}})),
    431, "SerializationException")
err = aws("secretsmanager", "get-secret-value", "--secret-id", "demo/aws/db",
          key=tuple(args.denied_key.split(":", 1)), expect_error="AccessDeniedException")
check("GetSecretValue operation" in err, f"the CLI prints the refusal sensibly: {err.strip()}")

print(f"aws_session: {checks} checks, {len(failures)} failures")
sys.exit(1 if failures else 0)
