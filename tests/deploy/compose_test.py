#!/usr/bin/env python3
"""docker-compose.yml and deploy/docker/Dockerfile checked for what the
operations guide promises: `docker-compose config` accepts the file; every
Coffer service has a healthcheck through coffer-health-probe on its own
health-only port; nothing is published beyond 127.0.0.1; the data
directories are named volumes; containers run read-only, without new
privileges, as the image's non-root user; Prometheus scrapes every service's
metrics port; the image is multi-stage on bookworm and its runtime stage has
no build tools. The same for docker-compose.yml with docker-compose.ha.yml
over it, and there: kms, kms-2, store and store-2 on every member of the
3-member etcd (client certificates required, etcd's certificate naming
every member), with their etcd files on a mounted volume, both KMS
replicas unsealing with one root key in a volume only they (and the
one-shot container making it) mount, no --dev_mode.
Run by CTest (compose_check): `compose_test.py REPO_ROOT`.
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


def flag(command, name):
    for arg in command or []:
        if isinstance(arg, str) and arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def check_stack(files, tag, expected, long_running, data_services, targets_dir):
    """`docker-compose -f ... config` on `files`; the promises every stack
    keeps. Returns the merged configuration."""
    command = ["docker-compose"]
    for f in files:
        command += ["-f", os.path.join(root, f)]
    out = subprocess.run(command + ["config"], capture_output=True, text=True, cwd=root)
    check(out.returncode == 0, f"{tag}docker-compose config: {out.stderr}")
    doc = yaml.safe_load(out.stdout) if out.returncode == 0 else {"services": {}, "volumes": {}}
    services = doc["services"]

    check(expected <= set(services), f"{tag}services: missing {sorted(expected - set(services))}")

    metrics = {}
    for name in long_running:
        s = services.get(name, {})
        cmd = s.get("command", [])
        health = flag(cmd, "health_listen_address")
        check(health is not None, f"{tag}{name}: no --health_listen_address")
        test = (s.get("healthcheck") or {}).get("test", [])
        check(len(test) >= 3 and test[1] == "coffer-health-probe",
              f"{tag}{name}: healthcheck is not coffer-health-probe: {test}")
        if health and len(test) >= 3:
            check(test[2].split(":")[1] == health.split(":")[1],
                  f"{tag}{name}: healthcheck asks {test[2]}, the health port is {health}")
        m = flag(cmd, "metrics_address")
        check(m is not None, f"{tag}{name}: no --metrics_address")
        if m:
            metrics[name] = m.split(":")[1]
    check("pg_isready" in json.dumps(services.get("postgres", {}).get("healthcheck", {})),
          f"{tag}postgres: no pg_isready healthcheck")

    for name, s in services.items():
        for p in s.get("ports", []):
            host_ip = p.get("host_ip") if isinstance(p, dict) else str(p).split(":")[0]
            check(host_ip == "127.0.0.1", f"{tag}{name}: port {p} is published beyond 127.0.0.1")
        check(not s.get("privileged"), f"{tag}{name}: privileged")
        check(s.get("user") in (None, "", "coffer"), f"{tag}{name}: runs as {s.get('user')}")
        if s.get("image", "").startswith("coffer"):
            check(s.get("read_only") is True or name == "certs",
                  f"{tag}{name}: root filesystem writable")
            check("no-new-privileges:true" in (s.get("security_opt") or []),
                  f"{tag}{name}: no no-new-privileges")

    for name in data_services:
        path = "/var/lib/coffer"
        check(volume_source(services.get(name, {}), path) in doc.get("volumes", {}),
              f"{tag}{name}: {path} is not a named volume: {services.get(name, {}).get('volumes')}")

    # coffer-agent serves its pod only.
    check(flag(services.get("agent", {}).get("command"), "http_address") == "127.0.0.1:2773",
          f"{tag}agent: not on 127.0.0.1:2773")
    for name in ("catagram", "catagram-py"):
        check(services.get(name, {}).get("network_mode") == "service:agent",
              f"{tag}{name}: not in the agent's network namespace")

    # Prometheus scrapes each service's metrics port under its compose name,
    # from the targets directory the prometheus service mounts.
    check(os.path.abspath(volume_source(services.get("prometheus", {}), "/etc/prometheus/targets")
                          or "?") == os.path.abspath(os.path.join(root, targets_dir)),
          f"{tag}prometheus does not read {targets_dir}")
    scraped = set()
    for f in os.listdir(os.path.join(root, targets_dir)):
        for group in json.load(open(os.path.join(root, targets_dir, f))):
            scraped.update(group["targets"])
    for name, port in metrics.items():
        check(f"{name}:{port}" in scraped, f"{tag}prometheus does not scrape {name}:{port}")
    return doc


def volume_source(service, target):
    """What is mounted at `target` (a volume name or a host path), or None."""
    for v in service.get("volumes", []):  # long syntax (dicts) or short ("source:target[:mode]")
        if isinstance(v, dict):
            if v.get("target") == target:
                return v.get("source")
        elif str(v).split(":")[1] == target:
            return str(v).split(":")[0]
    return None


def mounted(service, path):
    """The volume or host path `path` is on in `service`, or None."""
    best = None
    for v in service.get("volumes", []):
        source, target = (v.get("source"), v.get("target")) if isinstance(v, dict) else \
            str(v).split(":")[:2]
        if path == target or path.startswith(target.rstrip("/") + "/"):
            if best is None or len(target) > len(best[1]):
                best = (source, target)
    return best[0] if best else None


EXPECTED = {"certs", "kms", "store", "rotator", "worker-postgres", "worker-postgres-alt",
            "gateway", "postgres", "setup", "agent", "catagram", "catagram-py", "prometheus"}
LONG_RUNNING = ["kms", "store", "rotator", "worker-postgres", "worker-postgres-alt", "gateway"]

check_stack(["docker-compose.yml"], "", EXPECTED, LONG_RUNNING, ["kms", "store"],
            "deploy/prometheus/compose-targets")

# docker-compose.ha.yml over docker-compose.yml.
ha = check_stack(["docker-compose.yml", "docker-compose.ha.yml"], "ha: ",
                 EXPECTED | {"kms-2", "store-2", "etcd1", "etcd2", "etcd3", "kms-root-key"},
                 LONG_RUNNING + ["kms-2", "store-2"], ["kms", "kms-2", "store", "store-2"],
                 "deploy/prometheus/compose-targets-ha")
hs = ha["services"]
members = sorted(n for n in hs if re.fullmatch(r"etcd\d+", n))
check(len(members) >= 3 and len(members) % 2 == 1, f"ha: etcd members {members}")
certs_cmd = " ".join(hs.get("certs", {}).get("command", []))
etcd_names = set((re.search(r"--etcd=(\S+)", certs_cmd) or re.search("()", "")).group(1).split(","))
for m in members:
    env = hs[m].get("environment", {})
    check(env.get("ETCD_NAME") == m, f"ha: {m}: ETCD_NAME {env.get('ETCD_NAME')}")
    check(env.get("ETCD_CLIENT_CERT_AUTH") == "true", f"ha: {m} takes clients without certificates")
    check(env.get("ETCD_LISTEN_CLIENT_URLS", "").startswith("https://") and
          env.get("ETCD_ADVERTISE_CLIENT_URLS") == f"https://{m}:2379",
          f"ha: {m}'s client URLs are not https://{m}:2379")
    initial = sorted(env.get("ETCD_INITIAL_CLUSTER", "").split(","))
    check(initial == sorted(f"{x}=http://{x}:2380" for x in members),
          f"ha: {m}'s initial cluster {initial} is not {members}")
    for f in ("ETCD_CERT_FILE", "ETCD_KEY_FILE", "ETCD_TRUSTED_CA_FILE"):
        check(mounted(hs[m], env.get(f, "?")) == "certs", f"ha: {m}: {f} is not in the certs volume")
    check(mounted(hs[m], env.get("ETCD_DATA_DIR", "?")) in ha.get("volumes", {}),
          f"ha: {m}'s data is not on a named volume")
    check(m in etcd_names, f"ha: etcd's certificate (make-certs.sh --etcd=...) does not name {m}")

root_keys = set()
for name in ("kms", "kms-2", "store", "store-2"):
    s = hs.get(name, {})
    cmd = s.get("command", [])
    storage = flag(cmd, "storage") or ""
    check(sorted(storage[len("etcd:"):].split(",")) == sorted(f"{m}:2379" for m in members),
          f"ha: {name} is not on every etcd member: --storage={storage}")
    for f in ("etcd_ca", "etcd_cert", "etcd_key"):
        check(flag(cmd, f) and mounted(s, flag(cmd, f)),
              f"ha: {name}: --{f}={flag(cmd, f)} is on no volume")
    for m in members:
        check(hs[name].get("depends_on", {}).get(m, {}).get("condition") == "service_healthy",
              f"ha: {name} does not wait for {m}")
    check("--dev_mode" not in cmd, f"ha: {name} runs with --dev_mode")
    if name.startswith("kms"):
        key = flag(cmd, "root_key_file")
        root_keys.add((key, mounted(s, key or "?")))
check(len(root_keys) == 1 and None not in next(iter(root_keys)),
      f"ha: the KMS replicas do not share one root key on a volume: {root_keys}")
if len(root_keys) == 1:
    volume = next(iter(root_keys))[1]
    holders = {n for n, s in hs.items() if volume in
               {(v.get("source") if isinstance(v, dict) else str(v).split(":")[0])
                for v in s.get("volumes", [])}}
    check(holders == {"kms", "kms-2", "kms-root-key"},
          f"ha: the root key volume {volume} is mounted by {sorted(holders)}")

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
