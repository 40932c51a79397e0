#!/usr/bin/env python3
"""Renders every kustomize overlay, validates each object against the
Kubernetes schemas with kubernetes-validate --strict, and checks the policies
deploy/README.md promises. Part of `make test`; exits non-zero on any failure.

Usage: check.py KUBECTL KUBERNETES_VALIDATE
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ["dev", "prod"]
SECRET_WORDS = {"KEY", "TOKEN", "PASSWORD"}
AUTH_INTERNAL_PORT = 50053

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"manifests: FAIL {what}", file=sys.stderr)


def render(kubectl, overlay):
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "overlays" / overlay)],
        check=True, capture_output=True, text=True,
    )
    return out.stdout


def validate(validator, text, version):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    run = subprocess.run(
        [validator, "--strict", "--quiet", "-k", version, f.name],
        capture_output=True, text=True,
    )
    Path(f.name).unlink()
    return run.returncode == 0, run.stdout + run.stderr


def secret_name(var):
    """A variable that would hold a key, a token, a password or a database URL."""
    return var.startswith("DATABASE_URL") or bool(SECRET_WORDS & set(var.split("_")))


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def mebibytes(quantity):
    """A Kubernetes memory quantity (`256Mi`, `1Gi`) in MiB."""
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return int(float(quantity[: -len(unit)]) * factor)
    return int(quantity) // (1024 * 1024)


def env_of(objects, deployment):
    """The container's variables: its ConfigMaps' data plus inline env."""
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in by_kind(objects, "ConfigMap")}
    env = {}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for source in container.get("envFrom", []):
        env.update(maps.get(source.get("configMapRef", {}).get("name"), {}))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


def policies(objects, overlay):
    name = f"[{overlay}]"
    deployments = by_kind(objects, "Deployment")
    check(len(deployments) == 2, f"{name} two Deployments")
    check(any(o["kind"] == "Namespace" for o in objects), f"{name} a Namespace")
    for cm in by_kind(objects, "ConfigMap"):
        for key, value in cm.get("data", {}).items():
            check(
                key.endswith("_FILE") or not secret_name(key),
                f"{name} ConfigMap {cm['metadata']['name']} holds {key}: keys and URLs come from Secret files",
            )
    for d in deployments:
        dn = f"{name} {d['metadata']['name']}"
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True, f"{dn} pod runAsNonRoot")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{dn} seccomp RuntimeDefault")
        check(pod.get("automountServiceAccountToken") is False, f"{dn} no service account token")
        env = env_of(objects, d)
        grace = int(env.get("LATCHKEY_SHUTDOWN_GRACE_SECONDS", "0"))
        for c in pod["containers"]:
            cn = f"{dn}/{c['name']}"
            sc = c.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") is True, f"{cn} read-only root filesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{cn} no privilege escalation")
            check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{cn} drops all capabilities")
            check(sc.get("runAsNonRoot") is True, f"{cn} runAsNonRoot")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                check({"cpu", "memory"} <= set(res.get(kind, {})), f"{cn} {kind} for cpu and memory")
            for probe in ("livenessProbe", "readinessProbe"):
                check("grpc" in c.get(probe, {}), f"{cn} {probe} is a native gRPC probe")
            check(
                c.get("readinessProbe", {}).get("grpc", {}).get("service", "").startswith("latchkey."),
                f"{cn} readiness asks for the service itself",
            )
            for var in c.get("env", []):
                check(
                    "value" not in var or var["name"].endswith("_FILE") or not secret_name(var["name"]),
                    f"{cn} inline secret variable {var['name']}",
                )
            # Containers get a large descriptor limit, so the connection
            # caps derived from it would outgrow the memory limit: set them.
            memory_mib = mebibytes(res.get("limits", {}).get("memory", "0"))
            caps = {
                v: int(env.get(v, "0"))
                for v in ("LATCHKEY_MAX_CONNECTIONS", "LATCHKEY_MAX_CONNECTIONS_PER_ADDRESS")
            }
            check(all(caps.values()), f"{cn} sets its connection caps")
            check(
                caps["LATCHKEY_MAX_CONNECTIONS"] * 64 // 1024 <= memory_mib // 2,
                f"{cn} connection cap fits half the memory limit at 64 KiB each",
            )
            check(
                caps["LATCHKEY_MAX_CONNECTIONS_PER_ADDRESS"] < caps["LATCHKEY_MAX_CONNECTIONS"],
                f"{cn} one address cannot take every connection",
            )
            pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            check(grace > 0, f"{cn} LATCHKEY_SHUTDOWN_GRACE_SECONDS set")
            check(
                pod.get("terminationGracePeriodSeconds", 30) > grace + pre,
                f"{cn} terminationGracePeriodSeconds covers preStop plus the drain bound",
            )
        label = d["spec"]["selector"]["matchLabels"]
        check(
            any(p["spec"]["selector"]["matchLabels"] == label for p in by_kind(objects, "PodDisruptionBudget")),
            f"{dn} has a PodDisruptionBudget",
        )
        hpas = [h for h in by_kind(objects, "HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == d["metadata"]["name"]]
        check(len(hpas) == 1, f"{dn} has a HorizontalPodAutoscaler")
        replicas = d["spec"].get("replicas", 1)
        if overlay == "prod":
            check(replicas >= 2 and all(h["spec"]["minReplicas"] >= 2 for h in hpas), f"{dn} two or more replicas")
            check(env.get("LATCHKEY_ENV") == "production", f"{dn} LATCHKEY_ENV=production")
            check("DATABASE_URL_FILE" in env, f"{dn} DATABASE_URL from a Secret file")
            check("LATCHKEY_TLS_CERT_FILE" in env and "LATCHKEY_TLS_KEY_FILE" in env, f"{dn} TLS for clients")
        else:
            check(replicas == 1, f"{dn} one replica")
            claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
            check(len(claims) == 1, f"{dn} SQLite on a PersistentVolumeClaim")
    if overlay == "prod":
        auth = env_of(objects, next(d for d in deployments if d["metadata"]["name"] == "latchkey-auth"))
        sec = env_of(objects, next(d for d in deployments if d["metadata"]["name"] == "latchkey-secrets"))
        check("LATCHKEY_TLS_CLIENT_CA_FILE" in auth, "[prod] auth asks for client certificates (mTLS)")
        check(
            sec.get("LATCHKEY_AUTH_URL", "").startswith("https://")
            and "LATCHKEY_AUTH_CLIENT_CERT_FILE" in sec and "LATCHKEY_AUTH_CLIENT_KEY_FILE" in sec,
            "[prod] secrets calls auth over mTLS",
        )
    # Infisical's HTTP API: configured, named on the pod, on the Service, and let in.
    sec_deploy = next(d for d in deployments if d["metadata"]["name"] == "latchkey-secrets")
    http_addr = env_of(objects, sec_deploy).get("LATCHKEY_HTTP_ADDR", "")
    check(http_addr.endswith(":8080"), f"{name} LATCHKEY_HTTP_ADDR on port 8080")
    sec_container = sec_deploy["spec"]["template"]["spec"]["containers"][0]
    check(
        any(p.get("name") == "http" and p.get("containerPort") == 8080 for p in sec_container.get("ports", [])),
        f"{name} the secrets container names its http port",
    )
    sec_service = next(s for s in by_kind(objects, "Service") if s["metadata"]["name"] == "latchkey-secrets")
    check(
        any(p.get("port") == 8080 and p.get("targetPort") == "http" for p in sec_service["spec"]["ports"]),
        f"{name} the latchkey-secrets Service exposes the HTTP API",
    )
    # Network: default deny, and the internal port only from the secrets pods.
    nps = by_kind(objects, "NetworkPolicy")
    check(
        any(
            n["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "latchkey-secrets"
            and any(8080 in {p.get("port") for p in r.get("ports", [])} for r in n["spec"].get("ingress", []))
            for n in nps
        ),
        f"{name} a NetworkPolicy lets clients reach the HTTP API",
    )
    check(
        any(n["spec"]["podSelector"] == {} and "ingress" not in n["spec"] for n in nps),
        f"{name} default-deny ingress",
    )
    for n in nps:
        for rule in n["spec"].get("ingress", []):
            ports = {p.get("port") for p in rule.get("ports", [])}
            if AUTH_INTERNAL_PORT in ports:
                froms = rule.get("from", [])
                check(
                    froms and all(
                        f.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "latchkey-secrets"
                        for f in froms
                    ),
                    f"{name} {n['metadata']['name']}: only the secrets service reaches the internal port",
                )


def example_policies(objects):
    """The Kubernetes Auth sample: restricted pods, and a projected token
    meant for Latchkey alone and short-lived, never the default mount."""
    name = "[examples/kubernetes-auth]"
    for d in by_kind(objects, "Deployment"):
        pod = d["spec"]["template"]["spec"]
        check(pod.get("automountServiceAccountToken") is False, f"{name} no default service account token")
        check(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{name} pod runAsNonRoot")
        tokens = [
            s["serviceAccountToken"]
            for v in pod.get("volumes", [])
            for s in v.get("projected", {}).get("sources", [])
            if "serviceAccountToken" in s
        ]
        check(len(tokens) == 1, f"{name} one projected service-account token")
        for t in tokens:
            check(t.get("audience") == "latchkey", f"{name} the token's audience is Latchkey's")
            check(0 < t.get("expirationSeconds", 0) <= 3600, f"{name} the token lives at most an hour")
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c.get("securityContext", {})
            check(sc.get("readOnlyRootFilesystem") is True, f"{name} {c['name']} read-only root filesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{name} {c['name']} no privilege escalation")
            check({"cpu", "memory"} <= set(c.get("resources", {}).get("limits", {})), f"{name} {c['name']} limits")
        login = next(c for c in pod["initContainers"] if c["name"] == "latchkey-login")
        check("--method=kubernetes" in login.get("args", []), f"{name} the init container logs in with Kubernetes Auth")


def main():
    kubectl, validator = sys.argv[1], sys.argv[2]
    version = sys.argv[3] if len(sys.argv) > 3 else "1.37.0"
    example = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "examples" / "kubernetes-auth")],
        check=True, capture_output=True, text=True,
    ).stdout
    ok, out = validate(validator, example, version)
    check(ok, f"[examples/kubernetes-auth] kubernetes-validate --strict against {version}:\n{out}")
    example_policies([o for o in yaml.safe_load_all(example) if o])
    for overlay in OVERLAYS:
        text = render(kubectl, overlay)
        ok, out = validate(validator, text, version)
        check(ok, f"[{overlay}] kubernetes-validate --strict against {version}:\n{out}")
        objects = [o for o in yaml.safe_load_all(text) if o]
        policies(objects, overlay)
        if overlay == "prod":
            # The validator itself must catch a misspelt field, or a green
            # run proves nothing.
            broken = [dict(o) for o in objects]
            for o in broken:
                if o["kind"] == "Deployment":
                    o["spec"] = dict(o["spec"], replica=2)
            ok, _ = validate(validator, yaml.safe_dump_all(broken), version)
            check(not ok, "[prod] a misspelt field (spec.replica) is rejected by the validator")
    print(f"manifests: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
