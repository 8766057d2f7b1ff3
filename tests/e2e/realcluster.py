"""Helpers of the end-to-end tests: the cluster handle, polling, TFJob states, what a user reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FullCluster:
    kubeconfig: Path
    bin_dir: Path
    run_dir: Path

    def kubectl(self, *args: str, user: str = "admin", check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig),
                "--context", f"{user}@testbed", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)


@dataclass(frozen=True)
class Namespace:
    name: str
    volume: Path  # the host folder behind the namespace's log volume


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll until check() returns something truthy; fail with what was awaited."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last saw {last!r}")


def conditions(tfjob: dict[str, Any]) -> list[str]:
    """The TFJob's condition types, oldest first: the operator keeps its history."""
    return [c["type"] for c in tfjob.get("status", {}).get("conditions") or []]


def state(tfjob: dict[str, Any]) -> str | None:
    found = tfjob.get("status", {}).get("conditions") or []
    return found[-1]["type"] if found else None


def json_out(result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def expected_metric(run: Path, tag: str = "loss") -> float:
    """The smallest `loss` in a run's event files, read by TensorBoard's own
    EventAccumulator: an independent reader, not sweepctl's."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(run), size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    values = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
    assert values, f"no {tag} in {run}"
    return min(values)


def served_metrics(sweepctl: Callable[..., Any], spec: Path, ns: str, runs: dict[str, Path]) -> list[dict[str, Any]]:
    """`status` rows once every trial's metric, read through the service proxy, is what its event files
    on the volume hold. The sweep's TensorBoard rereads its runs every 5 s, so it may still serve part
    of a finished run at first."""
    import pytest

    expected = {name: expected_metric(run) for name, run in runs.items()}

    def scored() -> list[dict[str, Any]] | None:
        rows = json_out(sweepctl("status", spec, "-n", ns, "-o", "json"))
        return rows if {r["name"]: r["metric"] for r in rows} == pytest.approx(expected, rel=1e-6) else None

    return wait_for("status to serve every trial's metric as its event files hold it", scored, 120, 2)


def trainer_pids(trial: str) -> list[int]:
    """Host pids of a trial's trainer: containers are processes on this node."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"model" in cmdline and any(trial.encode() in arg for arg in cmdline):
                found.append(int(proc.name))
    return found


def kill_trainer(trial: str) -> None:
    """SIGKILL a trial's trainer from the host, as the OOM killer would (exit 137), once it runs."""
    for pid in wait_for("the trainer process", lambda: trainer_pids(trial), 120, 0.2):
        os.kill(pid, signal.SIGKILL)
