"""A sweep of the user's own image and command on Kubernetes, as the README Role's user, against the real API server.

No controller runs here: what is checked is what sweepctl writes (the trial
objects' command, args and environment) and how it plans changes to them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from readme_role import readme_role

SPEC = """\
name: own
backend: kubernetes
namespace: {ns}
image: registry.example/me/digits:1
kubernetes: {{kind: {kind}}}
command: [python, train.py, "--learning_rate=${{learningRate}}", --log_dir, "${{logDir}}"]
args: ["${{args}}"]
hyperParamValues:
  learningRate: [0.01, 0.001]
"""
PLURAL = {"TFJob": "tfjobs", "TrainJob": "trainjobs"}
AS_USER = ("--context", "restricted@testbed")


def live(control_plane, ns: str, kind: str) -> dict[str, dict]:
    out = control_plane.kubectl("-n", ns, "get", PLURAL[kind], "-o", "json").stdout
    return {item["metadata"]["name"]: item for item in json.loads(out)["items"]}


def trainer(obj: dict) -> dict:
    """Where the command lands: the TFJob's Chief container, or the TrainJob's trainer."""
    if obj["kind"] == "TFJob":
        return obj["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    return obj["spec"]["trainer"]


def plan_json(sweepctl, spec: Path, *extra: str) -> dict:
    res = sweepctl("plan", spec, "-o", "json", *AS_USER, *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture
def as_readme_user(control_plane, namespace: str, kube_env) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=readme_role())
    control_plane.kubectl("create", "rolebinding", "sweepctl", "-n", namespace, "--role", "sweepctl",
                          "--user", "restricted")


@pytest.mark.parametrize("kind", ["TFJob", "TrainJob"])
def test_the_command_is_the_containers_command_and_a_change_to_it_is_drift(
        sweepctl, control_plane, namespace: str, tmp_path: Path, as_readme_user, kind: str) -> None:
    spec = tmp_path / "own.yaml"
    text = SPEC.format(ns=namespace, kind=kind)
    spec.write_text(text)
    res = sweepctl("apply", spec, *AS_USER, "--auto-approve")
    assert res.exit_code == 0, res.output
    objects = live(control_plane, namespace, kind)
    assert len(objects) == 2
    for name, obj in objects.items():
        lr = json.loads(obj["metadata"]["annotations"]["sweepctl.dev/params"])["learningRate"]
        folder = f"/tmp/tensorflow/own/{name}"
        run = trainer(obj)
        assert run["image"] == "registry.example/me/digits:1"
        assert run["command"] == ["python", "train.py", f"--learning_rate={lr}", "--log_dir", folder,
                                  f"--learningRate={lr}"]
        assert run["args"] == []  # the image's entrypoint and CMD are both replaced
        assert run["env"] == [{"name": "SWEEPCTL_LOG_DIR", "value": folder},
                              {"name": "SWEEPCTL_TRIAL", "value": name},
                              {"name": "SWEEPCTL_SWEEP", "value": "own"}]
    assert plan_json(sweepctl, spec)["changes"] is False  # what the API server kept is what sweepctl wrote

    spec.write_text(text.replace("[0.01, 0.001]", "[0.01, 0.001, 0.1]"))
    plan = plan_json(sweepctl, spec)
    assert plan["summary"] == {"add": 1, "change": 0, "destroy": 0} and plan["drift"] == []
    assert sweepctl("apply", spec, *AS_USER, "--auto-approve").exit_code == 0
    before = {n: o["metadata"]["uid"] for n, o in live(control_plane, namespace, kind).items()}
    assert set(objects) < set(before)

    spec.write_text(text.replace("[0.01, 0.001]", "[0.01, 0.001, 0.1]").replace("train.py", "train2.py"))
    plan = plan_json(sweepctl, spec)
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}
    assert sorted(d["name"] for d in plan["drift"]) == sorted(before)
    where = ("spec.tfReplicaSpecs.Chief.template.spec.containers[0]" if kind == "TFJob" else "spec.trainer")
    assert {tuple(d["diff"]) for d in plan["drift"]} == {(f"{where}.command[1]: spec 'train2.py', cluster 'train.py'",)}
    res = sweepctl("apply", spec, *AS_USER, "--auto-approve")
    assert res.exit_code == 0 and "No changes" in res.stdout, res.output
    assert {n: o["metadata"]["uid"] for n, o in live(control_plane, namespace, kind).items()} == before

    res = sweepctl("apply", spec, *AS_USER, "--auto-approve", "--replace-drifted")
    assert res.exit_code == 0 and "0 added, 3 changed, 0 destroyed" in res.stdout, res.output
    after = live(control_plane, namespace, kind)
    assert set(after) == set(before) and all(after[n]["metadata"]["uid"] != before[n] for n in before)
    assert {trainer(o)["command"][1] for o in after.values()} == {"train2.py"}
    assert plan_json(sweepctl, spec, "--detailed-exitcode")["drift"] == []


def test_a_tf_paint_sweep_that_takes_a_command_shows_every_trial_as_drift(
        sweepctl, control_plane, namespace: str, tmp_path: Path, as_readme_user) -> None:
    spec = tmp_path / "own.yaml"
    plain = f"name: own\nbackend: kubernetes\nnamespace: {namespace}\nhyperParamValues: {{learningRate: [0.01, 0.1]}}\n"
    spec.write_text(plain)
    assert sweepctl("apply", spec, *AS_USER, "--auto-approve").exit_code == 0
    spec.write_text(plain + "command: [python, train.py, '${args}']\n")
    plan = plan_json(sweepctl, spec)
    assert len(plan["drift"]) == 2 and plan["summary"]["change"] == 0
    diff = "\n".join(plan["drift"][0]["diff"])
    assert "containers[0].command: missing in the cluster" in diff and "containers[0].args" in diff
