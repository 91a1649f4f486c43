#!/usr/bin/env python3
"""deploy/k8s rendered by `kubectl kustomize` for the base and every overlay,
and checked for what the operations guide promises: the kinds; native gRPC
probes on each service's health-only port; non-root, read-only root
filesystem, no privilege escalation, all capabilities dropped,
RuntimeDefault seccomp, resource requests and limits; NetworkPolicies (deny
by default, the KMS reachable from the store only, workers from the rotator
only); cert-manager Certificates carrying the SPIFFE IDs each peer pins.
Also deploy/k8s/kms-plugin: the EncryptionConfiguration and the static Pod
that serves it agree (socket, key, identity, policy) and the Pod is as
hardened as the rest.
Run by CTest (k8s_check): `k8s_test.py REPO_ROOT`.
"""
import json
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
    for name in ("coffer-rotator", "coffer-worker-postgres", "coffer-gateway", "catagram"):
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
    check(ingress_from("coffer-kms", 7701) == {"coffer-store", "coffer-gateway"},
          f"{tag}: the KMS is reachable from {ingress_from('coffer-kms', 7701)}")
    check(ingress_from("coffer-worker-postgres", 7711) == {"coffer-rotator"},
          f"{tag}: the worker is reachable from {ingress_from('coffer-worker-postgres', 7711)}")
    check("coffer-kms" not in ingress_from("coffer-store", 7702) and
          ingress_from("coffer-store", 7702), f"{tag}: store ingress {ingress_from('coffer-store', 7702)}")

    pdbs = by_kind(docs, "PodDisruptionBudget")
    for name in ("coffer-kms", "coffer-store", "coffer-rotator", "coffer-worker-postgres",
                 "coffer-gateway"):
        check(name in pdbs, f"{tag}: no PodDisruptionBudget for {name}")
    if tag == "ha":
        for name in ("coffer-rotator", "coffer-worker-postgres", "coffer-gateway"):
            check(workloads[name]["spec"]["replicas"] >= 2, f"ha: {name} has one replica")
            check(pdbs[name]["spec"].get("minAvailable") == 1, f"ha: {name}'s PDB")
    if tag == "dev":
        issuers = by_kind(docs, "Issuer")
        check("coffer-ca" in issuers, "dev: no coffer-ca Issuer")
    print(f"{tag}: {len(docs)} objects")


def check_kms_plugin():
    """The API server's EncryptionConfiguration, the coffer-kms static Pod
    beside it and the policy that Pod loads fit together."""
    d = os.path.join(root, "deploy/k8s/kms-plugin")
    with open(os.path.join(d, "encryption-configuration.yaml")) as f:
        enc = yaml.safe_load(f)
    with open(os.path.join(d, "coffer-kms-plugin.yaml")) as f:
        pod = yaml.safe_load(f)
    with open(os.path.join(d, "policy.json")) as f:
        policy = json.load(f)
    check(enc.get("apiVersion") == "apiserver.config.k8s.io/v1" and
          enc.get("kind") == "EncryptionConfiguration", "kms-plugin: not an EncryptionConfiguration")
    rules = enc.get("resources", [])
    check(any("secrets" in r.get("resources", []) for r in rules),
          "kms-plugin: Secrets are not encrypted")
    providers = rules[0].get("providers", []) if rules else []
    kms = providers[0].get("kms", {}) if providers else {}
    check(kms.get("apiVersion") == "v2", "kms-plugin: the first provider is not KMS v2")
    check(kms.get("timeout"), "kms-plugin: no timeout")
    check(providers and "identity" in providers[-1],
          "kms-plugin: no identity provider last (objects written before cannot be read)")
    endpoint = kms.get("endpoint", "")
    check(endpoint.startswith("unix:///"), f"kms-plugin: endpoint {endpoint} is not a Unix socket")
    socket = endpoint[len("unix://"):]

    check(pod.get("kind") == "Pod" and pod["metadata"].get("namespace") == "kube-system",
          "kms-plugin: not a kube-system Pod (a static Pod beside the API server)")
    spec = pod["spec"]
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0,
          "kms-plugin: runs as root")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
          "kms-plugin: no RuntimeDefault seccomp")
    c = spec["containers"][0]
    sc = c.get("securityContext", {})
    check(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
          and sc.get("capabilities", {}).get("drop") == ["ALL"], "kms-plugin: container hardening")
    check(c.get("resources", {}).get("requests") and c.get("resources", {}).get("limits"),
          "kms-plugin: no requests/limits")
    args = c.get("args", [])
    check(args[:1] == ["coffer-kms"], "kms-plugin: not coffer-kms")
    check(flag(args, "kubernetes_kms_socket") == socket,
          f"kms-plugin: serves {flag(args, 'kubernetes_kms_socket')}, the API server calls {socket}")
    for name in ("listen_address", "health_listen_address", "metrics_address"):
        check((flag(args, name) or "").startswith("127.0.0.1:"),
              f"kms-plugin: --{name} is not on loopback (host network)")
    health = flag(args, "health_listen_address")
    for probe in ("readinessProbe", "livenessProbe"):
        command = c.get(probe, {}).get("exec", {}).get("command", [])
        check(command[:1] == ["coffer-health-probe"] and health in command,
              f"kms-plugin: {probe} does not probe {health}")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    socket_dir = socket.rsplit("/", 1)[0]
    check(volumes.get(mounts.get(socket_dir), {}).get("hostPath", {}).get("path") == socket_dir,
          f"kms-plugin: {socket_dir} is not the node's directory (the API server would not see it)")
    for name in ("policy_file", "root_key_file", "tls_cert", "data_dir"):
        path = flag(args, name) or ""
        check(any(path == m or path.startswith(m + "/") for m in mounts),
              f"kms-plugin: --{name}={path} is on no volume")
    check("--dev_mode" not in args, "kms-plugin: --dev_mode")

    identity = flag(args, "kubernetes_kms_identity")
    key = flag(args, "kubernetes_kms_key")
    check(identity and key, "kms-plugin: no identity or key flag")

    def allowed(action, resource=None):
        return any(st["effect"] == "Allow" and identity in st.get("principals", []) and
                   action in st.get("actions", []) and
                   (resource is None or resource in st.get("resources", []) or
                    "*" in st.get("resources", [])) for st in policy["statements"])
    check(allowed("kms:DescribeKey", key), f"kms-plugin: {identity} may not describe {key}")
    for action in ("kms:Encrypt", "kms:Decrypt"):
        check(allowed(action), f"kms-plugin: {identity} may not {action}")
    check(not any(st["effect"] == "Allow" and "kms:Decrypt" in st.get("actions", []) and
                  identity not in st.get("principals", []) for st in policy["statements"]),
          "kms-plugin: someone besides the API server may decrypt")
    print("kms-plugin: EncryptionConfiguration, static Pod and policy agree")


check_kms_plugin()
print(f"k8s_test: {len(failures)} failures")
sys.exit(1 if failures else 0)
