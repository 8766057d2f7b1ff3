"""Search on Kubernetes: random search's budget in the real control plane, and apply --wait with TPE.

The test control plane has no kubelet: TFJobs never run. The test plays the
training operator and the trainers: it writes each TFJob's event files where a
real TensorBoard (started here, as the sweep's TensorBoard would be) reads them,
and marks the TFJob Succeeded through its status subresource.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from events_helpers import write_loss
from tensorboard_helpers import serve, tags

RANDOM = """\
name: rk
backend: kubernetes
namespace: {ns}
search: {{algorithm: random, trials: {trials}, seed: 7}}
hyperParamValues:
  learningRate: {{min: 1.0e-4, max: 0.1, scale: log}}
  hiddenLayers: {{min: 3, max: 9, type: int}}
"""


def tfjobs(control_plane, ns: str, sweep: str) -> dict[str, dict]:
    out = control_plane.kubectl("-n", ns, "get", "tfjobs", "-l", f"sweepctl.dev/sweep={sweep}", "-o", "json").stdout
    return {i["metadata"]["name"]: i for i in json.loads(out)["items"]}


def test_random_budget_raised_and_lowered_in_the_cluster(sweepctl, control_plane, namespace: str, kube_env,
                                                         tmp_path: Path) -> None:
    spec = tmp_path / "k.yaml"
    spec.write_text(RANDOM.format(ns=namespace, trials=3))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    first = tfjobs(control_plane, namespace, "rk")
    assert len(first) == 3
    spec.write_text(RANDOM.format(ns=namespace, trials=5))
    plan = json.loads(sweepctl("plan", spec, "-o", "json").stdout)
    assert len(plan["add"]) == 2 and plan["delete"] == [] and {t["name"] for t in plan["unchanged"]} == set(first)
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    five = tfjobs(control_plane, namespace, "rk")
    assert set(first) < set(five) and len(five) == 5
    assert all(first[n]["metadata"]["uid"] == five[n]["metadata"]["uid"] for n in first)  # never recreated
    spec.write_text(RANDOM.format(ns=namespace, trials=3))
    plan = json.loads(sweepctl("plan", spec, "-o", "json").stdout)
    assert {t["name"] for t in plan["delete"]} == set(five) - set(first)


@pytest.fixture
def tensorboard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real TensorBoard over an empty log folder, reloading every second; yields its URL and the folder."""
    logs = tmp_path / "logs"
    logs.mkdir()
    with serve(logs) as url:
        yield url, logs


def wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


TPE = """\
name: tk
backend: kubernetes
namespace: {ns}
search: {{algorithm: tpe, trials: 3, parallel: 2, seed: 0, startupTrials: 2}}
hyperParamValues:
  learningRate: {{min: 1.0e-4, max: 0.1, scale: log}}
  hiddenLayers: {{min: 3, max: 9, type: int}}
"""


def test_apply_wait_with_tpe_on_kubernetes(control_plane, namespace: str, kube_env, tmp_path: Path,
                                           tensorboard) -> None:
    url, logs = tensorboard
    (tmp_path / "k.yaml").write_text(TPE.format(ns=namespace))
    proc = subprocess.Popen([sys.executable, "-m", "sweepctl", "apply", "k.yaml", "--wait", "--auto-approve",
                             "--interval", "1", "--tensorboard-url", url], cwd=tmp_path,
                            env={**os.environ, "COLUMNS": "200"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        done: set[str] = set()

        def finish(name: str, loss: float) -> None:
            """The trainer's logs, then the operator's Succeeded, as on a real cluster."""
            write_loss(logs / name, [(0, 100.0), (10, loss)])
            wait_until(lambda: name in (tags(url) or {}), 60)
            control_plane.kubectl("-n", namespace, "patch", "tfjob", name, "--subresource=status", "--type=merge",
                                  "-p", json.dumps({"status": {"conditions": [
                                      {"type": "Succeeded", "status": "True", "reason": "test"}]}}))
            done.add(name)

        wait_until(lambda: len(tfjobs(control_plane, namespace, "tk")) == 2, 120)
        for i, name in enumerate(sorted(tfjobs(control_plane, namespace, "tk"))):
            finish(name, 10.0 + i)
        wait_until(lambda: len(tfjobs(control_plane, namespace, "tk")) == 3, 120)  # proposed from the history
        (third,) = set(tfjobs(control_plane, namespace, "tk")) - done
        finish(third, 5.0)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert f"best loss 5 ({third})" in out
    assert "3 finished, 0 stopped, 0 running or queued, 0 left in the budget of 3" in out
