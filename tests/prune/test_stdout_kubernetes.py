"""A stdout objective on Kubernetes reads the trial pods' logs through the API, as the README Role allows.

The API-only control plane has no kubelet: a pod's log cannot be served here, so what is checked is
who may ask and what a trial without output shows. The logs themselves are read on the full cluster
(tests/e2e/test_stdout_metrics.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from readme_role import readme_role


def test_the_readme_role_lists_the_trial_pods_and_asks_for_their_logs(
    sweepctl, control_plane, namespace: str, kube_env, tmp_path: Path
) -> None:
    spec = tmp_path / "printed.yaml"
    spec.write_text(f"name: printed\nbackend: kubernetes\nnamespace: {namespace}\n"
                    "hyperParamValues:\n  learningRate: [0.1, 0.01]\n"
                    "objective: {source: stdout, metric: accuracy, goal: maximize}\n")
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    jobs = json.loads(control_plane.kubectl("-n", namespace, "get", "tfjobs", "-o", "json").stdout)["items"]
    job = jobs[0]
    # The pod the training operator would make: the template's labels, the trainer's container.
    template = job["spec"]["tfReplicaSpecs"]["Chief"]["template"]
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{job['metadata']['name']}-chief-0", "labels": template["metadata"]["labels"]},
        "spec": {"containers": [{"name": "tensorflow", "image": "never-runs-here"}]},
    }))
    role = readme_role()
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=role)
    control_plane.kubectl("-n", namespace, "create", "rolebinding", "sweepctl", "--role=sweepctl", "--user=restricted")

    res = sweepctl("status", spec, "-o", "json", "--context", "restricted@testbed")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert [rows[j["metadata"]["name"]]["note"] for j in jobs] == ["no output yet"] * 2  # not started: no log yet

    without_logs = re.sub(r"- apiGroups: \[\"\"\]\n  resources: \[pods/log\].*\n  verbs: \[get\]\n", "", role)
    assert without_logs != role
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=without_logs)
    res = sweepctl("status", spec, "-o", "json", "--context", "restricted@testbed")
    assert res.exit_code == 0, res.output  # status still shows every trial's state ...
    note = {r["name"]: r["note"] for r in json.loads(res.stdout)}[job["metadata"]["name"]]
    assert "403" in note and "pods/log" in note  # ... and why the one with a pod has no metric
    res = sweepctl("prune", spec, "--keep", "best=1", "--auto-approve", "--context", "restricted@testbed")
    assert res.exit_code != 0 and "403" in res.output  # prune cannot rank: it changes nothing
    assert len(json.loads(control_plane.kubectl("-n", namespace, "get", "tfjobs", "-o", "json").stdout)["items"]) == 2

    without_pods = re.sub(r"- apiGroups: \[\"\"\]\n  resources: \[pods\] .*\n  verbs: \[list\]\n", "", without_logs)
    assert without_pods != without_logs
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=without_pods)
    res = sweepctl("status", spec, "-o", "json", "--context", "restricted@testbed")
    assert res.exit_code == 0, res.output
    notes = {r["note"] for r in json.loads(res.stdout)}
    (note,) = notes
    assert note.startswith("cannot list the trials' pods:") and "403" in note
