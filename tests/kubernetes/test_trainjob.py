"""TrainJob trials (kubernetes.kind: TrainJob) against the real API server with Trainer v2's CRDs.

No controller runs here, so states are set on the status subresource the way
Trainer v2 sets them; the full cluster (tests/e2e) trains TrainJobs for real.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from readme_role import readme_role

from sweepctl.backends.kubernetes import trainjob_state

SPEC = """\
name: tj
backend: kubernetes
namespace: {ns}
kubernetes: {{kind: TrainJob, runtime: {runtime}}}
hyperParamValues:
  learningRate: [0.01, 0.1]
  hiddenLayers: [3, 4]
"""


def objects(control_plane, ns: str, kind: str) -> dict[str, dict]:
    out = control_plane.kubectl("-n", ns, "get", kind, "-o", "json").stdout
    return {item["metadata"]["name"]: item for item in json.loads(out)["items"]}


def plan_json(sweepctl, spec: Path, *extra: str) -> dict:
    res = sweepctl("plan", spec, "-o", "json", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture
def runtime_name(control_plane, namespace: str) -> Iterator[str]:
    """A runtime name of this test's own: runtimes are cluster-scoped, and tests share the cluster."""
    name = f"rt-{namespace}"
    yield name
    control_plane.kubectl("delete", "clustertrainingruntime", name, "--ignore-not-found", check=False)


@pytest.fixture
def spec(tmp_path: Path, namespace: str, runtime_name: str, kube_env) -> Path:
    path = tmp_path / "tj.yaml"
    path.write_text(SPEC.format(ns=namespace, runtime=runtime_name))
    return path


