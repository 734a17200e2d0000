"""deploy/k8s and deploy/compose.yaml parse and reference each other consistently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cdp.cli.main import app
from cdp.config import PROJECT_ROOT
from streams.registry import PROCESSORS

K8S = PROJECT_ROOT / "deploy" / "k8s"


def _docs() -> list[dict[str, Any]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _named(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs() if d["kind"] == kind}


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"])
            for d in _docs() if d["kind"] in ("Deployment", "Job")]  # fmt: skip


def _commands() -> set[str]:
    names = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    return names | {g.name for g in app.registered_groups if g.name}


def test_kustomization_lists_every_file() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == files


def test_references_resolve() -> None:
    configmaps, secrets, pvcs = (
        _named("ConfigMap"),
        _named("Secret"),
        _named("PersistentVolumeClaim"),
    )
    for name, spec in _pod_specs():
        for c in spec["containers"]:
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref:
                    assert ref["configMapRef"]["name"] in configmaps, name
                if "secretRef" in ref:
                    assert ref["secretRef"]["name"] in secrets, name
        for vol in spec.get("volumes", []):
            if "persistentVolumeClaim" in vol:
                assert vol["persistentVolumeClaim"]["claimName"] in pvcs, name


def test_services_select_pods_and_ports_exist() -> None:
    deployments = _named("Deployment")
    for svc in _named("Service").values():
        selector = svc["spec"]["selector"]
        matches = [
            d for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]  # fmt: skip
        assert matches, svc["metadata"]["name"]
        ports = {p["name"] for d in matches for c in d["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}  # fmt: skip
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in ports


def test_processors_replicas_probes_resources() -> None:
    partitions = int(_named("ConfigMap")["cdp-config"]["data"]["CDP_TOPIC_PARTITIONS"])
    deployments = _named("Deployment")
    for name in PROCESSORS:
        dep = deployments[f"cdp-{name}"]
        assert dep["spec"]["replicas"] <= partitions
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][-2:] == ["--processor", name]
    for name, spec in _pod_specs():
        for c in spec["containers"]:
            assert c["resources"]["requests"], name
            if _named("Deployment").get(name):
                assert "readinessProbe" in c and "livenessProbe" in c, name


def _cdp_verbs(command: str | list[str]) -> list[str]:
    """The `cdp` sub-commands a container command runs (``cdp db migrate && ...``)."""
    text = command if isinstance(command, str) else " ".join(command)
    return [seg.split("cdp ", 1)[1].split()[0] for seg in text.split("&&") if "cdp " in seg]


def test_commands_exist_in_the_cli() -> None:
    used = [
        verb
        for _, spec in _pod_specs()
        for c in spec["containers"]
        for verb in _cdp_verbs(c["command"])
    ]
    compose = yaml.safe_load((PROJECT_ROOT / "deploy" / "compose.yaml").read_text())
    for svc in compose["services"].values():
        if svc.get("command"):
            used += _cdp_verbs(svc["command"])
    assert {"db", "topics", "collector", "worker"} <= set(used)
    assert set(used) <= _commands(), set(used) - _commands()


def test_compose_processors_match_the_registry() -> None:
    compose = yaml.safe_load(Path(PROJECT_ROOT / "deploy" / "compose.yaml").read_text())
    assert set(PROCESSORS) <= set(compose["services"])


def test_processors_expose_the_metrics_port_they_serve() -> None:
    port = int(_named("ConfigMap")["cdp-config"]["data"]["CDP_METRICS_PORT"])
    deployments = _named("Deployment")
    for name in PROCESSORS:
        template = deployments[f"cdp-{name}"]["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert int(annotations["prometheus.io/port"]) == port, name
        assert annotations["prometheus.io/path"] == "/metrics", name
        ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
        assert ports["metrics"] == port, name
    collector = deployments["cdp-collector"]["spec"]["template"]
    http = {p["name"]: p["containerPort"] for p in collector["spec"]["containers"][0]["ports"]}
    assert int(collector["metadata"]["annotations"]["prometheus.io/port"]) == http["http"]
    compose = yaml.safe_load((PROJECT_ROOT / "deploy" / "compose.yaml").read_text())
    for name in PROCESSORS:
        assert int(compose["services"][name]["environment"]["CDP_METRICS_PORT"]) > 0, name


def test_the_image_user_owns_the_state_directory() -> None:
    """The workers write their state (Faust's data directory) under CDP_STATE_DIR; in
    the image /app belongs to root, so it must point at a directory the user owns."""
    lines = (PROJECT_ROOT / "deploy" / "Dockerfile").read_text().splitlines()
    env = dict(
        part.split("=", 1) for line in lines if line.startswith("ENV ") for part in line.split()[1:]
    )
    user = next(line.split()[1] for line in lines if line.startswith("USER "))
    state = env["CDP_STATE_DIR"]
    assert not state.startswith("/app")
    assert any(f"install -d -o {user} {state}" in line for line in lines)
