"""plan / apply / destroy against the real API server, as a user would run them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

LAB = """\
name: starry-night
backend: kubernetes
namespace: {ns}
hyperParamValues:
  learningRate: [0.001, 0.01, 0.1]
  hiddenLayers: [5, 6, 7]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def tfjobs(control_plane, ns: str, selector: str = "sweepctl.dev/sweep=starry-night") -> dict[str, dict]:
    out = control_plane.kubectl("-n", ns, "get", "tfjobs", "-l", selector, "-o", "json").stdout
    return {item["metadata"]["name"]: item for item in json.loads(out)["items"]}


def uids(control_plane, ns: str) -> dict[str, str]:
    return {name: obj["metadata"]["uid"] for name, obj in tfjobs(control_plane, ns).items()}


def create_tfjob(control_plane, ns: str, name: str, *, labels: dict[str, str], image: str) -> None:
    """A TFJob made by someone else (kubectl), not by sweepctl."""
    job = {
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
        "metadata": {"name": name, "labels": labels},
        "spec": {"tfReplicaSpecs": {"Chief": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "tensorflow", "image": image}]}}}}},
    }
    control_plane.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(job))


def plan_json(sweepctl, spec: Path, *extra: str) -> dict:
    res = sweepctl("plan", spec, "-o", "json", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture
def lab(tmp_path: Path, namespace: str, kube_env) -> Path:
    return write(tmp_path / "lab.yaml", LAB.format(ns=namespace))


def test_lab_sweep_plans_nine_then_nothing(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    res = sweepctl("plan", lab, "--detailed-exitcode")
    assert res.exit_code == 2, res.output
    assert "Plan: 9 to add, 0 to change, 0 to destroy." in res.stdout
    assert res.stdout.count(" + starry-night-") == 9

    res = sweepctl("apply")  # the saved plan
    assert res.exit_code == 0, res.output
    assert "Apply complete! Resources: 9 added, 0 changed, 0 destroyed." in res.stdout
    jobs = tfjobs(control_plane, namespace)
    assert len(jobs) == 9
    job = jobs["starry-night-hl5-lr0p01-093c0955b1"]
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sweepctl"
    assert json.loads(job["metadata"]["annotations"]["sweepctl.dev/params"]) == {
        "learningRate": 0.01, "hiddenLayers": 5}
    container = job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    assert container["name"] == "tensorflow"
    assert container["args"] == ["--learning-rate", "0.01", "--hidden-layers", "5",
                                 "--log-dir", "/tmp/tensorflow/starry-night/starry-night-hl5-lr0p01-093c0955b1"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]

    svc = json.loads(control_plane.kubectl("-n", namespace, "get", "service", "starry-night-tensorboard",
                                           "-o", "json").stdout)
    assert svc["spec"]["type"] == "ClusterIP"
    control_plane.kubectl("-n", namespace, "get", "deployment", "starry-night-tensorboard")

    res = sweepctl("plan", lab, "--detailed-exitcode")
    assert res.exit_code == 0, res.output
    assert "No changes." in res.stdout
    assert "(Pending)" in res.stdout  # unchanged trials are listed with their state


def test_follow_up_adds_only_new_trials_and_keeps_uids(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    before = uids(control_plane, namespace)
    write(lab, LAB.format(ns=namespace).replace("[0.001, 0.01, 0.1]", "[0.001, 0.003, 0.01, 0.1]")
          .replace("[5, 6, 7]", "[5, 6, 7, 8]"))
    plan = plan_json(sweepctl, lab)
    assert plan["summary"] == {"add": 7, "change": 0, "destroy": 0}
    assert {tuple(sorted(t["params"].items())) for t in plan["add"]} == {
        *((("hiddenLayers", 8), ("learningRate", lr)) for lr in (0.001, 0.003, 0.01, 0.1)),
        *((("hiddenLayers", d), ("learningRate", 0.003)) for d in (5, 6, 7)),
    }
    assert len(plan["unchanged"]) == 9
    assert sweepctl("apply").exit_code == 0
    after = uids(control_plane, namespace)
    assert len(after) == 16
    assert {name: after[name] for name in before} == before


def test_removing_a_value_deletes_its_trials_and_spelling_is_by_value(
    sweepctl, lab: Path, control_plane, namespace: str
) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    write(lab, LAB.format(ns=namespace).replace("[0.001, 0.01, 0.1]", "[1.0e-3, 0.010, 1e-1]")
          .replace("[5, 6, 7]", "[7, 5.0, 6]"))
    assert plan_json(sweepctl, lab)["summary"] == {"add": 0, "change": 0, "destroy": 0}

    write(lab, LAB.format(ns=namespace).replace("[0.001, 0.01, 0.1]", "[0.001, 0.01]"))
    plan = plan_json(sweepctl, lab)
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 3}
    assert {t["params"]["learningRate"] for t in plan["delete"]} == {0.1}
    res = sweepctl("apply")
    assert "0 added, 0 changed, 3 destroyed" in res.stdout
    assert all(job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["args"][1] != "0.1"
               for job in tfjobs(control_plane, namespace).values())
    assert len(tfjobs(control_plane, namespace)) == 6


def test_drift_is_shown_and_left_alone_unless_replaced(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    name = "starry-night-hl7-lr0p1-d24c89c3dc"
    patch = [{"op": "replace", "path": "/spec/tfReplicaSpecs/Chief/template/spec/containers/0/image",
              "value": "someone/else:1"}]
    control_plane.kubectl("-n", namespace, "patch", "tfjob", name, "--type=json", "-p", json.dumps(patch))
    uid = uids(control_plane, namespace)[name]

    res = sweepctl("plan", lab, "--detailed-exitcode")
    assert res.exit_code == 0, res.output  # drift alone is not a change apply would make
    assert f"~ {name}" in res.stdout
    assert "image: spec 'sweepctl/tf-paint:0.1.0', cluster 'someone/else:1'" in res.stdout
    plan = plan_json(sweepctl, lab)
    assert [d["name"] for d in plan["drift"]] == [name]
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}

    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    assert uids(control_plane, namespace)[name] == uid  # left alone

    res = sweepctl("apply", lab, "--auto-approve", "--replace", name)
    assert res.exit_code == 0, res.output
    assert "0 added, 1 changed, 0 destroyed" in res.stdout
    job = tfjobs(control_plane, namespace)[name]
    assert job["metadata"]["uid"] != uid
    assert job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["image"] == \
        "sweepctl/tf-paint:0.1.0"


def test_stale_saved_plan_is_refused(sweepctl, lab: Path, control_plane, namespace: str, tmp_path: Path) -> None:
    assert sweepctl("plan", lab, "-out", tmp_path / "first.plan").exit_code == 0
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    before = uids(control_plane, namespace)
    res = sweepctl("apply", tmp_path / "first.plan")
    assert res.exit_code == 1
    assert "Saved plan is stale" in res.stderr
    assert uids(control_plane, namespace) == before

    # A changed spec makes the plan stale too.
    assert sweepctl("plan", lab).exit_code == 0
    write(lab, LAB.format(ns=namespace).replace("[5, 6, 7]", "[5, 6]"))
    res = sweepctl("apply")
    assert res.exit_code == 1
    assert "spec" in res.stderr and "stale" in res.stderr
    assert uids(control_plane, namespace) == before


def test_foreign_object_with_colliding_name_is_refused(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    name = "starry-night-hl5-lr0p01-093c0955b1"
    create_tfjob(control_plane, namespace, name, labels={"team": "vision"}, image="theirs:1")
    res = sweepctl("apply", lab, "--auto-approve")
    assert res.exit_code == 1
    assert f"{name} already exists and does not belong to sweep starry-night" in res.output
    out = json.loads(control_plane.kubectl("-n", namespace, "get", "tfjob", name, "-o", "json").stdout)
    assert out["metadata"]["labels"] == {"team": "vision"}
    assert out["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["image"] == "theirs:1"
    assert len(tfjobs(control_plane, namespace)) == 8  # the others were applied
    # And destroy never deletes it.
    assert sweepctl("destroy", lab, "--auto-approve").exit_code == 0
    control_plane.kubectl("-n", namespace, "get", "tfjob", name)


def test_other_sweeps_and_unrelated_objects_are_untouched(
    sweepctl, lab: Path, control_plane, namespace: str, tmp_path: Path
) -> None:
    other = write(tmp_path / "other.yaml", LAB.format(ns=namespace).replace("starry-night", "other"))
    assert sweepctl("apply", other, "--auto-approve").exit_code == 0
    control_plane.kubectl("-n", namespace, "create", "deployment", "unrelated", "--image=nginx")
    before = uids(control_plane, namespace, ) | {
        n: o["metadata"]["uid"] for n, o in tfjobs(control_plane, namespace, "sweepctl.dev/sweep=other").items()}

    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    res = sweepctl("destroy", lab, "--auto-approve")
    assert res.exit_code == 0, res.output
    assert "0 added, 0 changed, 9 destroyed" in res.stdout
    assert tfjobs(control_plane, namespace) == {}
    assert control_plane.kubectl("-n", namespace, "get", "deployment,service", "-l",
                                 "sweepctl.dev/sweep=starry-night", "-o", "name").stdout == ""
    still = tfjobs(control_plane, namespace, "sweepctl.dev/sweep=other")
    assert {n: o["metadata"]["uid"] for n, o in still.items()} == before
    control_plane.kubectl("-n", namespace, "get", "deployment", "unrelated")
    control_plane.kubectl("-n", namespace, "get", "deployment", "other-tensorboard")


def test_interrupted_apply_is_finished_by_the_next_without_duplicates(
    sweepctl, lab: Path, control_plane, namespace: str
) -> None:
    from dataclasses import replace

    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend
    from sweepctl.commands.common import make_plan, read_spec

    backend = KubernetesBackend(cluster=Cluster(), namespace=namespace)
    spec = read_spec(lab)
    plan = make_plan(spec, backend)
    # The first 4 creates land, then the process dies.
    partial = replace(plan, trials=plan.trials[:4], support=())

    class Quiet:
        def done(self, change, error): assert error is None

        def running(self, trials, *, finished, queued): pass

    backend.apply(partial, progress=Quiet())
    # A retry of the same saved plan: objects already there with our template count as done,
    # but not as added: added means created by this apply.
    result = backend.apply(plan, progress=Quiet())
    assert result.errors == {} and result.added == 5
    assert len(tfjobs(control_plane, namespace)) == 9
    assert sweepctl("plan", lab, "--detailed-exitcode").exit_code == 0


def test_server_accepts_every_object_sweepctl_writes(control_plane, namespace: str, kube_env) -> None:
    from sweepctl.backends.kubernetes import Cluster
    from sweepctl.core.manifests import tensorboard_deployment, tensorboard_service, tfjob
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand

    spec = load_spec(LAB.format(ns=namespace) + """\
useGPU: true
args: [--epochs, "50"]
tensorboard: {serviceType: LoadBalancer, loadBalancerSourceRanges: [10.0.0.0/8]}
""")
    cluster = Cluster()
    objects = [tfjob(spec, t, namespace=namespace) for t in expand(spec)]
    objects += [tensorboard_deployment(spec, namespace=namespace), tensorboard_service(spec, namespace=namespace)]
    for obj in objects:
        created = cluster.request("POST", cluster.path(obj["kind"], namespace), query=[("dryRun", "All")], body=obj)
        assert created["metadata"]["name"] == obj["metadata"]["name"]
    svc = objects[-1]
    assert svc["spec"]["type"] == "LoadBalancer" and svc["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert objects[0]["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["resources"][
        "limits"]["nvidia.com/gpu"] == "1"
    assert tfjobs(control_plane, namespace) == {}


def test_json_plan_shape(sweepctl, lab: Path) -> None:
    plan = plan_json(sweepctl, lab)
    assert {"sweep", "add", "delete", "unchanged", "drift", "summary"} <= set(plan)
    assert plan["sweep"] == "starry-night"
    assert {"name", "params"} <= set(plan["add"][0])
    assert plan["summary"] == {"add": 9, "change": 0, "destroy": 0}


def test_destroy_asks_and_no_keeps_everything(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    res = sweepctl("destroy", lab, input="no\n")
    assert res.exit_code == 1
    assert "Destroy cancelled" in res.stderr
    assert len(tfjobs(control_plane, namespace)) == 9
    res = sweepctl("destroy", lab, input="yes\n")
    assert res.exit_code == 0
    assert tfjobs(control_plane, namespace) == {}


def test_least_privilege_role_from_the_readme_is_enough(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    role = readme.split("```yaml\napiVersion: rbac.authorization.k8s.io/v1\n", 1)[1].split("```", 1)[0]
    control_plane.kubectl("-n", namespace, "apply", "-f", "-",
                          input="apiVersion: rbac.authorization.k8s.io/v1\n" + role)
    control_plane.kubectl("-n", namespace, "create", "rolebinding", "sweepctl", "--role=sweepctl",
                          "--user=restricted")
    as_restricted = ("--context", "restricted@testbed")
    res = sweepctl("apply", lab, "--auto-approve", *as_restricted)
    assert res.exit_code == 0, res.output
    assert "9 added" in res.stdout
    write(lab, LAB.format(ns=namespace).replace("[5, 6, 7]", "[5, 6]"))
    assert sweepctl("apply", lab, "--auto-approve", *as_restricted).exit_code == 0
    assert sweepctl("destroy", lab, "--auto-approve", *as_restricted).exit_code == 0
    assert tfjobs(control_plane, namespace) == {}

    res = sweepctl("plan", lab, *as_restricted, "-n", "default")
    assert res.exit_code == 1
    assert "403" in res.stderr and "Role" in res.stderr


def test_new_hyperparameter_with_its_default_keeps_existing_trials(
    sweepctl, lab: Path, control_plane, namespace: str
) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    before = uids(control_plane, namespace)
    write(lab, LAB.format(ns=namespace) + "  batchSize: [50, 200]\ndefaults: {batchSize: 50}\n")
    plan = plan_json(sweepctl, lab)
    assert plan["summary"] == {"add": 9, "change": 0, "destroy": 0}
    assert plan["drift"] == []
    assert {t["params"]["batchSize"] for t in plan["add"]} == {200}
    assert sweepctl("apply").exit_code == 0
    after = uids(control_plane, namespace)
    assert {n: after[n] for n in before} == before and len(after) == 18


def test_a_foreign_configmap_named_like_the_pruned_record_is_never_changed(
    sweepctl, lab: Path, control_plane, namespace: str
) -> None:
    from sweepctl.backends.kubernetes import ApiError, Cluster, KubernetesBackend

    control_plane.kubectl("-n", namespace, "create", "configmap", "starry-night-sweepctl-pruned",
                          "--from-literal=owner=someone-else")
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    backend = KubernetesBackend(cluster=Cluster(), namespace=namespace)
    assert backend.observe("starry-night").pruned == {}
    with pytest.raises(ApiError, match="does not belong to sweep starry-night"):
        backend._record_pruned("starry-night", {"starry-night-hl5-lr0p01-093c0955b1": {"metric": 1.0}})
    assert sweepctl("destroy", lab, "--auto-approve").exit_code == 0
    cm = json.loads(control_plane.kubectl("-n", namespace, "get", "configmap", "starry-night-sweepctl-pruned",
                                          "-o", "json").stdout)
    assert cm["data"] == {"owner": "someone-else"}


def test_a_sweep_tfjob_without_a_shard_label_is_still_seen(sweepctl, lab: Path, control_plane, namespace: str) -> None:
    create_tfjob(control_plane, namespace, "starry-night-old", image="old:1", labels={
        "app.kubernetes.io/managed-by": "sweepctl", "sweepctl.dev/sweep": "starry-night",
        "sweepctl.dev/trial": "0123456789"})
    plan = plan_json(sweepctl, lab)
    assert [t["name"] for t in plan["delete"]] == ["starry-night-old"]


def test_a_changed_template_is_drift_with_the_field_that_changed(
    sweepctl, lab: Path, control_plane, namespace: str
) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    before = uids(control_plane, namespace)
    write(lab, LAB.format(ns=namespace) + "image: sweepctl/tf-paint:0.2.0\n")
    plan = plan_json(sweepctl, lab)
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}
    assert len(plan["drift"]) == 9
    assert all(any("image: spec 'sweepctl/tf-paint:0.2.0', cluster 'sweepctl/tf-paint:0.1.0'" in d for d in t["diff"])
               for t in plan["drift"])
    res = sweepctl("apply", lab, "--auto-approve", "--replace-drifted")
    assert res.exit_code == 0 and "0 added, 9 changed, 0 destroyed" in res.stdout
    after = tfjobs(control_plane, namespace)
    assert set(after) == set(before) and all(after[n]["metadata"]["uid"] != before[n] for n in before)
    assert plan_json(sweepctl, lab)["drift"] == []
