"""Edits made with the Kubernetes Python client are drift; trials made by earlier sweepctl are not.

Earlier versions of sweepctl created trials with the Python client's default
field manager, OpenAPI-Generator, which every Python tool (the Kubeflow SDK,
notebooks, scripts) shares. The plan runs as the README Role's user.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from readme_role import readme_role

SPEC = """\
name: old-sweep
backend: kubernetes
namespace: {ns}
hyperParamValues:
  learningRate: [0.001, 0.01]
"""
GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "tfjobs"


@pytest.fixture
def python_client(control_plane):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig), context="admin@testbed")
    yield client.CustomObjectsApi(api)
    api.close()


@pytest.fixture
def restricted(control_plane, namespace: str) -> tuple[str, str]:
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=readme_role())
    control_plane.kubectl("-n", namespace, "create", "rolebinding", "sweepctl", "--role=sweepctl",
                          "--user=restricted")
    return ("--context", "restricted@testbed")


def _recreate_as_earlier_versions_did(control_plane, python_client, namespace: str) -> list[str]:
    """Each trial deleted and created again by the Python client without a fieldManager, as before."""
    out = control_plane.kubectl("-n", namespace, "get", "tfjobs", "-o", "json").stdout
    jobs = json.loads(out)["items"]
    control_plane.kubectl("-n", namespace, "delete", "tfjobs", "--all", "--wait=true")
    for job in jobs:
        meta = job["metadata"]
        body = {"apiVersion": job["apiVersion"], "kind": job["kind"], "spec": job["spec"],
                "metadata": {"name": meta["name"], "labels": meta["labels"], "annotations": meta["annotations"]}}
        python_client.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    return sorted(job["metadata"]["name"] for job in jobs)


def test_old_trials_show_no_drift_and_a_python_edit_shows(
        sweepctl, tmp_path: Path, kube_env, control_plane, namespace: str, python_client, restricted) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SPEC.format(ns=namespace))
    assert sweepctl("apply", spec, "--auto-approve", *restricted).exit_code == 0
    names = _recreate_as_earlier_versions_did(control_plane, python_client, namespace)
    managers = {e["manager"] for e in python_client.get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, names[0])["metadata"]["managedFields"]}
    assert managers == {"OpenAPI-Generator"}  # as earlier versions left them

    res = sweepctl("plan", spec, *restricted)
    assert res.exit_code == 0, res.output
    assert "No changes" in res.stdout and "~ " not in res.stdout, res.stdout

    time.sleep(1.1)  # managedFields times have a precision of one second
    patch = {"spec": {"tfReplicaSpecs": {"Chief": {"template": {"spec": {"nodeSelector": {"pool": "gpu"}}}}}}}
    python_client.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, names[0], patch)

    res = sweepctl("plan", spec, *restricted)
    assert res.exit_code == 0, res.output
    assert f"~ {names[0]}" in res.stdout
    assert "nodeSelector" in res.stdout and "OpenAPI-Generator" in res.stdout
    drift = json.loads(sweepctl("plan", spec, "-o", "json", *restricted).stdout)["drift"]
    assert [d["name"] for d in drift] == [names[0]]


def test_sweepctl_writes_as_itself(sweepctl, tmp_path: Path, kube_env, control_plane, namespace: str,
                                   python_client) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SPEC.format(ns=namespace))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    jobs = json.loads(control_plane.kubectl("-n", namespace, "get", "tfjobs", "-o", "json",
                                            "--show-managed-fields").stdout)["items"]
    assert len(jobs) == 2
    for job in jobs:
        assert {e["manager"] for e in job["metadata"]["managedFields"]} == {"sweepctl"}
