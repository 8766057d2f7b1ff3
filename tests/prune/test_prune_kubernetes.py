"""status and prune on Kubernetes: TFJobs in the real control plane, metrics from a real TensorBoard.

The test control plane has no kubelet, so the TFJobs never run; a TensorBoard
started here serves the real trainer runs of `trained`, laid out as one folder
per TFJob name, as the sweep's TensorBoard sees them on the shared volume.
"""

from __future__ import annotations

import json
from pathlib import Path

SWEEP = "paint"  # the sweep of conftest.py's `trained`, whose spec_text fixture writes the same grid


def tfjobs(control_plane, ns: str) -> dict[str, str]:
    out = control_plane.kubectl("-n", ns, "get", "tfjobs", "-l", f"sweepctl.dev/sweep={SWEEP}", "-o", "json").stdout
    return {i["metadata"]["name"]: i["metadata"]["uid"] for i in json.loads(out)["items"]}


def pruned_configmap(control_plane, ns: str) -> dict | None:
    res = control_plane.kubectl("-n", ns, "get", "configmap", f"{SWEEP}-sweepctl-pruned", "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def test_prune_deletes_exactly_the_right_tfjobs_and_records_them(
    sweepctl, control_plane, namespace: str, kube_env, tensorboard_on: str, trained: Path, tmp_path: Path,
    spec_text
) -> None:
    spec = tmp_path / "k.yaml"
    spec.write_text(spec_text(backend="kubernetes", namespace=namespace))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    before = tfjobs(control_plane, namespace)
    assert len(before) == 3

    res = sweepctl("status", spec, "--tensorboard-url", tensorboard_on, "-o", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    local = json.loads((trained / ".sweepctl" / "sweeps" / SWEEP / "state.json").read_text())["trials"]
    assert {r["name"] for r in rows} == set(before) == set(local)  # TensorBoard's runs are the TFJobs' names
    assert [r["params"]["learningRate"] for r in rows] == [0.1, 0.01, 0.001]
    assert all(r["state"] == "Pending" and r["metric"] > 0 for r in rows)
    best = rows[0]["name"]

    # Without --tensorboard-url: the API server's proxy, to a TensorBoard that has no pod here
    # (as while it starts). status still shows every trial's state, and why it has no metric;
    # prune refuses, since it cannot rank, and deletes nothing.
    res = sweepctl("status", spec, "-o", "json")
    assert res.exit_code == 0, res.output
    rows_now = json.loads(res.stdout)
    assert sorted(r["name"] for r in rows_now) == sorted(before)
    assert all(r["state"] == "Pending" and r["metric"] is None for r in rows_now)
    assert all("TensorBoard not reachable yet" in r["note"] and "no endpoints" in r["note"] for r in rows_now)
    res = sweepctl("prune", spec, "--keep", "best=1", "--auto-approve")
    assert res.exit_code == 1 and "cannot read the sweep's TensorBoard" in res.stderr and "Traceback" not in res.output
    assert tfjobs(control_plane, namespace) == before

    res = sweepctl("prune", spec, "--keep", "best=1", "--tensorboard-url", tensorboard_on, "--auto-approve")
    assert res.exit_code == 0, res.output
    assert "0 added, 0 changed, 2 destroyed" in res.stdout
    assert tfjobs(control_plane, namespace) == {best: before[best]}
    cm = pruned_configmap(control_plane, namespace)
    assert cm is not None and cm["metadata"]["labels"]["sweepctl.dev/sweep"] == SWEEP
    assert sorted(cm["data"]) == sorted(set(before) - {best})
    record = json.loads(cm["data"][rows[2]["name"]])
    assert record["params"] == rows[2]["params"] and record["metric"] == rows[2]["metric"]

    plan = json.loads(sweepctl("plan", spec, "-o", "json").stdout)
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}
    assert sorted(p["name"] for p in plan["pruned"]) == sorted(cm["data"])
    rows = json.loads(sweepctl("status", spec, "--tensorboard-url", tensorboard_on, "-o", "json").stdout)
    assert sorted(r["state"] for r in rows) == ["Pending", "pruned", "pruned"]

    res = sweepctl("apply", spec, "--revive", rows[2]["name"], "--auto-approve")
    assert res.exit_code == 0, res.output
    assert set(tfjobs(control_plane, namespace)) == {best, rows[2]["name"]}
    assert sorted(pruned_configmap(control_plane, namespace)["data"]) == [rows[1]["name"]]

    assert sweepctl("destroy", spec, "--auto-approve").exit_code == 0
    assert tfjobs(control_plane, namespace) == {} and pruned_configmap(control_plane, namespace) is None
