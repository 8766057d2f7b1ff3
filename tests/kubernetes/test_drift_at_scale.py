"""Drift against the real API server: a changed template costs one fetched TFJob, and fields that
someone else added to a live TFJob are drift even when its template hash still matches."""

from __future__ import annotations

import json
from pathlib import Path

from test_plan_apply import LAB, lab, plan_json, tfjobs, write  # noqa: F401 - lab is a fixture


def test_a_changed_image_plans_with_one_tfjob_fetched(sweepctl, lab: Path, namespace: str) -> None:
    from sweepctl.backends.kubernetes import Cluster, KubernetesBackend
    from sweepctl.commands.common import make_plan, read_spec

    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    backend = KubernetesBackend(cluster=Cluster(), namespace=namespace)
    spec = read_spec(lab)
    make_plan(spec, backend)
    listing = backend.cluster.requests  # observe: the shard pages, two TensorBoard kinds, the pruned records
    write(lab, LAB.format(ns=namespace) + "image: sweepctl/tf-paint:0.2.0\n")
    backend = KubernetesBackend(cluster=Cluster(), namespace=namespace)
    plan = make_plan(read_spec(lab), backend)
    assert backend.cluster.requests == listing + 1  # one GET of one TFJob, for all nine
    assert len(plan.drifted) == 9
    assert all(c.drift == ("spec.tfReplicaSpecs.Chief.template.spec.containers[0].image: "
                           "spec 'sweepctl/tf-paint:0.2.0', cluster 'sweepctl/tf-paint:0.1.0'",) for c in plan.drifted)


def test_fields_someone_else_added_to_a_live_tfjob_are_drift(
    sweepctl, lab: Path, control_plane, namespace: str
) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    suspended, placed, with_env = sorted(tfjobs(control_plane, namespace))[:3]
    control_plane.kubectl("-n", namespace, "patch", "tfjob", suspended, "--type=merge",
                          "-p", json.dumps({"spec": {"runPolicy": {"suspend": True}}}))
    control_plane.kubectl("-n", namespace, "patch", "tfjob", placed, "--type=merge", "-p", json.dumps(
        {"spec": {"tfReplicaSpecs": {"Chief": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}}}}))
    control_plane.kubectl("-n", namespace, "patch", "tfjob", with_env, "--type=json", "-p", json.dumps(
        [{"op": "add", "path": "/spec/tfReplicaSpecs/Chief/template/spec/containers/0/env",
          "value": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "3"}]}]))
    # The operator's status updates are not drift.
    control_plane.kubectl("-n", namespace, "patch", "tfjob", suspended, "--subresource=status", "--type=merge",
                          "-p", json.dumps({"status": {"conditions": [{"type": "Created", "status": "True"}]}}))

    plan = plan_json(sweepctl, lab)
    drift = {d["name"]: d["diff"] for d in plan["drift"]}
    assert sorted(drift) == sorted([suspended, placed, with_env])
    assert drift[suspended] == ["spec.runPolicy.suspend: added in the cluster by kubectl-patch: True"]
    assert drift[placed] == ["spec.tfReplicaSpecs.Chief.template.spec.nodeSelector: added in the cluster by "
                             "kubectl-patch: {'disk': 'ssd'}"]
    assert drift[with_env] == ["spec.tfReplicaSpecs.Chief.template.spec.containers[0].env: added in the cluster "
                               "by kubectl-patch: [{'name': 'TF_CPP_MIN_LOG_LEVEL', 'value': '3'}]"]
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}  # shown, and left alone

    res = sweepctl("apply", lab, "--auto-approve", "--replace-drifted")
    assert res.exit_code == 0 and "0 added, 3 changed, 0 destroyed" in res.stdout
    assert plan_json(sweepctl, lab)["drift"] == []


def test_trials_that_differ_the_same_way_show_their_difference_once(sweepctl, lab: Path, namespace: str) -> None:
    assert sweepctl("apply", lab, "--auto-approve").exit_code == 0
    write(lab, LAB.format(ns=namespace) + "image: sweepctl/tf-paint:0.2.0\n")
    res = sweepctl("plan", lab)
    assert res.exit_code == 0, res.output
    assert res.stdout.count(" ~ starry-night-") == 9
    assert res.stdout.count("each of these 9 trials differs the same way:") == 1
    assert res.stdout.count("image: spec 'sweepctl/tf-paint:0.2.0', cluster 'sweepctl/tf-paint:0.1.0'") == 1
