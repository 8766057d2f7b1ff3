"""The HParams dashboard of a Kubernetes sweep: the ConfigMap sweepctl keeps, and what its TensorBoard pod writes.

The API-only control plane runs no pods: the TensorBoard pod's `hparams`
container is run here as a process, with the command its Deployment gives it,
over a folder laid out as the pod's volumes would be (the ConfigMap's files, a
log folder the trainers wrote to). tests/e2e runs the real pod.
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from events_helpers import write_loss
from readme_role import readme_role
from tensorboard_helpers import hparams_experiment, hparams_sessions, serve

from sweepctl.core.manifests import HPARAMS_DIR

LAB = """\
name: starry-night
backend: kubernetes
namespace: {ns}
hyperParamValues:
  learningRate: [0.001, 0.01, 0.1]
  hiddenLayers: [5, 6, 7]
  optimizer: [adam]
"""
AS_USER = ("--context", "restricted@testbed")


def get(control_plane, ns: str, what: str) -> dict:
    return json.loads(control_plane.kubectl("-n", ns, "get", what, "-o", "json").stdout)


def configmap_files(control_plane, ns: str) -> dict[str, bytes]:
    """The ConfigMap's keys as the pod sees them, as files in its volume."""
    cm = get(control_plane, ns, "configmap/starry-night-sweepctl-hparams")
    assert cm["metadata"]["labels"]["sweepctl.dev/sweep"] == "starry-night"
    return {**{k: v.encode() for k, v in cm.get("data", {}).items()},
            **{k: base64.b64decode(v) for k, v in cm.get("binaryData", {}).items()}}


@contextmanager
def hparams_container(control_plane, ns: str, volume: Path, logs: Path) -> Iterator[None]:
    """The TensorBoard pod's hparams container, run here with its Deployment's command and the ConfigMap's files."""
    deployment = get(control_plane, ns, "deployment/starry-night-tensorboard")
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "hparams"]
    program, flag, boot, data, root = container["command"]
    assert (program, flag, root) == ("python3", "-c", "/tmp/tensorflow/starry-night")
    assert {"name": "logs", "mountPath": "/tmp/tensorflow"} in container["volumeMounts"]  # writable here only

    def refresh() -> None:  # what the kubelet does for a ConfigMap volume
        for key, content in configmap_files(control_plane, ns).items():
            tmp = volume / f".{key}.tmp"
            tmp.write_bytes(content)
            tmp.rename(volume / key)

    refresh()
    proc = subprocess.Popen([sys.executable, "-c", boot.replace(HPARAMS_DIR, str(volume)),
                             data.replace(HPARAMS_DIR, str(volume)), str(logs), "0.2"])
    try:
        yield refresh
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_tensorboard_pod_writes_every_trial_its_values_status_and_objective(
        sweepctl, control_plane, namespace: str, kube_env, tmp_path: Path) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=readme_role())
    control_plane.kubectl("create", "rolebinding", "sweepctl", "-n", namespace, "--role", "sweepctl",
                          "--user", "restricted")
    lab = tmp_path / "lab.yaml"
    lab.write_text(LAB.format(ns=namespace))
    assert sweepctl("apply", lab, *AS_USER, "--auto-approve").exit_code == 0
    jobs = {j["metadata"]["name"]: j for j in get(control_plane, namespace, "tfjobs")["items"]}
    params = {name: json.loads(j["metadata"]["annotations"]["sweepctl.dev/params"]) for name, j in jobs.items()}
    files = configmap_files(control_plane, namespace)
    data = json.loads(gzip.decompress(files["hparams.json.gz"]))
    assert {name: s["params"] for name, s in data["sessions"].items()} == params and len(params) == 9
    assert data["experiment"]["metrics"] == ["loss"]

    # The trainers log (as each pod would, into its own folder); the pod's writer adds the summaries.
    volume, logs = tmp_path / "volume", tmp_path / "logs" / "starry-night"
    volume.mkdir()
    for i, name in enumerate(sorted(jobs)):
        write_loss(logs / name, [(0, 10.0), (10, 1.0 + i)])
    with hparams_container(control_plane, namespace, volume, logs) as refresh, serve(logs) as url:
        experiment = hparams_experiment(url)
        assert {h["name"]: h.get("domainDiscrete") for h in experiment["hparamInfos"]} == {
            "learningRate": [0.001, 0.01, 0.1], "hiddenLayers": [5.0, 6.0, 7.0], "optimizer": ["adam"]}
        assert [m["name"]["tag"] for m in experiment["metricInfos"]] == ["loss"]
        rows = wait_rows(url, lambda r: len(r) == 9)
        for i, name in enumerate(sorted(jobs)):
            assert rows[name]["hparams"] == params[name]
            assert rows[name]["metrics"]["loss"] == pytest.approx(1.0 + i)
            assert rows[name]["status"] == "STATUS_UNKNOWN"

        # A trial finishes; the next apply (nothing to change) records it, and the row shows it.
        first = sorted(jobs)[0]
        control_plane.kubectl("-n", namespace, "patch", "tfjob", first, "--subresource=status", "--type=merge",
                              "-p", json.dumps({"status": {"conditions": [
                                  {"type": "Succeeded", "status": "True", "reason": "test"}]}}))
        res = sweepctl("apply", lab, *AS_USER, "--auto-approve")
        assert res.exit_code == 0 and "No changes" in res.stdout, res.output
        refresh()
        rows = wait_rows(url, lambda r: r[first]["status"] == "STATUS_SUCCESS")
        assert rows[first]["metrics"]["loss"] == pytest.approx(1.0)

    assert sweepctl("destroy", lab, *AS_USER, "--auto-approve").exit_code == 0
    left = control_plane.kubectl("-n", namespace, "get", "configmaps", "-l", "sweepctl.dev/sweep", "-o", "name")
    assert left.stdout.strip() == ""


def wait_rows(url: str, ready, timeout: float = 90) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = hparams_sessions(url)
        try:
            if ready(rows):
                return rows
        except KeyError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready: {rows}")
        time.sleep(0.5)
