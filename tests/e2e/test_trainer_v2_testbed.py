"""The full cluster also runs Kubeflow Trainer v2 and JobSet: a tf-paint TrainJob trains.

This checks the test bed that TrainJob support in sweepctl (issue 12) will be
tested on: a single-node TensorFlow ClusterTrainingRuntime runs the trainer
image built from the Dockerfile, a good TrainJob completes, a bad one fails
without a retry, and deleting a TrainJob removes its pods.
"""

from __future__ import annotations

import json
from typing import Any

from realcluster import FullCluster, Namespace, wait_for

RUNTIME = "e2e-tf-paint"


def runtime() -> dict[str, Any]:
    """One replicated job `node`; without JobSet's webhook, every default is spelled out."""
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "ClusterTrainingRuntime",
        "metadata": {"name": RUNTIME},
        "spec": {
            "mlPolicy": {"numNodes": 1},
            "template": {"spec": {
                "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
                "successPolicy": {"operator": "All", "targetReplicatedJobs": ["node"]},
                "startupPolicy": {"startupPolicyOrder": "AnyOrder"},
                "replicatedJobs": [{
                    "name": "node", "replicas": 1,
                    "template": {
                        # Without this label the TrainJob's trainer.args are silently ignored.
                        "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                        "spec": {
                            "completionMode": "Indexed", "backoffLimit": 0, "parallelism": 1, "completions": 1,
                            "template": {"spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "node", "image": "sweepctl/tf-paint:0.1.0"}],
                            }},
                        },
                    },
                }],
            }},
        },
    }


def trainjob(name: str, args: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
        "metadata": {"name": name},
        "spec": {"runtimeRef": {"name": RUNTIME, "kind": "ClusterTrainingRuntime",
                                "apiGroup": "trainer.kubeflow.org"},
                 "trainer": {"args": args}},
    }


def condition(job: dict[str, Any]) -> str | None:
    true = [c["type"] for c in job.get("status", {}).get("conditions") or [] if c.get("status") == "True"]
    return true[-1] if true else None


def test_a_tf_paint_trainjob_completes_and_a_bad_one_fails(full_cluster: FullCluster,
                                                          e2e_namespace: Namespace) -> None:
    ns = e2e_namespace.name
    full_cluster.kubectl("apply", "-f", "-", input=json.dumps(runtime()))
    objects = [trainjob("good", ["--epochs", "2", "--size", "16", "--log-dir", "/tmp/logs"]),
               trainjob("bad", ["--no-such-flag"])]
    full_cluster.kubectl("create", "-n", ns, "-f", "-", input="\n".join(json.dumps(o) for o in objects))

    def done() -> dict[str, str] | None:
        jobs = {j["metadata"]["name"]: condition(j) for j in full_cluster.get("trainjobs", "-n", ns)["items"]}
        return jobs if all(jobs.values()) else None

    assert wait_for("both TrainJobs to finish", done, 240, 1) == {"good": "Complete", "bad": "Failed"}
    pods = full_cluster.get("pods", "-n", ns, "-l", "jobset.sigs.k8s.io/jobset-name=bad")["items"]
    assert len(pods) == 1  # backoffLimit 0: no retry
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    good = full_cluster.get("pods", "-n", ns, "-l", "jobset.sigs.k8s.io/jobset-name=good")["items"]
    assert [p["spec"]["containers"][0]["args"][:2] for p in good] == [["--epochs", "2"]]

    full_cluster.kubectl("delete", "trainjob", "good", "-n", ns)
    wait_for("the TrainJob's pods to be garbage-collected", lambda: not full_cluster.get(
        "pods", "-n", ns, "-l", "jobset.sigs.k8s.io/jobset-name=good")["items"], 60)
    full_cluster.kubectl("delete", "clustertrainingruntime", RUNTIME)
