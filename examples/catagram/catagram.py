#!/usr/bin/env python3
"""Catagram in Python: the same tiny app as catagram.cc, reading its
PostgreSQL credential through coffer-agent over HTTP (the AWS Secrets
Manager Agent's contract: code written for AWS's agent works unchanged).

  AWS_TOKEN=... python3 examples/catagram/catagram.py --port 8081 \
      --agent http://localhost:2773 --secret-id demo/catagram/db
  curl localhost:8081/cats          {"cats": 3, "user": "catagram"}

When a login fails after a rotation it asks the agent with refreshNow=true
and reconnects, within a retry budget (--login-attempts). Needs Debian's
python3-psycopg2.
"""
import argparse
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--port", type=int, default=8081)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--agent", default="http://localhost:2773")
parser.add_argument("--secret-id", default="demo/catagram/db")
parser.add_argument("--login-attempts", type=int, default=8)
parser.add_argument("--login-backoff", type=float, default=0.25)
parser.add_argument("--query", default="SELECT count(*) FROM cats")
args = parser.parse_args()
TOKEN = os.environ["AWS_TOKEN"]

stats = {"requests": 0, "failed": 0, "login_failures": 0, "refreshes": 0}
stats_lock = threading.Lock()


def count(key):
    with stats_lock:
        stats[key] += 1


def credential(refresh=False):
    query = {"secretId": args.secret_id}
    if refresh:
        query["refreshNow"] = "true"
    req = urllib.request.Request(
        args.agent + "/secretsmanager/get?" + urllib.parse.urlencode(query),
        headers={"X-Aws-Parameters-Secrets-Token": TOKEN})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(json.loads(r.read())["SecretString"])


def cats():
    backoff = args.login_backoff
    refresh = False
    for _ in range(args.login_attempts):
        c = credential(refresh)
        try:
            conn = psycopg2.connect(host=c["host"], port=c.get("port", 5432),
                                    dbname=c.get("dbname", "postgres"), user=c["username"],
                                    password=c["password"], sslmode=c.get("sslmode", "prefer"),
                                    connect_timeout=5)
        except psycopg2.OperationalError as e:
            if "password authentication failed" not in str(e) and "does not exist" not in str(e):
                raise
            # Rotated under us: ask for the secret afresh, then retry a little later.
            count("login_failures")
            count("refreshes")
            refresh = True
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
            continue
        try:
            with conn.cursor() as cur:
                cur.execute(args.query)
                return {"cats": cur.fetchone()[0], "user": c["username"]}
        finally:
            conn.close()
    raise RuntimeError("cannot log in to the database")


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, "ok\n", "text/plain")
        if self.path == "/stats":
            with stats_lock:
                return self.reply(200, json.dumps(stats) + "\n")
        if self.path != "/cats":
            return self.reply(404, "not found\n", "text/plain")
        count("requests")
        try:
            return self.reply(200, json.dumps(cats()) + "\n")
        except Exception as e:  # noqa: BLE001 - any failure is a failed request
            count("failed")
            return self.reply(503, f"{type(e).__name__}\n", "text/plain")

    def log_message(self, fmt, *a):  # quiet: the test counts, it does not read logs
        pass


server = ThreadingHTTPServer((args.host, args.port), Handler)
print(f"catagram.py serving on {server.server_address[1]}", flush=True)
server.serve_forever()
