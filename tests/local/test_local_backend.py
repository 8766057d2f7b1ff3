"""The local backend runs the real trainer: plan/apply/destroy behave as on Kubernetes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = ["--size", "8", "--epochs", "3", "--batch-size", "16"]


def spec_text(values: str, *, name: str = "tiny", parallelism: int = 2, slow: bool = False) -> str:
    args = ["--size", "24", "--epochs", "400", "--batch-size", "8"] if slow else TINY
    return (f"name: {name}\nbackend: local\nargs: {json.dumps(args)}\nlocal: {{parallelism: {parallelism}}}\n"
            f"hyperParamValues:\n{values}")


def state(tmp_path: Path, sweep: str = "tiny") -> dict:
    return json.loads((tmp_path / ".sweepctl" / "sweeps" / sweep / "state.json").read_text())


def test_local_sweep_end_to_end(sweepctl, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n  hiddenLayers: [2]\n"))
    res = sweepctl("plan", spec, "--detailed-exitcode")
    assert res.exit_code == 2 and "Plan: 2 to add" in res.stdout
    res = sweepctl("apply")
    assert res.exit_code == 0, res.output
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in res.stdout
    trials = state(tmp_path)["trials"]
    assert {t["state"] for t in trials.values()} == {"Succeeded"}
    for name in trials:
        logs = tmp_path / ".sweepctl" / "sweeps" / "tiny" / "logs" / name
        assert list(logs.glob("events.out.tfevents.*")), "TensorBoard events are written per trial"
        assert json.loads((logs / "metrics.json").read_text())["loss"] > 0
        assert "loss=" in (logs / "stdout.log").read_text()
    assert "sweepctl tensorboard" in res.stdout  # says how to look at the results

    res = sweepctl("plan", spec, "--detailed-exitcode")
    assert res.exit_code == 0, res.output
    assert "No changes." in res.stdout and res.stdout.count("(Succeeded)") == 2

    spec.write_text(spec_text("  learningRate: [0.01]\n  hiddenLayers: [2]\n"))
    res = sweepctl("apply", spec, "--auto-approve")
    assert "0 added, 0 changed, 1 destroyed" in res.stdout
    assert len(state(tmp_path)["trials"]) == 1


def test_a_failing_trial_is_reported_and_rerun_only_with_replace(sweepctl, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    # --hidden-layers 0 is refused by the trainer: that trial fails, the other succeeds.
    spec.write_text(spec_text("  hiddenLayers: [0, 2]\n"))
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 1
    failed = [n for n, t in state(tmp_path)["trials"].items() if t["state"] == "Failed"]
    assert len(failed) == 1 and "hl0" in failed[0]
    assert f"{failed[0]}: trainer exited with 2" in res.stderr
    assert "Apply incomplete" in res.stderr

    res = sweepctl("plan", spec, "--detailed-exitcode")
    assert res.exit_code == 0 and "(Failed)" in res.stdout
    res = sweepctl("plan", spec, "--replace", failed[0], "--detailed-exitcode")
    assert res.exit_code == 2 and "Plan: 0 to add, 1 to change, 0 to destroy." in res.stdout


def _wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_interrupted_apply_resumes_only_what_is_missing(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n  hiddenLayers: [2]\n", parallelism=1, slow=True))
    sweepctl = [sys.executable, "-m", "sweepctl"]
    env = {**os.environ, "COLUMNS": "200"}
    first = subprocess.Popen([*sweepctl, "apply", str(spec), "--auto-approve"], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state_file = tmp_path / ".sweepctl" / "sweeps" / "tiny" / "state.json"
    _wait_for(lambda: state_file.exists() and "Running" in state_file.read_text())

    # A second apply of the same sweep must not run anything meanwhile.
    second = subprocess.run([*sweepctl, "apply", str(spec), "--auto-approve"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert second.returncode == 1
    assert "another apply of sweep tiny is running" in second.stderr

    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert first.returncode == 130
    records = json.loads(state_file.read_text())["trials"]
    assert sorted(t["state"] for t in records.values()) == ["Interrupted", "Queued"]

    plan = subprocess.run([*sweepctl, "plan", str(spec)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "(Interrupted)" in plan.stdout and "Plan: 2 to add" in plan.stdout

    # Make the rest quick, then resume: both run, nothing twice.
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n  hiddenLayers: [2]\n", parallelism=1))
    done = subprocess.run([*sweepctl, "apply", str(spec), "--auto-approve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "2 added" in done.stdout
    assert {t["state"] for t in json.loads(state_file.read_text())["trials"].values()} == {"Succeeded"}


def test_tensorboard_serves_every_trial(sweepctl, tmp_path: Path) -> None:
    import urllib.request

    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.01, 0.1]\n"))
    assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    proc = subprocess.Popen([sys.executable, "-m", "sweepctl", "tensorboard", str(spec)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "TensorBoard for sweep tiny: http://127.0.0.1:" in line, proc.stderr.read() if proc.poll() else line
        url = line.split(": ", 1)[1].split()[0]
        _wait_for(lambda: len(json.loads(urllib.request.urlopen(url + "data/runs").read())) == 2)
        runs = json.loads(urllib.request.urlopen(url + "data/runs").read())
        assert sorted(runs) == sorted(state(tmp_path)["trials"])
    finally:
        proc.terminate()
        proc.wait(timeout=20)
