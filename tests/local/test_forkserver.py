"""The fork server starts real trainers, and none trains before the apply recorded it."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_helpers import TINY, fork_servers, logs_of, spec_text, state, wait_for

from sweepctl.backends import processes
from sweepctl.backends.forkserver import EXIT_FILE


def test_a_trainer_trains_once_released_and_one_never_released_exits_untrained(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    unreleased, released = tmp_path / "unreleased", tmp_path / "released"
    forks = processes.ForkServer()
    try:
        forks.start_server()
        assert len(fork_servers(tmp_path)) == 1
        pids = {}
        for logs in (unreleased, released):  # in this order: the second must not hold the first's go pipe
            logs.mkdir()
            pids[logs] = processes.identity(forks.start([*TINY, "--log-dir", str(logs)], logs=logs,
                                                        exit_file=logs / EXIT_FILE))
        forks.release(pids[released]["pid"])
    finally:
        forks.close()  # as when the apply ends, or dies, before it recorded the first one
    assert not fork_servers(tmp_path), "the server ends with its apply"
    ended: dict[Path, float] = {}

    def both_ended() -> bool:
        for logs, ident in pids.items():
            if logs not in ended and not processes.alive(ident):
                ended[logs] = time.monotonic()
        return len(ended) == 2

    wait_for(both_ended, timeout=120)  # the released trainer outlives the server
    assert ended[unreleased] < ended[released], "the unreleased one exits as soon as its apply is gone"
    assert (released / EXIT_FILE).read_text() == "0\n"
    metrics = json.loads((released / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["hyperparameters"]["log_dir"] == str(released)
    assert "epoch=3 step=12 loss=" in (released / "stdout.log").read_text()
    assert list(released.glob("events.out.tfevents.*"))
    assert sorted(p.name for p in unreleased.iterdir()) == ["stdout.log"]
    assert (unreleased / "stdout.log").read_text() == "", "it never started the trainer"


def test_a_trainer_whose_record_cannot_be_written_never_trains(
        sweepctl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, census) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(spec_text("  learningRate: [0.01]\n  hiddenLayers: [2]\n"))
    real = processes.identity

    def full_disk(pid: int) -> dict:
        if pid != os.getpid():  # the apply's own identity is recorded first, and works
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(pid)

    monkeypatch.setattr(processes, "identity", full_disk)
    res = sweepctl("apply", spec, "--auto-approve")
    assert res.exit_code == 1 and "No space left on device" in res.stderr
    (trial,) = state(tmp_path)["trials"]
    logs = logs_of(tmp_path, trial)
    wait_for(lambda: not census.sample(), timeout=10)  # its supervisor was cancelled, and exited
    # Only what sweepctl itself wrote before the start: the output file and the HParams session start.
    assert sorted(p.name for p in logs.iterdir()) == ["events.hparams-start.sweepctl.tfevents", "stdout.log"]
    assert (logs / "stdout.log").read_text() == "", "the trainer never started"


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
