"""The pod policy of ARTIFACTS.md, checked on every pod spec of every rendered manifest."""

from __future__ import annotations

from k8s_pods import pod_specs

RUNTIME_UID = 10001
POLICY_GPU = "nvidia.com/gpu"


def _policy_problems(pod: dict) -> list[str]:
    problems = []
    pod_context = pod.get("securityContext", {})
    if pod_context.get("runAsNonRoot") is not True or pod_context.get("runAsUser") != RUNTIME_UID:
        problems.append("pod must run as non-root UID 10001")
    if pod_context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod seccompProfile must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken must be false (a token is mounted where it is used)")
    if token_containers(pod) and not pod.get("serviceAccountName"):
        problems.append("a token is mounted, but no dedicated service account is named")
    if len(token_containers(pod)) > 1:
        problems.append(f"a token is mounted into {token_containers(pod)}: at most one container calls the API")
    mounted = {}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in pod.get("initContainers", []) + pod["containers"]:
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities must drop ALL")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem must be true")
        if context.get("privileged"):
            problems.append(f"{name}: must not be privileged")
        resources = container.get("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        for amount in ("cpu", "memory"):
            if amount not in requests or amount not in limits:
                problems.append(f"{name}: needs requests and limits for {amount}")
        if POLICY_GPU in requests and requests[POLICY_GPU] != limits.get(POLICY_GPU):
            problems.append(f"{name}: GPU requests must equal limits")
        if POLICY_GPU in requests or POLICY_GPU in limits:
            tolerations = pod.get("tolerations", [])
            if not any(t.get("key") == POLICY_GPU and t.get("operator") == "Exists" for t in tolerations):
                problems.append(f"{name}: GPU pods tolerate the nvidia.com/gpu taint")
        for mount in container.get("volumeMounts", []):
            mounted[mount["mountPath"]] = volumes.get(mount["name"], {})
    if "emptyDir" not in mounted.get("/tmp", {}):
        problems.append("/tmp must be an emptyDir (the root filesystem is read-only)")
    return problems


def test_every_pod_follows_the_policy(rendered):
    checked, failures = 0, []
    for case in rendered.values():
        for path, doc in case.resources():
            for pod in pod_specs(doc):
                checked += 1
                failures.extend(f"{case.name}:{path}: {p}" for p in _policy_problems(pod))
    assert checked >= 10
    assert not failures, "\n".join(failures)


def token_containers(pod: dict) -> list[str]:
    """The containers the service account's token is mounted into (projected, as the kubelet would)."""
    token_volumes = {
        volume["name"]
        for volume in pod.get("volumes", [])
        if any("serviceAccountToken" in source for source in volume.get("projected", {}).get("sources", []))
    }
    return [
        container["name"]
        for container in pod.get("initContainers", []) + pod["containers"]
        if any(mount["name"] in token_volumes for mount in container.get("volumeMounts", []))
    ]


def test_only_pods_with_a_role_mount_a_token(rendered):
    tokens = 0
    for case in rendered.values():
        resources = case.resources()
        bound = {subject["name"] for _, doc in resources if doc["kind"] == "RoleBinding" for subject in doc["subjects"]}
        for path, doc in resources:
            for pod in pod_specs(doc):
                if token_containers(pod):
                    tokens += 1
                    assert pod["serviceAccountName"] in bound, f"{case.name}:{path}: token without a Role"
    assert tokens >= 3  # the drift and feedback CronJobs, the training pods' gate
