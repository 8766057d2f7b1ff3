"""A stdout objective on the real cluster: the trial pods' logs, read through the API as the README Role's user.

The tf-paint trainer prints `epoch=E step=S loss=L psnr=P` (psnr to 3 decimals) at every point it logs,
so the metric read from its pod's log must be what its event files on the volume hold, to that
precision, at the same step (read by TensorBoard's own EventAccumulator, not by sweepctl).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from readme_role import readme_role
from realcluster import FullCluster, Namespace, json_out, wait_for

TINY = '[--epochs, "3", --size, "24"]'


def psnr_in_events(run: Path) -> tuple[float, int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(run), size_guidance={"tensors": 0})
    acc.Reload()
    points = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors("psnr")]
    assert points, f"no psnr in {run}"
    return max(v for _, v in points), max(s for s, _ in points)


@pytest.mark.parametrize("kind", ["TFJob", "TrainJob"])
def test_status_ranks_and_prune_keeps_by_the_lines_the_trainer_printed(
        full_cluster: FullCluster, e2e_namespace: Namespace, sweepctl, tmp_path: Path, kind: str, request) -> None:
    ns = e2e_namespace.name
    if kind == "TrainJob":
        request.getfixturevalue("runtime")
    full_cluster.kubectl("apply", "-n", ns, "-f", "-", input=readme_role())
    full_cluster.kubectl("create", "rolebinding", "sweepctl", "-n", ns, "--role", "sweepctl", "--user", "restricted")
    spec = tmp_path / "printed.yaml"
    spec.write_text(f"name: printed\nbackend: kubernetes\nkubernetes: {{kind: {kind}}}\nargs: {TINY}\n"
                    "hyperParamValues: {learningRate: [0.001, 0.1], hiddenLayers: [5]}\n"
                    "objective: {source: stdout, metric: psnr, goal: maximize}\n")
    as_user = ("-n", ns, "--context", "restricted@testbed")
    assert sweepctl("apply", spec, *as_user, "--auto-approve").exit_code == 0
    wait_for("2 trials Succeeded", lambda: (rows := json_out(sweepctl("plan", spec, *as_user, "-o", "json")))
             and [t["state"] for t in rows["unchanged"]] == ["Succeeded"] * 2, 300, 1)

    result = sweepctl("status", spec, *as_user, "-o", "json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    expected = {name: psnr_in_events(e2e_namespace.volume / "printed" / name) for name in rows}
    assert {n: r["metric"] for n, r in rows.items()} == pytest.approx({n: v for n, (v, _) in expected.items()},
                                                                      abs=6e-4)
    assert {n: r["step"] for n, r in rows.items()} == {n: s for n, (_, s) in expected.items()}
    best = max(rows, key=lambda n: rows[n]["metric"])
    assert rows[best]["rank"] == 1

    assert sweepctl("prune", spec, *as_user, "--keep", "best=1", "--auto-approve").exit_code == 0
    after = {r["name"]: r for r in json_out(sweepctl("status", spec, *as_user, "-o", "json"))}
    (loser,) = [n for n in rows if n != best]
    assert after[best]["rank"] == 1 and after[loser]["state"] == "pruned"
    assert after[loser]["metric"] == rows[loser]["metric"]  # its recorded value, though its pod is gone
    assert sweepctl("destroy", spec, *as_user, "--auto-approve").exit_code == 0
