"""Sweeps that really train: the lab's grid, failures, kills, GPU queueing, least privilege.

Each test runs sweepctl as a user would, with no --tensorboard-url: metrics come
from the sweep's own TensorBoard pod through the API server's service proxy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from readme_role import readme_role
from realcluster import (
    FullCluster,
    Namespace,
    conditions,
    json_out,
    kill_trainer,
    served_metrics,
    state,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = '[--epochs, "3", --size, "24"]'

LAB_SPEC = f"""\
name: lab
backend: kubernetes
args: {TINY}
resources:
  requests: {{cpu: 500m, memory: 512Mi}}
hyperParamValues:
  learningRate: [0.001, 0.01, 0.1]
  hiddenLayers: [5, 6, 7]
"""


def tfjobs(cluster: FullCluster, ns: str) -> dict[str, dict[str, Any]]:
    return {j["metadata"]["name"]: j for j in cluster.get("tfjobs", "-n", ns)["items"]}


def pods(cluster: FullCluster, ns: str, selector: str = "training.kubeflow.org/job-name") -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in cluster.get("pods", "-n", ns, "-l", selector)["items"]}


def all_in(cluster: FullCluster, ns: str, wanted: str, count: int) -> dict[str, dict] | None:
    jobs = tfjobs(cluster, ns)
    return jobs if len(jobs) == count and all(state(j) == wanted for j in jobs.values()) else None


def test_lab_grid_trains_for_real(full_cluster: FullCluster, e2e_namespace: Namespace, sweepctl,
                                  tmp_path: Path) -> None:
    ns = e2e_namespace.name
    spec = tmp_path / "lab.yaml"
    spec.write_text(LAB_SPEC)
    started = time.monotonic()
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0

    jobs = wait_for("9 TFJobs Succeeded", lambda: all_in(full_cluster, ns, "Succeeded", 9), 600, 1)
    print(f"\napply to 9 trials Succeeded on the cluster: {time.monotonic() - started:.1f} s")
    for name, job in jobs.items():
        assert conditions(job)[:1] == ["Created"] and "Running" in conditions(job), conditions(job)
    trial_pods = pods(full_cluster, ns)
    assert len(trial_pods) == 9
    for name, job in jobs.items():
        pod = trial_pods[f"{name}-chief-0"]
        (container,) = pod["spec"]["containers"]
        assert container["name"] == "tensorflow"
        params = json.loads(job["metadata"]["annotations"]["sweepctl.dev/params"])
        args = container["args"]
        assert args[args.index("--learning-rate") + 1] == str(params["learningRate"])
        assert args[args.index("--hidden-layers") + 1] == str(params["hiddenLayers"])
        status = pod["status"]["containerStatuses"][0]
        assert status["state"]["terminated"]["exitCode"] == 0 and status["restartCount"] == 0
    # cleanPodPolicy None keeps finished pods, so their logs stay readable.
    logs = full_cluster.kubectl("logs", "-n", ns, next(iter(trial_pods))).stdout
    assert "psnr" in logs.lower(), logs[-2000:]

    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}
    assert sorted(t["state"] for t in plan["unchanged"]) == ["Succeeded"] * 9
    assert sweepctl("plan", spec, "-n", ns, "--detailed-exitcode").exit_code == 0

    # Metrics through the service proxy, from the TensorBoard pod, as the event files on the volume hold them.
    rows = served_metrics(sweepctl, spec, ns, {n: e2e_namespace.volume / "lab" / n for n in jobs})
    assert [r["state"] for r in rows] == ["Succeeded"] * 9

    sheet = tmp_path / "sheet.png"
    assert sweepctl("report", spec, "-n", ns, "--out", sheet).exit_code == 0
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and sheet.stat().st_size > 10_000

    # Prune to the best two: 7 TFJobs go, and the garbage collector takes their pods.
    best = [r["name"] for r in sorted(rows, key=lambda r: r["rank"])[:2]]
    assert sweepctl("prune", spec, "-n", ns, "--keep", "best=2", "--auto-approve").exit_code == 0
    assert sorted(tfjobs(full_cluster, ns)) == sorted(best)
    wait_for("the pruned trials' pods to be garbage-collected",
             lambda: sorted(pods(full_cluster, ns)) == sorted(f"{b}-chief-0" for b in best), 60)
    for row in rows:  # logs outlive their jobs
        assert list((e2e_namespace.volume / "lab" / row["name"]).glob("events.out.tfevents.*")), row["name"]
    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert plan["add"] == [] and len(plan["pruned"]) == 7

    # A follow-up with one more learning rate trains only the new trials.
    kept = {n: j["metadata"]["uid"] for n, j in tfjobs(full_cluster, ns).items()}
    kept_pods = {n: p["metadata"]["uid"] for n, p in pods(full_cluster, ns).items()}
    spec.write_text(LAB_SPEC.replace("[0.001, 0.01, 0.1]", "[0.001, 0.01, 0.1, 0.003]"))
    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert sorted(t["params"]["learningRate"] for t in plan["add"]) == [0.003] * 3
    assert plan["summary"] == {"add": 3, "change": 0, "destroy": 0}
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0
    jobs = wait_for("the 3 new trials to succeed", lambda: all_in(full_cluster, ns, "Succeeded", 5), 300, 1)
    assert {n: jobs[n]["metadata"]["uid"] for n in kept} == kept
    now = pods(full_cluster, ns)
    assert {n: now[n]["metadata"]["uid"] for n in kept_pods} == kept_pods
    assert all(now[n]["status"]["containerStatuses"][0]["restartCount"] == 0 for n in kept_pods)


def test_a_trial_that_fails_by_itself_is_not_retried(full_cluster: FullCluster, e2e_namespace: Namespace,
                                                      sweepctl, tmp_path: Path) -> None:
    ns = e2e_namespace.name
    spec = tmp_path / "bad.yaml"
    # The trainer rejects the flag and exits 2: a failure of its own.
    spec.write_text("name: bad\nbackend: kubernetes\nargs: [--no-such-flag]\n"
                    "hyperParamValues: {learningRate: [0.01]}\n")
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0
    jobs = wait_for("the TFJob to fail", lambda: all_in(full_cluster, ns, "Failed", 1), 180, 1)
    (name,) = jobs
    uid = jobs[name]["metadata"]["uid"]
    time.sleep(5)  # long enough for a restart to show, were there one
    (pod,) = pods(full_cluster, ns).values()
    status = pod["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == 2 and status["restartCount"] == 0
    assert "Restarting" not in conditions(tfjobs(full_cluster, ns)[name])

    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert [t["state"] for t in plan["unchanged"]] == ["Failed"]
    # Its TensorBoard may still be starting: status shows the state all the same.
    rows = json_out(sweepctl("status", spec, "-n", ns, "-o", "json"))
    assert [r["state"] for r in rows] == ["Failed"]

    # apply --replace runs it again: a new TFJob and a new pod that ran.
    assert sweepctl("apply", spec, "-n", ns, "--replace", name, "--auto-approve").exit_code == 0
    jobs = wait_for("the replaced TFJob to fail again",
                    lambda: (j := all_in(full_cluster, ns, "Failed", 1)) and j[name]["metadata"]["uid"] != uid
                    and j, 180, 1)
    (pod2,) = pods(full_cluster, ns).values()
    assert pod2["metadata"]["uid"] != pod["metadata"]["uid"]
    assert pod2["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 2


def test_a_trial_killed_from_outside_is_restarted(full_cluster: FullCluster, e2e_namespace: Namespace,
                                                   sweepctl, tmp_path: Path) -> None:
    ns = e2e_namespace.name
    spec = tmp_path / "kill.yaml"
    spec.write_text('name: kill\nbackend: kubernetes\nargs: [--epochs, "30", --size, "24"]\n'
                    "hyperParamValues: {learningRate: [0.01]}\n")
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0
    (name,) = wait_for("the TFJob", lambda: tfjobs(full_cluster, ns), 30)
    kill_trainer(name)
    job = wait_for("the operator to restart it",
                   lambda: (j := tfjobs(full_cluster, ns)[name]) and "Restarting" in conditions(j) and j, 120, 0.5)
    assert state(job) in {"Restarting", "Running"}
    wait_for("the restarted trial to succeed", lambda: all_in(full_cluster, ns, "Succeeded", 1), 300, 1)
    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert [t["state"] for t in plan["unchanged"]] == ["Succeeded"]


def test_gpu_trials_queue_for_the_gpus(full_cluster: FullCluster, e2e_namespace: Namespace, sweepctl,
                                       tmp_path: Path) -> None:
    """Three kwok nodes with one GPU each: 3 trials run, 6 wait, as in the lab.

    The kwok nodes are fake: their pods are marked Running and never train, so
    this tests scheduling and states only."""
    ns = e2e_namespace.name
    spec = tmp_path / "gpu.yaml"
    text = LAB_SPEC.replace("name: lab", "name: gpu\nuseGPU: true")
    spec.write_text(text)
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0

    def queued() -> tuple[list[str], list[dict]] | None:
        jobs = tfjobs(full_cluster, ns)
        running = sorted(n for n, j in jobs.items() if state(j) == "Running")
        pending = [p for p in pods(full_cluster, ns).values() if p["status"].get("phase") == "Pending"
                   and any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                           for c in p["status"].get("conditions") or [])]
        return (running, pending) if len(running) == 3 and len(pending) == 6 else None

    running, pending = wait_for("3 running and 6 unschedulable trials", queued, 120, 1)
    for pod in pending:
        message = next(c["message"] for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
        assert "Insufficient nvidia.com/gpu" in message, message
    running_pods = [p for p in pods(full_cluster, ns).values() if p["status"].get("phase") == "Running"]
    assert all(p["spec"]["nodeName"].startswith("sweepctl-gpu-") for p in running_pods)
    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    states = sorted(t["state"] for t in plan["unchanged"])
    assert states == ["Pending"] * 6 + ["Running"] * 3, states

    # Drop the learning rate of one running trial: its 3 trials are deleted,
    # which frees at least one GPU, and waiting trials start on it.
    jobs = tfjobs(full_cluster, ns)
    lr = json.loads(jobs[running[0]]["metadata"]["annotations"]["sweepctl.dev/params"])["learningRate"]
    values = [v for v in (0.001, 0.01, 0.1) if v != lr]
    spec.write_text(text.replace("[0.001, 0.01, 0.1]", json.dumps(values)))
    was_pending = sorted(set(jobs) - set(running))
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0

    def started() -> list[str] | None:
        jobs = tfjobs(full_cluster, ns)
        now = [n for n, j in jobs.items() if state(j) == "Running"]
        return now if len(jobs) == 6 and len(now) == 3 else None

    now_running = wait_for("waiting trials to take the freed GPUs", started, 120, 1)
    assert set(now_running) & set(was_pending)


@pytest.mark.parametrize("kind", ["TFJob", "TrainJob"])
def test_the_readme_role_is_enough_for_every_command(full_cluster: FullCluster, e2e_namespace: Namespace,
                                                     sweepctl, tmp_path: Path, kind: str, request) -> None:
    ns = e2e_namespace.name
    if kind == "TrainJob":
        request.getfixturevalue("runtime")  # created by a cluster administrator, as the README says
    full_cluster.kubectl("apply", "-n", ns, "-f", "-", input=readme_role())
    full_cluster.kubectl("create", "rolebinding", "sweepctl", "-n", ns, "--role", "sweepctl", "--user", "restricted")
    spec = tmp_path / "rbac.yaml"
    spec.write_text(f"name: rbac\nbackend: kubernetes\nkubernetes: {{kind: {kind}}}\nargs: {TINY}\n"
                    "hyperParamValues: {learningRate: [0.001, 0.01], hiddenLayers: [5]}\n")
    as_user = ("-n", ns, "--context", "restricted@testbed")
    trials = (lambda: tfjobs(full_cluster, ns)) if kind == "TFJob" else (
        lambda: {j["metadata"]["name"]: j for j in full_cluster.get("trainjobs", "-n", ns)["items"]})

    assert sweepctl("plan", spec, *as_user).exit_code == 0
    assert sweepctl("apply", spec, *as_user, "--auto-approve").exit_code == 0
    wait_for("2 trials Succeeded", lambda: (rows := json_out(sweepctl("plan", spec, *as_user, "-o", "json")))
             and [t["state"] for t in rows["unchanged"]] == ["Succeeded"] * 2, 300, 1)

    def scored() -> list[dict] | None:
        result = sweepctl("status", spec, *as_user, "-o", "json")
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert not any("403" in (r.get("note") or "") for r in rows), rows  # the Role lets status through
        return rows if all(r["metric"] is not None for r in rows) else None

    wait_for("status as the restricted user", scored, 120, 2)
    assert sweepctl("report", spec, *as_user, "--out", tmp_path / "r.png").exit_code == 0
    assert sweepctl("prune", spec, *as_user, "--keep", "best=1", "--auto-approve").exit_code == 0
    assert len(trials()) == 1
    assert sweepctl("destroy", spec, *as_user, "--auto-approve").exit_code == 0
    assert trials() == {}
    assert full_cluster.kubectl("get", "deployment,service,configmap", "-n", ns, "-l",
                                "app.kubernetes.io/managed-by=sweepctl", "-o", "name").stdout.strip() == ""
