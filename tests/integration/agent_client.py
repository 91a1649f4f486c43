#!/usr/bin/env python3
"""coffer-agent seen by a client of AWS's Secrets Manager Agent: Python's
urllib against every route and every refusal, answers compared byte for
byte with GetSecretValue's AWS JSON built from what cofferctl reads.

Run by agent_e2e_test.cc:
  agent_client.py URL TOKEN COFFERCTL
with COFFER_CA/COFFER_CERT/COFFER_KEY/COFFER_ADDRESS set for cofferctl (the
administrator, to write), and the secrets demo/catagram/db (string),
demo/catagram/blob (binary), parameters /demo/catagram/port (String) and
/demo/catagram/password (SecureString, "s3cret") made beforehand.
Exits 0 when every check passed, 1 after printing what failed.
"""
import base64
import concurrent.futures
import datetime
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

URL, TOKEN, COFFERCTL = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def get(path, headers=None, method="GET", data=None, token=True):
    h = dict(headers or {})
    if token and "X-Aws-Parameters-Secrets-Token" not in h:
        h["X-Aws-Parameters-Secrets-Token"] = TOKEN
    req = urllib.request.Request(URL + path, headers=h, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cofferctl(*args, stdin=None):
    out = subprocess.run([COFFERCTL, *args, "--output=json"], input=stdin, capture_output=True,
                         check=True)
    return json.loads(out.stdout)


def aws_json(v):
    """GetSecretValue's AWS JSON as AWS's agent writes it, from cofferctl's answer."""
    created = datetime.datetime.fromisoformat(v["created_date"][:26].rstrip("Z") + "+00:00")
    millis = int(v["created_date"][20:23].ljust(3, "0")) if "." in v["created_date"] else 0
    doc = {"ARN": v["arn"], "Name": v["name"], "VersionId": v["version_id"]}
    if "secret_string" in v:
        doc["SecretString"] = v["secret_string"]
    if "secret_binary" in v:
        doc["SecretBinary"] = v["secret_binary"]  # cofferctl prints bytes as base64 too
    doc["VersionStages"] = v["version_stages"]
    doc["CreatedDate"] = "%d.%03d" % (int(created.timestamp()), millis)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def gsv(secret_id, *extra):
    return cofferctl("secrets", "get-secret-value", "--secret-id", secret_id, *extra)


# -- health: no token needed
status, body = get("/ping", token=False)
check((status, body) == (200, b"healthy"), f"/ping -> {status} {body!r}")

# -- refusals, in AWS's agent's order
ok_path = "/secretsmanager/get?secretId=demo/catagram/db"
status, body = get(ok_path, token=False)
check((status, body) == (403, b"Bad Token"), f"no token -> {status} {body!r}")
status, body = get(ok_path, {"X-Aws-Parameters-Secrets-Token": TOKEN + "x"})
check((status, body) == (403, b"Bad Token"), f"wrong token -> {status} {body!r}")
status, body = get(ok_path, {"X-Aws-Parameters-Secrets-Token": TOKEN[:-1]})
check(status == 403, f"token prefix -> {status}")
status, body = get(ok_path, {"X-Vault-Token": TOKEN}, token=False)
check(status == 200, f"X-Vault-Token -> {status} {body!r}")
status, body = get(ok_path, {"X-Forwarded-For": "10.0.0.1"})
check((status, body) == (400, b"Forwarded"), f"X-Forwarded-For -> {status} {body!r}")
status, body = get(ok_path, method="POST", data=b"")
check((status, body) == (405, b"Not allowed"), f"POST -> {status} {body!r}")
status, body = get(ok_path, method="DELETE")
check(status == 405, f"DELETE -> {status}")
status, body = get("/secretsmanager/put?secretId=x")
check((status, body) == (404, b"Not found"), f"unknown path -> {status} {body!r}")
status, body = get("/")
check(status == 404, f"/ -> {status}")
status, body = get("/secretsmanager/get")
check((status, body) == (400, b"missing parameter secretId"), f"no secretId -> {status} {body!r}")
status, body = get(ok_path + "&foo=1")
check((status, body) == (400, b"unknown parameter: foo"), f"unknown parameter -> {status} {body!r}")
status, body = get(ok_path + "&refreshNow=maybe")
check((status, body) == (400, b"invalid refreshNow value"), f"refreshNow -> {status} {body!r}")
status, body = get(ok_path + "&secretId=other")
check(status == 400, f"repeated secretId -> {status}")
status, body = get(ok_path, {"X-Padding": "p" * 20000})
check(status in (400, 413, 431), f"20 KB of headers -> {status}")
status, body = get(ok_path, method="GET", data=b"x" * 100)
check(status == 413, f"GET with a body -> {status}")
status, _ = get("/ping", token=False)
check(status == 200, "still healthy after the refusals")

# -- GetSecretValue, byte for byte
status, body = get(ok_path)
check(status == 200, f"get -> {status} {body!r}")
expected = aws_json(gsv("demo/catagram/db"))
check(body == expected, f"get body\n  got      {body!r}\n  expected {expected!r}")
check(list(json.loads(body)) == ["ARN", "Name", "VersionId", "SecretString", "VersionStages",
                                  "CreatedDate"], f"member order {list(json.loads(body))}")
check(re.fullmatch(r"\d{10}\.\d{3}", json.loads(body)["CreatedDate"]) is not None,
      "CreatedDate is epoch seconds with millis")
status, body = get("/v1/demo/catagram/db")
check((status, body) == (200, expected), f"path style -> {status} {body!r}")

status, body = get("/secretsmanager/get?secretId=demo/catagram/blob")
blob = gsv("demo/catagram/blob")
check(status == 200 and body == aws_json(blob), f"binary -> {status} {body!r}")
check(base64.b64decode(json.loads(body)["SecretBinary"]) == b"\x00\x01\xfe\xff",
      "SecretBinary is the bytes, base64")

# -- a new version: pushed to the agent's cache at once
before = json.loads(get(ok_path)[1])
cofferctl("secrets", "put-secret-value", "--secret-id", "demo/catagram/db", "--secret-string", "-",
          stdin=b"rotated-pw")
deadline = time.time() + 2
while time.time() < deadline and json.loads(get(ok_path)[1])["SecretString"] != "rotated-pw":
    time.sleep(0.02)
now = json.loads(get(ok_path)[1])
check(now["SecretString"] == "rotated-pw", f"push invalidation within 2 s: {now}")
check(get(ok_path)[1] == aws_json(gsv("demo/catagram/db")), "the new version byte for byte")
status, body = get(ok_path + "&versionStage=AWSPREVIOUS")
check(status == 200 and json.loads(body)["VersionId"] == before["VersionId"]
      and json.loads(body)["VersionStages"] == ["AWSPREVIOUS"], f"AWSPREVIOUS -> {body!r}")
status, body = get(ok_path + "&versionId=" + before["VersionId"])
check(status == 200 and json.loads(body)["SecretString"] == before["SecretString"],
      f"by versionId -> {status} {body!r}")
status, body = get(ok_path + "&versionId=" + before["VersionId"] + "&versionStage=AWSCURRENT")
check(status == 400, f"versionId with a stage it lacks -> {status} {body!r}")
status, body = get(ok_path + "&refreshNow=true")
check(status == 200 and json.loads(body)["SecretString"] == "rotated-pw", f"refreshNow -> {body!r}")

# -- errors: AWS's shapes
status, body = get("/secretsmanager/get?secretId=demo/catagram/missing")
doc = json.loads(body)
check(status == 400 and doc.get("__type") == "ResourceNotFoundException" and "message" in doc,
      f"missing secret -> {status} {body!r}")
status, body = get("/secretsmanager/get?secretId=demo/other/db")
check(status == 400 and json.loads(body).get("__type") == "AccessDeniedException",
      f"another app's secret -> {status} {body!r}")

# -- parameters
status, body = get("/systemsmanager/parameters/get?name=/demo/catagram/port")
p = json.loads(body).get("Parameter", {}) if status == 200 else {}
check(status == 200 and p.get("Value") == "5432" and p.get("Type") == "String"
      and p.get("Name") == "/demo/catagram/port" and p.get("Version") == 1
      and p.get("ARN", "").endswith("parameter/demo/catagram/port"), f"parameter -> {body!r}")
status, body = get("/systemsmanager/parameters/get?name=/demo/catagram/password&withDecryption=true")
check(status == 200 and json.loads(body)["Parameter"]["Value"] == "s3cret"
      and json.loads(body)["Parameter"]["Type"] == "SecureString", f"SecureString -> {body!r}")
status, body = get("/systemsmanager/parameters/get?name=/demo/catagram/password")
check(status == 200 and json.loads(body)["Parameter"]["Value"] != "s3cret",
      f"SecureString without decryption -> {body!r}")
status, body = get("/systemsmanager/parameters/get?name=/demo/catagram/none")
check(status == 400 and json.loads(body).get("__type") == "ParameterNotFound",
      f"missing parameter -> {status} {body!r}")
status, body = get("/systemsmanager/parameters/get")
check(status == 400, f"no name -> {status}")

# -- many at once
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    codes = list(pool.map(lambda _: get(ok_path)[0], range(200)))
check(codes.count(200) == 200, f"200 concurrent reads: {sorted(set(codes))}")

print(f"agent_client: {len(failures)} failures")
sys.exit(1 if failures else 0)
