#!/usr/bin/env python3
"""docker-compose.yml and deploy/docker/Dockerfile checked for what the
operations guide promises: `docker-compose config` accepts the file; every
Coffer service has a healthcheck through coffer-health-probe on its own
health-only port; nothing is published beyond 127.0.0.1; the data
directories are named volumes; containers run read-only, without new
privileges, as the image's non-root user; Prometheus scrapes every service's
metrics port; the image is multi-stage on bookworm and its runtime stage has
no build tools. Run by CTest (compose_check): `compose_test.py REPO_ROOT`.
"""
import json
import os
import re
import subprocess
import sys

import yaml

root = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


out = subprocess.run(["docker-compose", "-f", os.path.join(root, "docker-compose.yml"), "config"],
                     capture_output=True, text=True, cwd=root)
check(out.returncode == 0, f"docker-compose config: {out.stderr}")
doc = yaml.safe_load(out.stdout) if out.returncode == 0 else {"services": {}, "volumes": {}}
services = doc["services"]

expected = {"certs", "kms", "store", "rotator", "worker-postgres", "worker-postgres-alt",
            "gateway", "postgres", "setup", "agent", "catagram", "catagram-py", "prometheus"}
check(expected <= set(services), f"services: missing {sorted(expected - set(services))}")


def flag(command, name):
    for arg in command or []:
        if isinstance(arg, str) and arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


long_running = ["kms", "store", "rotator", "worker-postgres", "worker-postgres-alt", "gateway"]
metrics = {}
for name in long_running:
    s = services.get(name, {})
    cmd = s.get("command", [])
    health = flag(cmd, "health_listen_address")
    check(health is not None, f"{name}: no --health_listen_address")
    test = (s.get("healthcheck") or {}).get("test", [])
    check(len(test) >= 3 and test[1] == "coffer-health-probe",
          f"{name}: healthcheck is not coffer-health-probe: {test}")
    if health and len(test) >= 3:
        check(test[2].split(":")[1] == health.split(":")[1],
              f"{name}: healthcheck asks {test[2]}, the health port is {health}")
    m = flag(cmd, "metrics_address")
    check(m is not None, f"{name}: no --metrics_address")
    if m:
        metrics[name] = m.split(":")[1]
check("pg_isready" in json.dumps(services.get("postgres", {}).get("healthcheck", {})),
      "postgres: no pg_isready healthcheck")

for name, s in services.items():
    for p in s.get("ports", []):
        host_ip = p.get("host_ip") if isinstance(p, dict) else str(p).split(":")[0]
        check(host_ip == "127.0.0.1", f"{name}: port {p} is published beyond 127.0.0.1")
    check(not s.get("privileged"), f"{name}: privileged")
    check(s.get("user") in (None, "", "coffer"), f"{name}: runs as {s.get('user')}")
    if s.get("image", "").startswith("coffer"):
        check(s.get("read_only") is True or name == "certs", f"{name}: root filesystem writable")
        check("no-new-privileges:true" in (s.get("security_opt") or []),
              f"{name}: no no-new-privileges")

for name, path in [("kms", "/var/lib/coffer"), ("store", "/var/lib/coffer")]:
    vols = services.get(name, {}).get("volumes", [])
    sources = []
    for v in vols:  # long syntax (dicts) or short ("source:target[:mode]")
        if isinstance(v, dict):
            if v.get("target") == path:
                sources.append(v.get("source"))
        elif str(v).split(":")[1] == path:
            sources.append(str(v).split(":")[0])
    check(sources and sources[0] in doc.get("volumes", {}),
          f"{name}: {path} is not a named volume: {vols}")

# coffer-agent serves its pod only.
check(flag(services.get("agent", {}).get("command"), "http_address") == "127.0.0.1:2773",
      "agent: not on 127.0.0.1:2773")
for name in ("catagram", "catagram-py"):
    check(services.get(name, {}).get("network_mode") == "service:agent",
          f"{name}: not in the agent's network namespace")

# Prometheus scrapes each service's metrics port under its compose name.
targets_dir = os.path.join(root, "deploy/prometheus/compose-targets")
scraped = set()
for f in os.listdir(targets_dir):
    for group in json.load(open(os.path.join(targets_dir, f))):
        scraped.update(group["targets"])
for name, port in metrics.items():
    check(f"{name}:{port}" in scraped, f"prometheus does not scrape {name}:{port}")

# The image.
dockerfile = open(os.path.join(root, "deploy/docker/Dockerfile")).read()
stages = re.findall(r"^FROM (\S+) AS (\S+)", dockerfile, re.M)
check(all(image == "debian:bookworm" for image, _ in stages) and len(stages) >= 2,
      f"stages: {stages}")
check(stages and stages[-1][1] == "runtime", "the last stage (the default) is not the runtime")
runtime = dockerfile.split("AS runtime", 1)[-1]
check(re.search(r"-dev\b|build-essential|cmake", runtime) is None,
      "the runtime stage installs build tools or -dev packages")
check(re.search(r"^USER coffer$", runtime, re.M) is not None, "the runtime stage is not non-root")
for binary in ("coffer-health-probe", "coffer-agent", "catagram", "coffer-gateway"):
    check(binary in dockerfile, f"the image lacks {binary}")

print(f"compose_test: {len(failures)} failures")
sys.exit(1 if failures else 0)
