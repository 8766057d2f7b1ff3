"""examples/in-cluster: the Job and CronJob that run sweepctl in a pod, as the README Role's ServiceAccount.

Checked here without a node (the API-only control plane): the objects are valid
(a server-side dry run), the Role is the README's, the image is the one
Dockerfile.sweepctl builds for this version, the pods run as non-root, and every
step's arguments are ones the CLI accepts. (The pods running is the full cluster's
business: tests/e2e/test_in_cluster.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
import yaml
from readme_role import readme_role

import sweepctl
from sweepctl.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "in-cluster"
FILES = ("rbac.yaml", "spec-configmap.yaml", "job.yaml", "cronjob.yaml")


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((EXAMPLE / name).read_text()) if d]


def pod_specs() -> list[dict]:
    job = docs("job.yaml")[0]["spec"]["template"]["spec"]
    cron = docs("cronjob.yaml")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return [job, cron]


def test_the_role_is_the_readmes_and_bound_to_the_service_account() -> None:
    rbac = {d["kind"]: d for d in docs("rbac.yaml")}
    assert rbac["Role"] == yaml.safe_load(readme_role())
    assert rbac["RoleBinding"]["roleRef"]["name"] == "sweepctl"
    assert rbac["RoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": "sweepctl"}]
    assert all(p["serviceAccountName"] == "sweepctl" for p in pod_specs())


def test_every_step_runs_this_versions_image_as_non_root_with_arguments_the_cli_takes() -> None:
    command = typer.main.get_command(app)
    for pod in pod_specs():
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["image"] == f"sweepctl/sweepctl:{sweepctl.__version__}"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            sub = command.commands.get(container["args"][0])
            assert sub is not None, container["args"]
            sub.make_context(container["args"][0], list(container["args"][1:]))  # raises on an unknown flag
            assert "/spec/sweep.yaml" in container["args"]
    assert "USER 1000:1000" in (ROOT / "Dockerfile.sweepctl").read_text()


def test_the_spec_in_the_configmap_is_a_valid_kubernetes_sweep(tmp_path: Path) -> None:
    from sweepctl.commands.common import read_spec

    (tmp_path / "sweep.yaml").write_text(docs("spec-configmap.yaml")[0]["data"]["sweep.yaml"])
    spec = read_spec(tmp_path / "sweep.yaml", max_trials=1000)
    assert spec.backend == "kubernetes" and spec.namespace is None  # the pod's own namespace


@pytest.mark.parametrize("name", FILES)
def test_the_api_server_accepts_every_object(name: str, control_plane, namespace: str) -> None:
    res = control_plane.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(EXAMPLE / name))
    assert "(server dry run)" in res.stdout
