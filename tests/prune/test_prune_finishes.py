"""A prune interrupted between its records and its deletes is finished by the next apply (or prune).

The API server (through the fault proxy of tests/faults) refuses every DELETE
with 500, as while etcd stalls: the prune records its trials as pruned, cannot
delete them, says "Prune incomplete", and the hint it prints is true: plan
shows them as `(pruned, still running)`, status as `pruned, deleting`, and
apply deletes them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from faultproxy import FaultProxy, mint_certificate  # noqa: E402
from test_prune_kubernetes import SWEEP, pruned_configmap, tfjobs  # noqa: E402


def test_an_interrupted_prune_is_a_plan_change_that_apply_finishes(
        sweepctl, control_plane, namespace: str, kube_env, tensorboard_on: str, tmp_path: Path, spec_text,
        monkeypatch) -> None:
    spec = tmp_path / "k.yaml"
    spec.write_text(spec_text(backend="kubernetes", namespace=namespace))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    before = tfjobs(control_plane, namespace)

    pki = control_plane.kubeconfig.parent / "pki"
    cert, key = mint_certificate(pki, tmp_path / "proxy-pki")
    server = json.loads(control_plane.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    proxy = FaultProxy(server, pki / "ca.crt", cert, key).start()
    try:
        monkeypatch.setenv("KUBECONFIG", str(proxy.kubeconfig(control_plane.kubeconfig, tmp_path / "kc")))
        proxy.set(fail={"DELETE": 500}, fail_only="/tfjobs/")
        res = sweepctl("prune", spec, "--keep", "best=1", "--tensorboard-url", tensorboard_on, "--auto-approve",
                       "--timeout", "3s")
    finally:
        proxy.stop()
        monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    assert res.exit_code == 1
    assert "Prune incomplete: 2 failed. Resources: 0 added, 0 changed, 0 destroyed." in res.stderr, res.stderr
    assert "2 objects: 500 etcdserver: request timed out" in res.stderr  # one line for one cause
    assert "Apply incomplete" not in res.stderr and "Traceback" not in res.output
    records = set(pruned_configmap(control_plane, namespace)["data"])
    assert len(records) == 2 and records < set(before)
    assert tfjobs(control_plane, namespace) == before  # recorded, not deleted

    res = sweepctl("plan", spec, "--detailed-exitcode")
    assert res.exit_code == 2, res.output
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in res.stdout
    for name in records:
        assert f"- {name}" in res.stdout
    assert res.stdout.count("(pruned, still running)") == 2
    res = sweepctl("status", spec, "--tensorboard-url", tensorboard_on, "-o", "json")
    assert {r["name"] for r in json.loads(res.stdout) if r["state"] == "pruned, deleting"} == records

    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 0, res.output
    assert "0 added, 0 changed, 2 destroyed" in res.stdout
    assert set(tfjobs(control_plane, namespace)) == set(before) - records
    assert "No changes." in sweepctl("plan", spec).stdout
