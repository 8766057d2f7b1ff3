"""What the README promises about Kubernetes, each checked against the real API server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from test_plan_apply import LAB, create_tfjob, lab, plan_json, tfjobs, uids, write  # noqa: F401 - lab is a fixture

CONTAINER = ("spec", "tfReplicaSpecs", "Chief", "template", "spec", "containers", 0)


def container(job: dict) -> dict:
    node = job
    for key in CONTAINER:
        node = node[key]
    return node


class Quiet:
    def done(self, change, error) -> None:
        pass

    def running(self, trials, *, finished: int, queued: int) -> None:
        pass


def kubeconfig_copy(control_plane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **context: str) -> Path:
    """The test control plane's kubeconfig, with the admin context changed (namespace, cluster)."""
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    if context.get("cluster") == "elsewhere":
        config["clusters"].append({"name": "elsewhere", "cluster": {"server": "https://127.0.0.1:9",
                                                                     "insecure-skip-tls-verify": True}})
    for ctx in config["contexts"]:
        if ctx["name"] == "admin@testbed":
            ctx["context"].update(context)
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def test_deletes_carry_the_plans_uid_so_an_object_recreated_meanwhile_is_not_deleted(
    sweepctl, lab: Path, control_plane, namespace: str
) -> None:
    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend
    from sweepctl.commands.common import make_plan, read_spec

    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    write(lab, LAB.format(ns=namespace).replace("[5, 6, 7]", "[5, 6]"))
    backend = KubernetesBackend(cluster=Cluster(), namespace=namespace)
    plan = make_plan(read_spec(lab), backend)
    doomed = sorted(c.name for c in plan.delete)
    assert len(doomed) == 3
    # Someone deletes one and creates it again, as the sweep's, between plan and apply.
    control_plane.kubectl("-n", namespace, "delete", "tfjob", doomed[0])
    create_tfjob(control_plane, namespace, doomed[0], image="again:1", labels={
        "app.kubernetes.io/managed-by": "sweepctl", "sweepctl.dev/sweep": "starry-night"})
    recreated = uids(control_plane, namespace)[doomed[0]]

    result = backend.apply(plan, progress=Quiet())
    assert list(result.errors) == [doomed[0]]
    assert "was replaced since the plan was made; not deleted" in result.errors[doomed[0]]
    left = uids(control_plane, namespace)
    assert left[doomed[0]] == recreated and doomed[1] not in left and doomed[2] not in left


def test_apply_deletes_before_it_creates(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    from sweepctl.backends.kubernetes import Cluster

    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    cluster = Cluster()
    path = cluster.path("TFJob", namespace)
    since = cluster.request("GET", path)["metadata"]["resourceVersion"]
    write(lab, LAB.format(ns=namespace).replace("[5, 6, 7]", "[5, 6, 8]"))
    res = sweepctl("apply", lab, "--auto-approve")
    assert res.exit_code == 0 and "3 added, 0 changed, 3 destroyed" in res.stdout, res.output
    # The API server's own record of what happened since, in order.
    stream = cluster.request_bytes("GET", path, query=[("watch", "1"), ("resourceVersion", since),
                                                       ("timeoutSeconds", "1")])
    kinds = [json.loads(line)["type"] for line in stream.splitlines() if line.strip()]
    kinds = [k for k in kinds if k in ("ADDED", "DELETED")]
    assert kinds == ["DELETED"] * 3 + ["ADDED"] * 3


def test_a_saved_plan_is_refused_when_the_context_points_elsewhere(
    sweepctl, lab: Path, control_plane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sweepctl("plan", lab, "-out", tmp_path / "lab.plan").exit_code == 0
    kubeconfig_copy(control_plane, tmp_path, monkeypatch, cluster="elsewhere")
    res = sweepctl("apply", tmp_path / "lab.plan")
    assert res.exit_code == 1
    assert "the saved plan was made for" in res.stderr and "https://127.0.0.1:9" in res.stderr
    assert tfjobs(control_plane, namespace) == {}


def test_tensorboard_is_updated_in_place(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0

    def objects() -> dict[str, dict]:
        out = control_plane.kubectl("-n", namespace, "get", "deployment,service", "-o", "json").stdout
        return {i["kind"]: i for i in json.loads(out)["items"]}

    before = objects()
    write(lab, LAB.format(ns=namespace) + "tensorboard: {image: 'tensorflow/tensorflow:2.20.0'}\n")
    res = sweepctl("plan", lab)
    assert "~ TensorBoard Deployment starry-night-tensorboard" in res.stdout
    assert "image: spec 'tensorflow/tensorflow:2.20.0', cluster 'tensorflow/tensorflow:2.21.0'" in res.stdout
    assert "Service" not in res.stdout and "Plan: 0 to add, 0 to change, 0 to destroy." in res.stdout
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    after = objects()
    assert after["Deployment"]["metadata"]["uid"] == before["Deployment"]["metadata"]["uid"]
    assert after["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "tensorflow/tensorflow:2.20.0"
    assert after["Service"]["metadata"]["resourceVersion"] == before["Service"]["metadata"]["resourceVersion"]
    assert plan_json(sweepctl, lab)["tensorboard"] == [
        {"kind": "Deployment", "name": "starry-night-tensorboard", "action": "noop", "diff": []},
        {"kind": "Service", "name": "starry-night-tensorboard", "action": "noop", "diff": []}]


def test_the_first_20_unchanged_trials_are_listed_and_the_rest_counted(
    sweepctl, lab: Path, control_plane, namespace: str
) -> None:
    write(lab, LAB.format(ns=namespace).replace("[0.001, 0.01, 0.1]", "[0.001, 0.002, 0.01, 0.02, 0.1]")
          .replace("[5, 6, 7]", "[3, 4, 5, 6, 7]"))
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    names = tfjobs(control_plane, namespace)
    assert len(names) == 25
    res = sweepctl("plan", lab)
    assert res.exit_code == 0
    assert sum(name in res.stdout for name in names) == 20
    assert "... and 5 more unchanged trials (5 Pending)" in res.stdout


def test_resource_defaults(sweepctl, lab: Path, control_plane, namespace: str, tmp_path: Path) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    for job in tfjobs(control_plane, namespace).values():
        assert container(job)["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"},
                                               "limits": {"memory": "2Gi"}}
    gpu = write(tmp_path / "gpu.yaml", f"name: gpu\nbackend: kubernetes\nnamespace: {namespace}\nuseGPU: true\n"
                                       "hyperParamValues: {learningRate: [0.01]}\n")
    assert sweepctl("apply", gpu, "--auto-approve").exit_code == 0
    (job,) = tfjobs(control_plane, namespace, "sweepctl.dev/sweep=gpu").values()
    assert container(job)["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"},
                                           "limits": {"memory": "2Gi", "nvidia.com/gpu": "1"}}


def test_the_namespace_comes_from_the_kubeconfig_context(
    sweepctl, control_plane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig_copy(control_plane, tmp_path, monkeypatch, namespace=namespace)
    spec = write(tmp_path / "s.yaml", "name: ctx\nbackend: kubernetes\nhyperParamValues: {learningRate: [0.01, 0.1]}\n")
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 0, res.output
    assert len(tfjobs(control_plane, namespace, "sweepctl.dev/sweep=ctx")) == 2
    assert tfjobs(control_plane, "default", "sweepctl.dev/sweep=ctx") == {}
