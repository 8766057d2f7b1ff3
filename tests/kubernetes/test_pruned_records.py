"""Pruned-trial records of any sweep size: they spread over as many ConfigMaps as they need."""

from __future__ import annotations

import json

from sweepctl.core.manifests import tfjob
from sweepctl.core.plan import PRUNED, Action, Change, Plan
from sweepctl.core.spec import load_spec
from sweepctl.core.trials import expand


class Quiet:
    def done(self, change, error) -> None:
        pass

    def running(self, trials, *, finished: int, queued: int) -> None:
        pass


def test_the_records_of_10000_pruned_trials_are_kept_and_revived_and_destroyed(
    control_plane, namespace: str, kube_env
) -> None:
    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend

    values = ", ".join(f"0.{i:04d}" for i in range(1, 101))
    spec = load_spec(f"name: big\nbackend: kubernetes\nnamespace: {namespace}\n"
                     f"hyperParamValues:\n  learningRate: [{values}]\n  hiddenLayers: [{values}]\n",
                     max_trials=10_000)
    trials = expand(spec)
    records = {t.name: {"id": t.id, "params": dict(t.params), "state": "Running", "step": 60000,
                        "objective": "loss", "metric": 100 + i / 7, "latest": 100 + i / 7, "best": 100 + i / 7,
                        "pruned_at": "2026-11-28T22:00:00Z"} for i, t in enumerate(trials)}
    backend = KubernetesBackend(cluster=Cluster(), namespace=namespace)

    def plan(**fields) -> Plan:
        return Plan(sweep="big", namespace=namespace, backend="kubernetes", target=backend.target,
                    spec_digest="", fingerprint="", **fields)

    result = backend.apply(plan(trials=(), prune=records), progress=Quiet())
    assert not result.errors
    assert backend.observe("big").pruned == records
    out = control_plane.kubectl("-n", namespace, "get", "configmaps", "-l", "sweepctl.dev/sweep=big",
                                "-o", "json").stdout
    maps = {i["metadata"]["name"]: i for i in json.loads(out)["items"]}
    assert len(maps) > 3 and "big-sweepctl-pruned" in maps and "big-sweepctl-pruned-2" in maps
    assert sum(len(m["data"]) for m in maps.values()) == 10_000

    # Revive one trial from the first ConfigMap and one from the last.
    last = max(maps, key=lambda n: int(n.rsplit("-", 1)[1]) if n[-1].isdigit() else 1)
    revived = [next(iter(maps["big-sweepctl-pruned"]["data"])), next(iter(maps[last]["data"]))]
    by_name = {t.name: t for t in trials}
    creates = tuple(Change(action=Action.CREATE, kind="TFJob", name=n, trial_id=by_name[n].id, state=PRUNED,
                           params=by_name[n].params, manifest=tfjob(spec, by_name[n], namespace=namespace))
                    for n in revived)
    assert not backend.apply(plan(trials=creates), progress=Quiet()).errors
    observed = backend.observe("big")
    assert set(observed.pruned) == set(records) - set(revived)
    assert sorted(o.name for o in observed.objects) == sorted(revived)

    # Destroy removes every record ConfigMap with the sweep.
    deletes = tuple(Change(action=Action.DELETE, kind="TFJob", name=o.name, uid=o.uid) for o in observed.objects)
    assert not backend.apply(plan(trials=deletes, destroy=True), progress=Quiet()).errors
    out = control_plane.kubectl("-n", namespace, "get", "configmaps", "-l", "sweepctl.dev/sweep=big", "-o", "json")
    assert json.loads(out.stdout)["items"] == []
    assert backend.observe("big").pruned == {}
