#!/usr/bin/env python3
"""deploy/k8s rendered by `kubectl kustomize` for the base and every overlay,
and checked for what the operations guide promises: the kinds; native gRPC
probes on each service's health-only port; non-root, read-only root
filesystem, no privilege escalation, all capabilities dropped,
RuntimeDefault seccomp, resource requests and limits; NetworkPolicies (deny
by default, the KMS reachable from the store only, workers from the rotator
only); cert-manager Certificates carrying the SPIFFE IDs each peer pins.
Run by CTest (k8s_check): `k8s_test.py REPO_ROOT`.
"""
import os
import subprocess
import sys

import yaml

root = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def render(path):
    out = subprocess.run(["kubectl", "kustomize", os.path.join(root, path)], capture_output=True,
                         text=True)
    check(out.returncode == 0, f"kubectl kustomize {path}: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d] if out.returncode == 0 else []


def flag(args, name):
    for a in args or []:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


for overlay in ("deploy/k8s/base", "deploy/k8s/overlays/dev", "deploy/k8s/overlays/ha"):
    tag = overlay.rsplit("/", 1)[-1]
    docs = render(overlay)
    kinds = {d["kind"] for d in docs}
    for k in ("Namespace", "StatefulSet", "Deployment", "Service", "NetworkPolicy", "Certificate",
              "PodDisruptionBudget", "ConfigMap"):
        check(k in kinds, f"{tag}: no {k}")
    check(all(d["metadata"].get("namespace") == "coffer" for d in docs
              if d["kind"] not in ("Namespace",)), f"{tag}: objects outside the coffer namespace")
    ns = by_kind(docs, "Namespace").get("coffer", {})
    check(ns.get("metadata", {}).get("labels", {}).get("pod-security.kubernetes.io/enforce")
          == "restricted", f"{tag}: the namespace does not enforce the restricted standard")

    workloads = {**by_kind(docs, "StatefulSet"), **by_kind(docs, "Deployment")}
    for name in ("coffer-kms", "coffer-store"):
        check(workloads.get(name, {}).get("kind") == "StatefulSet", f"{tag}: {name} not a StatefulSet")
    for name in ("coffer-rotator", "coffer-worker-postgres", "catagram"):
        check(workloads.get(name, {}).get("kind") == "Deployment", f"{tag}: {name} not a Deployment")

    certs = by_kind(docs, "Certificate")
    uris_by_secret = {c["spec"]["secretName"]: set(c["spec"].get("uris", [])) for c in certs.values()}
    identity = {}  # workload -> SPIFFE IDs of the certificate it mounts
    pins = []      # (workload, pinned SPIFFE ID, which workload must carry it)

    for name, w in workloads.items():
        pod = w["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True, f"{tag}/{name}: pod not runAsNonRoot")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
              f"{tag}/{name}: no RuntimeDefault seccomp")
        check(pod.get("automountServiceAccountToken") is False,
              f"{tag}/{name}: service account token mounted")
        for vol in pod.get("volumes", []):
            if vol.get("name") == "tls":
                identity[name] = uris_by_secret.get(vol["secret"]["secretName"], set())
        check(identity.get(name), f"{tag}/{name}: no certificate with a SPIFFE ID mounted")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            where = f"{tag}/{name}/{c['name']}"
            check(sc.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation")
            check(sc.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem writable")
            check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities kept")
            res = c.get("resources", {})
            check(res.get("requests") and res.get("limits"), f"{where}: no requests/limits")
            args = c.get("args", [])
            health = flag(args, "health_listen_address")
            if args and args[0].startswith("coffer-") and args[0] != "coffer-agent":
                check(health is not None, f"{where}: no health-only listener")
            if health:
                port = int(health.rsplit(":", 1)[1])
                for probe in ("readinessProbe", "livenessProbe"):
                    check(c.get(probe, {}).get("grpc", {}).get("port") == port,
                          f"{where}: {probe} is not a gRPC probe on the health port {port}")
            if flag(args, "kms_spiffe_id"):
                pins.append((name, flag(args, "kms_spiffe_id"), "coffer-kms"))
            if flag(args, "store_spiffe_id"):
                pins.append((name, flag(args, "store_spiffe_id"), "coffer-store"))
            for a in args:
                if a.startswith("--worker="):
                    _, address, spiffe = a.split("=", 1)[1].split("=")
                    pins.append((name, spiffe, address.split(":")[0]))
            if c.get("env"):
                env = {e["name"]: e.get("value") for e in c["env"]}
                if env.get("COFFER_ENDPOINT"):
                    pins.append((name, "spiffe://coffer.local/store", "coffer-store"))
    for who, spiffe, target in pins:
        check(spiffe in identity.get(target, set()),
              f"{tag}: {who} pins {spiffe}, but {target}'s certificate carries {identity.get(target)}")

    # The KMS: root key from a Secret, except in dev.
    kms_args = workloads["coffer-kms"]["spec"]["template"]["spec"]["containers"][0]["args"]
    if tag == "dev":
        check("--dev_mode" in kms_args and not flag(kms_args, "root_key_file"),
              "dev: the KMS is not in --dev_mode")
    else:
        check(flag(kms_args, "root_key_file") and "--dev_mode" not in kms_args,
              f"{tag}: the KMS has no root key file")

    # Network policies.
    nps = by_kind(docs, "NetworkPolicy")
    # Deny by default: a policy for every pod of the namespace with no rule
    # (the selector may carry the common part-of label).
    check(any(not np["spec"]["podSelector"].get("matchExpressions") and
              set(np["spec"]["podSelector"].get("matchLabels", {})) <= {"app.kubernetes.io/part-of"}
              and "ingress" not in np["spec"] for np in nps.values()), f"{tag}: no default deny")

    def ingress_from(app, port):
        sources = set()
        for np in nps.values():
            sel = np["spec"]["podSelector"].get("matchLabels", {})
            if sel.get("app.kubernetes.io/name") != app:
                continue
            for rule in np["spec"].get("ingress", []):
                if port in [p["port"] for p in rule.get("ports", [])]:
                    for f in rule.get("from", []):
                        sources.add(f.get("podSelector", {}).get("matchLabels", {})
                                    .get("app.kubernetes.io/name", "?"))
        return sources
    check(ingress_from("coffer-kms", 7701) == {"coffer-store"},
          f"{tag}: the KMS is reachable from {ingress_from('coffer-kms', 7701)}")
    check(ingress_from("coffer-worker-postgres", 7711) == {"coffer-rotator"},
          f"{tag}: the worker is reachable from {ingress_from('coffer-worker-postgres', 7711)}")
    check("coffer-kms" not in ingress_from("coffer-store", 7702) and
          ingress_from("coffer-store", 7702), f"{tag}: store ingress {ingress_from('coffer-store', 7702)}")

    pdbs = by_kind(docs, "PodDisruptionBudget")
    for name in ("coffer-kms", "coffer-store", "coffer-rotator", "coffer-worker-postgres"):
        check(name in pdbs, f"{tag}: no PodDisruptionBudget for {name}")
    if tag == "ha":
        for name in ("coffer-rotator", "coffer-worker-postgres"):
            check(workloads[name]["spec"]["replicas"] >= 2, f"ha: {name} has one replica")
            check(pdbs[name]["spec"].get("minAvailable") == 1, f"ha: {name}'s PDB")
    if tag == "dev":
        issuers = by_kind(docs, "Issuer")
        check("coffer-ca" in issuers, "dev: no coffer-ca Issuer")
    print(f"{tag}: {len(docs)} objects")

print(f"k8s_test: {len(failures)} failures")
sys.exit(1 if failures else 0)
