"""The HParams dashboard of a sweep that really trains: its TensorBoard pod writes the summaries, read
through the API server's service proxy as the README's Role user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from readme_role import readme_role
from realcluster import FullCluster, Namespace, json_out, wait_for
from tensorboard_helpers import hparams_experiment, hparams_sessions

TINY = '[--epochs, "3", --size, "24"]'


def test_every_trial_has_its_row_with_values_status_and_objective_and_keeps_it_when_pruned(
        full_cluster: FullCluster, e2e_namespace: Namespace, sweepctl, tmp_path: Path) -> None:
    ns = e2e_namespace.name
    full_cluster.kubectl("apply", "-n", ns, "-f", "-", input=readme_role())
    full_cluster.kubectl("create", "rolebinding", "sweepctl", "-n", ns, "--role", "sweepctl", "--user", "restricted")
    as_user = ("-n", ns, "--context", "restricted@testbed")
    spec = tmp_path / "hp.yaml"
    spec.write_text(f"name: hp\nbackend: kubernetes\nargs: {TINY}\n"
                    "resources: {requests: {cpu: 500m, memory: 512Mi}}\n"
                    "hyperParamValues: {learningRate: [0.001, 0.01, 0.1], hiddenLayers: [5], encoding: [fourier]}\n")
    assert sweepctl("apply", spec, *as_user, "--auto-approve").exit_code == 0
    plan = wait_for("3 trials Succeeded", lambda: (p := json_out(sweepctl("plan", spec, *as_user, "-o", "json")))
                    and [t["state"] for t in p["unchanged"]] == ["Succeeded"] * 3 and p, 300, 1)
    params = {t["name"]: t["params"] for t in plan["unchanged"]}
    # The states reach the pod's ConfigMap with the next apply (nothing to change).
    assert sweepctl("apply", spec, *as_user, "--auto-approve").exit_code == 0

    def get(path: str) -> bytes:  # the user's own credentials, through the service proxy
        proxy = f"/api/v1/namespaces/{ns}/services/hp-tensorboard:http/proxy/{path}"
        return full_cluster.kubectl("get", "--raw", proxy, user="restricted").stdout.encode()

    # The table shows each trial's latest value, as TensorBoard's own reader finds it on the volume.
    latest = {n: _latest(e2e_namespace.volume / "hp" / n) for n in params}

    def rows_done() -> dict | None:
        try:
            rows = hparams_sessions("", get=get)
        except AssertionError:  # the TensorBoard pod is still starting: no endpoints yet
            return None
        return rows if set(rows) == set(params) and all(
            r["status"] == "STATUS_SUCCESS" and r["metrics"] for r in rows.values()) else None

    try:
        rows = wait_for("every trial's HParams row, finished", rows_done, 240, 3)
    except AssertionError as err:
        pods = full_cluster.kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=tensorboard", "-o",
                                    "yaml", check=False).stdout
        logs = full_cluster.kubectl("logs", "-n", ns, "deployment/hp-tensorboard", "-c", "hparams",
                                    check=False)
        raise AssertionError(f"{err}\n{pods[-4000:]}\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}") from None
    for name, row in rows.items():
        assert row["hparams"] == params[name]
        assert row["metrics"]["loss"] == pytest.approx(latest[name], rel=1e-6)
    experiment = hparams_experiment("", get=get)
    assert {h["name"]: h.get("domainDiscrete") for h in experiment["hparamInfos"]} == {
        "learningRate": [0.001, 0.01, 0.1], "hiddenLayers": [5.0], "encoding": ["fourier"]}
    assert [m["name"]["tag"] for m in experiment["metricInfos"]] == ["loss"]

    assert sweepctl("prune", spec, *as_user, "--keep", "best=1", "--auto-approve").exit_code == 0
    pruned = json_out(sweepctl("plan", spec, *as_user, "-o", "json"))["pruned"]
    assert len(pruned) == 2
    rows = hparams_sessions("", get=get)
    for gone in (p["name"] for p in pruned):
        assert rows[gone]["metrics"]["loss"] == pytest.approx(latest[gone], rel=1e-6)
    assert sweepctl("destroy", spec, *as_user, "--auto-approve").exit_code == 0
    assert full_cluster.kubectl("get", "configmap", "-n", ns, "-l", "sweepctl.dev/sweep=hp",
                                "-o", "name").stdout.strip() == ""


def _latest(run: Path, tag: str = "loss") -> float:
    """The last `loss` in a run's event files, by TensorBoard's own EventAccumulator."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(run), size_guidance={"tensors": 0})
    acc.Reload()
    return float(tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto))
