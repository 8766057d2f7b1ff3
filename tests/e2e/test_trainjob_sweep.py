"""TrainJob sweeps that really train, on Kubeflow Trainer v2 and JobSet (kubernetes.kind: TrainJob).

The same checks as for TFJobs: trials run on sweepctl's own ClusterTrainingRuntime,
their metrics come from the sweep's TensorBoard through the API server's service
proxy, prune deletes for good, a follow-up adds only new trials, a trainer that
fails is not retried, and a TFJob sweep beside a TrainJob sweep is never touched.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from realcluster import (
    FullCluster,
    Namespace,
    json_out,
    kill_trainer,
    served_metrics,
    wait_for,
)

TINY = '[--epochs, "3", --size, "24"]'
SPEC = f"""\
name: tj
backend: kubernetes
kubernetes: {{kind: TrainJob}}
args: {TINY}
resources:
  requests: {{cpu: 500m, memory: 512Mi}}
hyperParamValues:
  learningRate: [0.01, 0.1]
  hiddenLayers: [3, 4]
"""
JOBSET = "jobset.sigs.k8s.io/jobset-name"


def trainjobs(cluster: FullCluster, ns: str) -> dict[str, dict[str, Any]]:
    return {j["metadata"]["name"]: j for j in cluster.get("trainjobs", "-n", ns)["items"]}


def finished(job: dict[str, Any]) -> str | None:
    true = [c["type"] for c in job.get("status", {}).get("conditions") or [] if c.get("status") == "True"]
    return next((t for t in true if t in ("Complete", "Failed")), None)


def all_trainjobs(cluster: FullCluster, ns: str, wanted: str, count: int) -> dict[str, dict] | None:
    jobs = trainjobs(cluster, ns)
    return jobs if len(jobs) == count and all(finished(j) == wanted for j in jobs.values()) else None


def trial_pods(cluster: FullCluster, ns: str, sweep: str) -> dict[str, dict[str, Any]]:
    """The sweep's trial pods, by their TrainJob: the runtime patch put the sweep's labels on them."""
    items = cluster.get("pods", "-n", ns, "-l", f"sweepctl.dev/sweep={sweep},{JOBSET}")["items"]
    return {p["metadata"]["labels"][JOBSET]: p for p in items}


def test_a_trainjob_sweep_trains_prunes_and_follows_up(full_cluster: FullCluster, e2e_namespace: Namespace,
                                                        runtime: str, sweepctl, tmp_path: Path) -> None:
    ns = e2e_namespace.name
    spec = tmp_path / "tj.yaml"
    spec.write_text(SPEC)
    started = time.monotonic()
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0
    jobs = wait_for("4 TrainJobs Complete", lambda: all_trainjobs(full_cluster, ns, "Complete", 4), 600, 1)
    print(f"\napply to 4 TrainJobs Complete: {time.monotonic() - started:.1f} s")

    pods = trial_pods(full_cluster, ns, "tj")
    assert sorted(pods) == sorted(jobs)
    for name, job in jobs.items():
        pod = pods[name]
        assert pod["metadata"]["labels"]["sweepctl.dev/trial"] == job["metadata"]["labels"]["sweepctl.dev/trial"]
        (container,) = pod["spec"]["containers"]
        assert container["name"] == "node"
        params = json.loads(job["metadata"]["annotations"]["sweepctl.dev/params"])
        args = container["args"]
        assert args[args.index("--learning-rate") + 1] == str(params["learningRate"])
        assert args[args.index("--log-dir") + 1] == f"/tmp/tensorflow/tj/{name}"
        assert {"name": "logs", "mountPath": "/tmp/tensorflow"} in container["volumeMounts"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        status = pod["status"]["containerStatuses"][0]
        assert status["state"]["terminated"]["exitCode"] == 0

    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0} and plan["requires"] == []
    assert sorted(t["state"] for t in plan["unchanged"]) == ["Succeeded"] * 4

    # Metrics through the service proxy, as TensorBoard's own reader finds them on the volume.
    rows = served_metrics(sweepctl, spec, ns, {n: e2e_namespace.volume / "tj" / n for n in jobs})
    assert [r["state"] for r in rows] == ["Succeeded"] * 4
    sheet = tmp_path / "sheet.png"
    assert sweepctl("report", spec, "-n", ns, "--out", sheet).exit_code == 0
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Prune to the best one: 3 TrainJobs go, and with them their JobSets and pods.
    best = min(rows, key=lambda r: r["rank"])["name"]
    assert sweepctl("prune", spec, "-n", ns, "--keep", "best=1", "--auto-approve").exit_code == 0
    assert sorted(trainjobs(full_cluster, ns)) == [best]
    wait_for("the pruned trials' JobSets and pods to be garbage-collected", lambda: (
        [j["metadata"]["name"] for j in full_cluster.get("jobsets", "-n", ns)["items"]] == [best]
        and sorted(trial_pods(full_cluster, ns, "tj")) == [best]), 60)
    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert plan["add"] == [] and len(plan["pruned"]) == 3
    # --revive brings one back: a new TrainJob that trains again.
    revived = plan["pruned"][0]["name"]
    assert sweepctl("apply", spec, "-n", ns, "--revive", revived, "--auto-approve").exit_code == 0
    wait_for("the revived trial Complete", lambda: all_trainjobs(full_cluster, ns, "Complete", 2), 300, 1)
    assert len(json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))["pruned"]) == 2

    # A follow-up with one more learning rate adds only its 2 trials; the kept one is untouched.
    kept_uid = trainjobs(full_cluster, ns)[best]["metadata"]["uid"]
    kept_pod = trial_pods(full_cluster, ns, "tj")[best]["metadata"]["uid"]
    spec.write_text(SPEC.replace("[0.01, 0.1]", "[0.01, 0.1, 0.03]"))
    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert sorted(t["params"]["learningRate"] for t in plan["add"]) == [0.03, 0.03]
    assert plan["summary"] == {"add": 2, "change": 0, "destroy": 0}
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0
    jobs = wait_for("the 2 new trials Complete", lambda: all_trainjobs(full_cluster, ns, "Complete", 4), 300, 1)
    assert jobs[best]["metadata"]["uid"] == kept_uid
    assert trial_pods(full_cluster, ns, "tj")[best]["metadata"]["uid"] == kept_pod


def test_a_trainjob_that_fails_by_itself_is_failed_and_not_retried(
        full_cluster: FullCluster, e2e_namespace: Namespace, runtime: str, sweepctl, tmp_path: Path) -> None:
    ns = e2e_namespace.name
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: tjbad\nbackend: kubernetes\nkubernetes: {kind: TrainJob}\nargs: [--no-such-flag]\n"
                    "hyperParamValues: {learningRate: [0.01]}\n")
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0
    jobs = wait_for("the TrainJob to fail", lambda: all_trainjobs(full_cluster, ns, "Failed", 1), 180, 1)
    (name,) = jobs
    time.sleep(5)  # long enough for a retry to show, were there one
    (pod,) = trial_pods(full_cluster, ns, "tjbad").values()
    assert len(full_cluster.get("pods", "-n", ns, "-l", f"{JOBSET}={name}")["items"]) == 1
    status = pod["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == 2 and status["restartCount"] == 0
    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert [t["state"] for t in plan["unchanged"]] == ["Failed"]

    # apply --replace runs it again: a new TrainJob, and a new pod that ran.
    uid = jobs[name]["metadata"]["uid"]
    assert sweepctl("apply", spec, "-n", ns, "--replace", name, "--auto-approve").exit_code == 0
    wait_for("the replaced TrainJob to fail again", lambda: (j := all_trainjobs(full_cluster, ns, "Failed", 1))
             and j[name]["metadata"]["uid"] != uid, 180, 1)
    (pod2,) = trial_pods(full_cluster, ns, "tjbad").values()
    assert pod2["metadata"]["uid"] != pod["metadata"]["uid"]


def test_a_tfjob_sweep_and_a_trainjob_sweep_share_a_namespace(
        full_cluster: FullCluster, e2e_namespace: Namespace, runtime: str, sweepctl, tmp_path: Path) -> None:
    ns = e2e_namespace.name
    tf, tj = tmp_path / "tf.yaml", tmp_path / "tj.yaml"
    grid = 'hyperParamValues: {learningRate: [0.01, 0.1]}\n'
    tf.write_text(f"name: mixtf\nbackend: kubernetes\nargs: {TINY}\n{grid}")
    tj.write_text(f"name: mixtj\nbackend: kubernetes\nkubernetes: {{kind: TrainJob}}\nargs: {TINY}\n{grid}")
    for spec in (tf, tj):
        assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0
    wait_for("2 TrainJobs Complete", lambda: all_trainjobs(full_cluster, ns, "Complete", 2), 300, 1)
    wait_for("2 TFJobs Succeeded", lambda: (jobs := full_cluster.get("tfjobs", "-n", ns)["items"]) and len(jobs) == 2
             and all((j.get("status", {}).get("conditions") or [{}])[-1].get("type") == "Succeeded" for j in jobs),
             300, 1)
    tfjob_uids = {j["metadata"]["uid"] for j in full_cluster.get("tfjobs", "-n", ns)["items"]}
    for spec in (tf, tj):  # each sweep sees only its own trials
        plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
        assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0} and len(plan["unchanged"]) == 2

    assert sweepctl("destroy", tj, "-n", ns, "--auto-approve").exit_code == 0
    assert trainjobs(full_cluster, ns) == {}
    assert {j["metadata"]["uid"] for j in full_cluster.get("tfjobs", "-n", ns)["items"]} == tfjob_uids
    services = {s["metadata"]["name"] for s in full_cluster.get("services", "-n", ns)["items"]}
    assert "mixtf-tensorboard" in services and "mixtj-tensorboard" not in services
    plan = json_out(sweepctl("plan", tf, "-n", ns, "-o", "json"))
    assert [t["state"] for t in plan["unchanged"]] == ["Succeeded"] * 2


def test_a_trainjob_killed_from_outside_is_run_again(full_cluster: FullCluster, e2e_namespace: Namespace,
                                                     runtime: str, sweepctl, tmp_path: Path) -> None:
    """As a TFJob's Chief is: sweepctl's runtime retries a pod killed from outside (exit 137)."""
    ns = e2e_namespace.name
    spec = tmp_path / "kill.yaml"
    spec.write_text('name: tjkill\nbackend: kubernetes\nkubernetes: {kind: TrainJob}\n'
                    'args: [--epochs, "30", --size, "24"]\nhyperParamValues: {learningRate: [0.01]}\n')
    assert sweepctl("apply", spec, "-n", ns, "--auto-approve").exit_code == 0
    (name,) = wait_for("the TrainJob", lambda: trainjobs(full_cluster, ns), 30)
    kill_trainer(name)
    wait_for("the killed trial to be run again and complete",
             lambda: all_trainjobs(full_cluster, ns, "Complete", 1), 300, 1)
    runs = full_cluster.get("pods", "-n", ns, "-l", f"{JOBSET}={name}")["items"]
    codes = sorted(p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in runs)
    assert codes == [0, 137]
    plan = json_out(sweepctl("plan", spec, "-n", ns, "-o", "json"))
    assert [t["state"] for t in plan["unchanged"]] == ["Succeeded"]
