"""examples/in-cluster run for real: sweepctl in a pod of the full cluster, as the README Role's ServiceAccount.

The sweepctl image is built from Dockerfile.sweepctl and loaded into the node;
rbac.yaml, spec-configmap.yaml and job.yaml are applied to a fresh namespace as
they are, except for what this test bed needs:

- The spec in the ConfigMap is made tiny (3 epochs, a small canvas, 4 trials,
  small requests), so the trials finish soon on a two-core machine.
- The Job's pod runs with hostNetwork: true and KUBERNETES_SERVICE_HOST/PORT set
  to the API server's own address on the node (127.0.0.1, its port). The test
  bed's API server listens on 127.0.0.1 only and there is no kube-proxy, so the
  `kubernetes` Service's address leads nowhere from a pod. Everything else is
  the in-cluster path a real cluster takes: no kubeconfig, the ServiceAccount's
  projected token and CA at /var/run/secrets/kubernetes.io/serviceaccount (the
  serving certificate covers 127.0.0.1), and the pod's namespace.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import images
import node
import yaml
from realcluster import FullCluster, Namespace, json_out, wait_for

from sweepctl import __version__

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "in-cluster"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
STEPS = ("plan", "apply", "prune", "status")


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLE / name).read_text()) if d]


def tiny(configmap: dict[str, Any]) -> str:
    """The example's spec with smaller values: 4 short trials that fit the node at once."""
    spec = yaml.safe_load(configmap["data"]["sweep.yaml"])
    spec["args"] = ["--epochs", "3", "--size", "24"]
    spec["hyperParamValues"]["learningRate"] = [0.01, 0.1]
    spec["resources"] = {"requests": {"cpu": "100m", "memory": "256Mi"}}
    return yaml.safe_dump(spec, sort_keys=False)


def api_address(cluster: FullCluster) -> tuple[str, str]:
    server = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    return host, port


def on_the_test_bed(job: dict[str, Any], host: str, port: str) -> dict[str, Any]:
    pod = job["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    for container in pod["initContainers"] + pod["containers"]:
        container["env"] = [{"name": "KUBERNETES_SERVICE_HOST", "value": host},
                            {"name": "KUBERNETES_SERVICE_PORT", "value": port}]
    return job


def test_the_in_cluster_job_plans_applies_prunes_and_reports(full_cluster: FullCluster, e2e_namespace: Namespace,
                                                             sweepctl, tmp_path: Path) -> None:
    ns = e2e_namespace.name
    name = f"sweepctl/sweepctl:{__version__}"
    image = images.sweepctl_image(images.Builder(node.cache_dir()), images.full_name(name))
    images.load(node.ctr(full_cluster.run_dir), [image], node.cache_dir() / "containerd" / "sweepctl-loaded.json")

    (configmap,) = docs("spec-configmap.yaml")
    spec_text = tiny(configmap)
    configmap["data"]["sweep.yaml"] = spec_text
    (job,) = docs("job.yaml")
    host, port = api_address(full_cluster)
    objects = [*docs("rbac.yaml"), configmap, on_the_test_bed(job, host, port)]
    started = time.monotonic()
    full_cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(objects))

    def done() -> dict[str, Any] | None:
        status = full_cluster.get("job", "-n", ns, "sweepctl-apply").get("status", {})
        return status if status.get("succeeded") or status.get("failed") else None

    (pod,) = wait_for("the Job's pod to be scheduled", lambda: full_cluster.get(
        "pods", "-n", ns, "-l", "job-name=sweepctl-apply")["items"], 60)
    status = wait_for("the sweepctl Job to finish", done, 600, 2)
    elapsed = time.monotonic() - started
    pod_name = pod["metadata"]["name"]
    logs = {step: full_cluster.kubectl("logs", "-n", ns, pod_name, "-c", step, check=False).stdout for step in STEPS}
    assert status.get("succeeded") == 1, "\n".join(f"--- {s}\n{out}" for s, out in logs.items())
    print(f"\nthe in-cluster Job (plan, apply --wait of 4 trials, prune, status) took {elapsed:.0f} s")

    # The pod used the in-cluster configuration: the ServiceAccount's token, no kubeconfig.
    pod = full_cluster.get("pod", "-n", ns, pod_name)
    assert pod["spec"]["serviceAccountName"] == "sweepctl"
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        assert "KUBECONFIG" not in {e["name"] for e in container.get("env") or []}
        assert TOKEN_DIR in {m["mountPath"] for m in container["volumeMounts"]}
    assert not full_cluster.kubectl("auth", "can-i", "list", "secrets", "-n", ns,
                                    f"--as=system:serviceaccount:{ns}:sweepctl", check=False).stdout.startswith("yes")

    assert "Plan: 4 to add, 0 to change, 0 to destroy." in logs["plan"]
    assert "4 finished, 0 stopped, 0 running or queued" in logs["apply"]  # what apply --wait says at the end
    assert "Prune: 3 to keep, 1 to delete." in logs["prune"]

    # The live trials are the best 3 of the sweep, as status ranks them from outside the pod.
    spec = tmp_path / "sweep.yaml"
    spec.write_text(spec_text)
    rows = json_out(sweepctl("status", spec, "-n", ns, "-o", "json"))
    assert len(rows) == 4
    (pruned,) = (r for r in rows if r["state"] == "pruned")
    kept = sorted(r["name"] for r in rows if r is not pruned)
    assert all(r["metric"] < pruned["metric"] for r in rows if r is not pruned)  # the spec minimizes the loss
    live = full_cluster.get("tfjobs", "-n", ns, "-l", "sweepctl.dev/sweep=starry-night")["items"]
    assert sorted(j["metadata"]["name"] for j in live) == kept
    # ... and the pod's status step printed every trial, the pruned one too.
    assert all(r["name"] in logs["status"] for r in rows)
    assert "pruned" in logs["status"]
