#!/usr/bin/env python3
"""deploy/k8s rendered by `kubectl kustomize` for the base and every overlay,
and checked for what the operations guide promises: the kinds; native gRPC
probes on each service's health-only port; non-root, read-only root
filesystem, no privilege escalation, all capabilities dropped,
RuntimeDefault seccomp, resource requests and limits; NetworkPolicies (deny
by default, the KMS reachable from the store only, workers from the rotator
only); cert-manager Certificates carrying the SPIFFE IDs each peer pins;
every path flag on a mounted volume. The ha overlay also: coffer-kms and
coffer-store replicas on the coffer-etcd cluster (every member, by the names
its certificate carries, with a client certificate of the CA etcd trusts and
no other workload holds), one root key Secret for every KMS replica, an etcd
of an odd number of members reachable on its client port from the KMS and
the store only.
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


# Flags naming a file or directory the process reads or writes (Coffer's and
# etcd's spellings).
PATH_FLAGS = ("data_dir", "audit_dir", "policy_file", "root_key_file", "tls_ca", "tls_cert",
              "tls_key", "etcd_ca", "etcd_cert", "etcd_key", "config", "data-dir", "cert-file",
              "key-file", "trusted-ca-file", "peer-cert-file", "peer-key-file",
              "peer-trusted-ca-file")
WRITTEN = ("data_dir", "audit_dir", "data-dir")


def volume_of(container, pod, claims, path):
    """The volume (as in the pod spec; a claim template as {"claim": name})
    and mount a path is on, or (None, None)."""
    best = None
    for m in container.get("volumeMounts", []):
        if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/"):
            if best is None or len(m["mountPath"]) > len(best["mountPath"]):
                best = m
    if best is None:
        return None, None
    for v in pod.get("volumes", []):
        if v["name"] == best["name"]:
            return v, best
    if best["name"] in claims:
        return {"name": best["name"], "claim": best["name"]}, best
    return None, best


def check_ha_etcd(workloads, certs, services, pdbs, ingress_from):
    """The ha overlay: the KMS and the store on the coffer-etcd cluster."""
    etcd = workloads.get("coffer-etcd")
    check(etcd is not None and etcd["kind"] == "StatefulSet", "ha: no coffer-etcd StatefulSet")
    if etcd is None:
        return
    members = etcd["spec"]["replicas"]
    check(members >= 3 and members % 2 == 1, f"ha: etcd has {members} members (3, 5...)")
    check(etcd["spec"].get("podManagementPolicy") == "Parallel",
          "ha: etcd members do not start together (podManagementPolicy: Parallel)")
    svc_name = etcd["spec"]["serviceName"]
    svc = services.get(svc_name, {}).get("spec", {})
    labels = etcd["spec"]["template"]["metadata"]["labels"]
    check(svc.get("clusterIP") == "None" and svc.get("publishNotReadyAddresses") is True and
          svc.get("selector") and set(svc["selector"].items()) <= set(labels.items()),
          f"ha: {svc_name} is not a headless Service of the etcd members publishing them unready")
    pod = etcd["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = c.get("args", [])
    hosts = [f"coffer-etcd-{i}.{svc_name}.coffer.svc" for i in range(members)]
    for needed in ("--client-cert-auth", "--peer-client-cert-auth"):
        check(needed in args, f"ha: etcd runs without {needed}")
    for url_flag in ("listen-client-urls", "advertise-client-urls", "listen-peer-urls",
                     "initial-advertise-peer-urls"):
        check((flag(args, url_flag) or "").startswith("https://"), f"ha: etcd --{url_flag} not https")
    initial = sorted((flag(args, "initial-cluster") or "").split(","))
    check(initial == sorted(f"coffer-etcd-{i}=https://{h}:2380" for i, h in enumerate(hosts)),
          f"ha: etcd --initial-cluster {initial} is not its {members} members")

    def cert_of_secret(secret):
        return next((x for x in certs.values() if x["spec"]["secretName"] == secret), None)

    def secret_volume(pod_spec, container, path):
        vol, _ = volume_of(container, pod_spec, set(), path)
        return (vol or {}).get("secret", {}).get("secretName")

    server = cert_of_secret(secret_volume(pod, c, flag(args, "cert-file") or "?"))
    trusted = secret_volume(pod, c, flag(args, "trusted-ca-file") or "?")
    trusted_cert = cert_of_secret(trusted)
    check(server is not None and trusted_cert is not None,
          "ha: etcd's --cert-file or --trusted-ca-file is not from a cert-manager Certificate")
    trusted_issuer = trusted_cert["spec"]["issuerRef"]["name"] if trusted_cert else None
    server_names = set(server["spec"].get("dnsNames", [])) if server else set()

    client_secrets = set()
    for name in ("coffer-kms", "coffer-store"):
        w = workloads[name]
        wpod = w["spec"]["template"]["spec"]
        wc = wpod["containers"][0]
        wargs = wc["args"]
        check(w["spec"]["replicas"] >= 2, f"ha: {name} has one replica")
        pdb = pdbs.get(name, {}).get("spec", {})
        check(pdb.get("maxUnavailable", 0) >= 1 and pdb["maxUnavailable"] < w["spec"]["replicas"]
              or 1 <= pdb.get("minAvailable", 0) < w["spec"]["replicas"],
              f"ha: {name}'s PDB {pdb} does not keep one replica up while letting one go")
        storage = flag(wargs, "storage") or ""
        check(storage.startswith("etcd:"), f"ha: {name} is not on etcd: --storage={storage}")
        endpoints = storage[len("etcd:"):].split(",")
        check(sorted(endpoints) == sorted(f"{h}:2379" for h in hosts),
              f"ha: {name} names {endpoints}, not every member of {svc_name} on 2379")
        for e in endpoints:
            check(e.rsplit(":", 1)[0] in server_names,
                  f"ha: {name} calls {e}, which etcd's certificate does not name")
        files = {flag(wargs, f) for f in ("etcd_ca", "etcd_cert", "etcd_key")}
        check(None not in files, f"ha: {name} lacks an --etcd_ca/--etcd_cert/--etcd_key")
        secrets = {secret_volume(wpod, wc, p) for p in files if p}
        check(len(secrets) == 1 and None not in secrets,
              f"ha: {name}'s etcd files are not from one Secret: {secrets}")
        client_secrets |= secrets
        client = cert_of_secret(next(iter(secrets))) if secrets else None
        check(client is not None and client["spec"]["issuerRef"]["name"] == trusted_issuer,
              f"ha: {name}'s etcd client certificate is not from {trusted_issuer}, the CA etcd trusts")
    # The etcd client certificate: in the KMS and store pods only.
    for name, w in workloads.items():
        if name in ("coffer-kms", "coffer-store"):
            continue
        mounted = {v.get("secret", {}).get("secretName")
                   for v in w["spec"]["template"]["spec"].get("volumes", [])}
        check(not (mounted & client_secrets), f"ha: {name} mounts the etcd client certificate")

    # One root key for every KMS replica: a Secret, not a per-replica volume.
    kms = workloads["coffer-kms"]
    kpod = kms["spec"]["template"]["spec"]
    root_key = flag(kpod["containers"][0]["args"], "root_key_file") or "?"
    check(secret_volume(kpod, kpod["containers"][0], root_key) is not None,
          f"ha: the KMS replicas' --root_key_file={root_key} is not from one Secret")

    pdb = pdbs.get("coffer-etcd", {}).get("spec", {})
    quorum = members // 2 + 1
    check(pdb.get("maxUnavailable", members) <= members - quorum or
          pdb.get("minAvailable", 0) >= quorum, f"ha: etcd's PDB {pdb} can break quorum")
    check(ingress_from("coffer-etcd", 2379) == {"coffer-kms", "coffer-store"},
          f"ha: etcd's client port is reachable from {ingress_from('coffer-etcd', 2379)}")
    check(ingress_from("coffer-etcd", 2380) == {"coffer-etcd"},
          f"ha: etcd's peer port is reachable from {ingress_from('coffer-etcd', 2380)}")


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
            claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
            for name_ in PATH_FLAGS:
                path = flag(args, name_)
                if path is None:
                    continue
                vol, mount = volume_of(c, pod, claims, path)
                check(vol is not None, f"{where}: --{name_}={path} is on no volume")
                if vol is not None and name_ in WRITTEN:
                    check(not mount.get("readOnly") and ("emptyDir" in vol or "claim" in vol or
                                                         "persistentVolumeClaim" in vol),
                          f"{where}: --{name_}={path} is not on a writable volume")
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
                # No ports: every port; no from: every source.
                if not rule.get("ports") or port in [p["port"] for p in rule["ports"]]:
                    if not rule.get("from"):
                        sources.add("*")
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
        check_ha_etcd(workloads, certs, by_kind(docs, "Service"), pdbs, ingress_from)
    # Several replicas of the KMS or the store only on etcd: on RocksDB each
    # would have a database of its own.
    for name in ("coffer-kms", "coffer-store"):
        w = workloads.get(name)
        if w and w["spec"].get("replicas", 1) > 1:
            args = w["spec"]["template"]["spec"]["containers"][0]["args"]
            check((flag(args, "storage") or "").startswith("etcd:"),
                  f"{tag}: {name} has {w['spec']['replicas']} replicas but no --storage=etcd:")
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
