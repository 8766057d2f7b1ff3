"""The fork server starts real trainers, and none trains before the apply recorded it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from local_helpers import TINY, fork_servers, wait_for

from sweepctl.backends import processes
from sweepctl.backends.forkserver import EXIT_FILE


def test_a_trainer_trains_once_released_and_one_never_released_exits_untrained(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    released, unreleased = tmp_path / "released", tmp_path / "unreleased"
    forks = processes.ForkServer()
    try:
        forks.start_server()
        assert len(fork_servers(tmp_path)) == 1
        pids = {}
        for logs in (released, unreleased):
            logs.mkdir()
            pids[logs] = processes.identity(forks.start([*TINY, "--log-dir", str(logs)], logs=logs,
                                                        exit_file=logs / EXIT_FILE))
        forks.release(pids[released]["pid"])
    finally:
        forks.close()  # as when the apply ends, or dies, before it recorded the second one
    assert not fork_servers(tmp_path), "the server ends with its apply"

    wait_for(lambda: (released / EXIT_FILE).exists(), timeout=120)  # the trainer outlives the server
    assert (released / EXIT_FILE).read_text() == "0\n"
    metrics = json.loads((released / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["hyperparameters"]["log_dir"] == str(released)
    assert "epoch=3 step=12 loss=" in (released / "stdout.log").read_text()
    assert list(released.glob("events.out.tfevents.*"))

    wait_for(lambda: not processes.alive(pids[unreleased]), timeout=10)
    assert sorted(p.name for p in unreleased.iterdir()) == ["stdout.log"]
    assert (unreleased / "stdout.log").read_text() == "", "it never started the trainer"


def test_a_forked_trainer_gives_what_a_trainer_process_of_its_own_gives(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [*TINY, "--learning-rate", "0.02", "--hidden-layers", "3"]
    env = {**os.environ, "PYTHONPATH": str(processes.trainer_root())}
    subprocess.run([sys.executable, "-m", "model", *args, "--log-dir", "alone"], check=True, capture_output=True,
                   env=env)
    forked = tmp_path / "forked"
    forked.mkdir()
    forks = processes.ForkServer()
    try:
        forks.release(forks.start([*args, "--log-dir", "forked"], logs=forked, exit_file=forked / EXIT_FILE))
    finally:
        forks.close()
    wait_for(lambda: (forked / EXIT_FILE).exists(), timeout=120)
    expected = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    got = json.loads((forked / "metrics.json").read_text())
    assert (got["loss"], got["psnr"], got["steps"]) == (expected["loss"], expected["psnr"], expected["steps"])
    assert got["hyperparameters"]["threads"] == 1