def test_a_trainjob_sweep_says_its_runtime_is_missing_then_runs_on_it(
        sweepctl, spec: Path, control_plane, namespace: str, runtime_name: str) -> None:
    res = sweepctl("plan", spec)
    assert res.exit_code == 0, res.output
    assert f"needed first: ClusterTrainingRuntime {runtime_name} does not exist" in res.stdout
    assert plan_json(sweepctl, spec)["requires"] == [
        (f"ClusterTrainingRuntime {runtime_name} does not exist: create it, or set kubernetes.runtime to one "
         "that exists (`kubectl get clustertrainingruntimes`)")]
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 1 and "nothing was changed" in res.stderr, res.output
    assert objects(control_plane, namespace, "trainjobs") == {}
    assert objects(control_plane, namespace, "deployments") == {}

    res = sweepctl("runtime", spec, "--apply")
    assert res.exit_code == 0 and f"ClusterTrainingRuntime {runtime_name} created" in res.stdout, res.output
    assert sweepctl("runtime", spec, "--apply").stdout.startswith(f"ClusterTrainingRuntime {runtime_name} unchanged")
    live_runtime = json.loads(control_plane.kubectl("get", "clustertrainingruntime", runtime_name, "-o",
                                                    "json").stdout)
    (job,) = live_runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert job["template"]["metadata"]["labels"] == {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
    # Retried as a TFJob's Chief: exit 1-127 fails for good, a kill from outside runs again.
    assert job["template"]["spec"]["backoffLimit"] == 3
    fail_job = job["template"]["spec"]["podFailurePolicy"]["rules"][1]
    assert fail_job["action"] == "FailJob" and fail_job["onExitCodes"]["values"] == list(range(1, 128))
    assert job["template"]["spec"]["template"]["spec"]["containers"][0]["name"] == "node"

    assert plan_json(sweepctl, spec)["requires"] == []
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    jobs = objects(control_plane, namespace, "trainjobs")
    assert len(jobs) == 4
    for name, job in jobs.items():
        body = job["spec"]
        assert body["runtimeRef"]["name"] == runtime_name
        params = json.loads(job["metadata"]["annotations"]["sweepctl.dev/params"])
        args = body["trainer"]["args"]
        assert args[args.index("--learning-rate") + 1] == str(params["learningRate"])
        assert args[-2:] == ["--log-dir", f"/tmp/tensorflow/tj/{name}"]
        assert body["trainer"]["resourcesPerNode"]["requests"] == {"cpu": "1", "memory": "1Gi"}
        (patch,) = body["runtimePatches"]
        (rjob,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
        pod = rjob["template"]["spec"]["template"]
        # The pods get the trial's labels and the log volume: a TrainJob's own labels stay on it.
        assert pod["metadata"]["labels"]["sweepctl.dev/trial"] == job["metadata"]["labels"]["sweepctl.dev/trial"]
        assert pod["spec"]["volumes"] == [{"name": "logs", "persistentVolumeClaim": {"claimName": "sweepctl-logs"}}]
    after = plan_json(sweepctl, spec)
    assert after["summary"] == {"add": 0, "change": 0, "destroy": 0} and len(after["unchanged"]) == 4
    assert sweepctl("destroy", spec, "--auto-approve").exit_code == 0
    assert objects(control_plane, namespace, "trainjobs") == {}


def test_trainjob_states_read_as_users_see_them(sweepctl, spec: Path, control_plane, namespace: str) -> None:
    assert sweepctl("runtime", spec, "--apply").exit_code == 0
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    names = sorted(objects(control_plane, namespace, "trainjobs"))

    def condition(kind: str) -> dict:
        return {"type": kind, "status": "True", "reason": kind, "message": kind,
                "lastTransitionTime": "2026-11-29T00:00:00Z"}

    def jobs_status(*, ready: int, active: int) -> list[dict]:
        return [{"name": "node", "ready": ready, "active": active, "succeeded": 0, "failed": 0, "suspended": 0}]

    statuses = {
        names[0]: {"conditions": [condition("Complete")], "jobsStatus": jobs_status(ready=0, active=0)},
        names[1]: {"conditions": [condition("Failed")]},
        names[2]: {"jobsStatus": jobs_status(ready=1, active=1)},  # running: no condition yet
        names[3]: {"jobsStatus": jobs_status(ready=0, active=1)},  # its pod waits (for a GPU, say)
    }
    for name, status in statuses.items():
        control_plane.kubectl("-n", namespace, "patch", "trainjob", name, "--subresource=status", "--type=merge",
                              "-p", json.dumps({"status": status}))
    plan = plan_json(sweepctl, spec)
    assert {t["name"]: t["state"] for t in plan["unchanged"]} == {
        names[0]: "Succeeded", names[1]: "Failed", names[2]: "Running", names[3]: "Pending"}


def test_trainjob_state() -> None:
    assert trainjob_state(None) == "Pending"
    assert trainjob_state({"conditions": [{"type": "Suspended", "status": "True"}]}) == "Suspended"
    # Resumed: the Suspended condition stays, False, while the job runs.
    assert trainjob_state({"conditions": [{"type": "Suspended", "status": "False"}],
                           "jobsStatus": [{"name": "node", "ready": 1, "active": 1}]}) == "Running"
    assert trainjob_state({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}) \
        == "Failed"


def test_switching_kind_is_drift_until_replace_drifted_moves_the_trials(
        sweepctl, spec: Path, control_plane, namespace: str) -> None:
    tfjob_spec = spec.read_text().replace("kubernetes: {kind: TrainJob, runtime: ", "# ")
    spec_tf = spec.with_name("tf.yaml")
    spec_tf.write_text(tfjob_spec)
    assert sweepctl("apply", spec_tf, "--auto-approve").exit_code == 0
    before = {n: j["metadata"]["uid"] for n, j in objects(control_plane, namespace, "tfjobs").items()}
    assert len(before) == 4
    assert sweepctl("runtime", spec, "--apply").exit_code == 0

    plan = plan_json(sweepctl, spec)
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0} and plan["changes"] is False
    assert sorted(d["name"] for d in plan["drift"]) == sorted(before)
    assert {tuple(d["diff"]) for d in plan["drift"]} == {("kind: spec TrainJob, cluster TFJob",)}
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0  # drift is left alone
    assert {n: j["metadata"]["uid"] for n, j in objects(control_plane, namespace, "tfjobs").items()} == before

    plan = plan_json(sweepctl, spec, "--replace-drifted")
    assert plan["summary"] == {"add": 0, "change": 4, "destroy": 0}
    assert sweepctl("apply", spec, "--replace-drifted", "--auto-approve").exit_code == 0
    assert objects(control_plane, namespace, "tfjobs") == {}
    assert sorted(objects(control_plane, namespace, "trainjobs")) == sorted(before)
    assert plan_json(sweepctl, spec)["summary"] == {"add": 0, "change": 0, "destroy": 0}


def test_a_runtime_of_another_owner_is_never_changed(sweepctl, spec: Path, control_plane,
                                                     runtime_name: str) -> None:
    foreign = {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "ClusterTrainingRuntime",
               "metadata": {"name": runtime_name},
               "spec": {"mlPolicy": {"numNodes": 2}, "template": {"spec": {"replicatedJobs": []}}}}
    control_plane.kubectl("create", "-f", "-", input=json.dumps(foreign))
    res = sweepctl("runtime", spec, "--apply")
    assert res.exit_code == 1 and "was not created by sweepctl" in res.stderr, res.output
    live = json.loads(control_plane.kubectl("get", "clustertrainingruntime", runtime_name, "-o", "json").stdout)
    assert live["spec"]["mlPolicy"] == {"numNodes": 2}


def test_the_readme_role_runs_a_trainjob_sweep_and_an_older_tfjob_only_role_a_tfjob_sweep(
        sweepctl, spec: Path, control_plane, namespace: str, tmp_path: Path) -> None:
    """Least privilege: the README's Role covers both kinds; a Role from before TrainJobs still
    runs TFJob sweeps. Neither can read cluster-scoped runtimes, so plan cannot tell one is missing."""
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=readme_role())
    control_plane.kubectl("create", "rolebinding", "sweepctl", "-n", namespace, "--role", "sweepctl",
                          "--user", "restricted")
    as_user = ("--context", "restricted@testbed")
    plan = plan_json(sweepctl, spec, *as_user)
    assert plan["summary"]["add"] == 4 and plan["requires"] == []
    assert sweepctl("apply", spec, *as_user, "--auto-approve").exit_code == 0
    assert len(objects(control_plane, namespace, "trainjobs")) == 4
    assert sweepctl("destroy", spec, *as_user, "--auto-approve").exit_code == 0
    assert objects(control_plane, namespace, "trainjobs") == {}

    old = re.sub(r"- apiGroups: \[trainer\.kubeflow\.org\]\n  resources: \[trainjobs\].*\n  verbs: .*\n", "",
                 readme_role())
    assert "trainjobs" not in old and "tfjobs" in old
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=old)
    tf = tmp_path / "tf.yaml"
    tf.write_text(spec.read_text().replace("kubernetes: {kind: TrainJob, runtime: ", "# "))
    assert sweepctl("apply", tf, *as_user, "--auto-approve").exit_code == 0
    assert len(objects(control_plane, namespace, "tfjobs")) == 4
    assert plan_json(sweepctl, tf, *as_user)["summary"] == {"add": 0, "change": 0, "destroy": 0}


def test_trial_names_too_long_for_a_trainjob_are_refused_before_anything_is_created(
        sweepctl, spec: Path, control_plane, namespace: str) -> None:
    long = spec.read_text().replace("name: tj", "name: a-rather-long-sweep-name-for-jobset")
    spec.write_text(long)
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 1, res.output
    assert "longer than the 48 characters a TrainJob may have" in res.stderr
    assert "shorten the sweep's name (a-rather-long-sweep-name-for-jobset)" in res.stderr
    assert objects(control_plane, namespace, "trainjobs") == {} and objects(control_plane, namespace, "services") == {}
