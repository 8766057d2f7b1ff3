"""A user's own script, run by the local backend, ranked by where it logs: a run subfolder of its
event files (tensorboardX, as PyTorch users write them) or the lines it prints. Real processes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from local_helpers import cli

# Validation accuracy rises with the learning rate here: an event file in validation/, a line on stdout.
SCRIPT = """\
import os, sys
from tensorboardX import SummaryWriter
lr = float(sys.argv[1].split("=")[1])
log = os.environ["SWEEPCTL_LOG_DIR"]
train, val = SummaryWriter(os.path.join(log, "train")), SummaryWriter(os.path.join(log, "validation"))
for epoch in range(3):
    accuracy = min(1.0, lr * (epoch + 1))
    train.add_scalar("epoch_accuracy", 1.0, epoch)  # the same tag in train/: never read for validation/
    val.add_scalar("epoch_accuracy", accuracy, epoch)
    print(f"epoch {epoch}: accuracy={accuracy} loss={1 - accuracy}", flush=True)
train.close()
val.close()
"""
SPEC = """\
name: mine
command: [python, train.py, "--lr=${lr}"]
local: {parallelism: 3}
hyperParamValues:
  lr: [0.125, 0.25, 0.0625]
objective: OBJECTIVE
"""


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def ranked(tmp_path: Path, spec: Path) -> list[tuple[float, float | None, str]]:
    res = cli(tmp_path, "status", spec, "-o", "json")
    assert res.returncode == 0, res.stderr
    return [(r["params"]["lr"], r["metric"], r["state"]) for r in json.loads(res.stdout)]


def test_a_script_is_ranked_by_its_validation_folder_or_its_lines_alike_and_pruned(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(SCRIPT)
    spec = folder / "sweep.yaml"
    spec.write_text(SPEC.replace("OBJECTIVE", "{metric: validation/epoch_accuracy, goal: maximize}"))
    res = cli(tmp_path, "apply", spec, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    by_events = ranked(tmp_path, spec)
    assert by_events == [(0.25, 0.75, "Succeeded"), (0.125, 0.375, "Succeeded"), (0.0625, 0.1875, "Succeeded")]

    spec.write_text(SPEC.replace("OBJECTIVE", "{source: stdout, metric: accuracy, goal: maximize}"))
    assert ranked(tmp_path, spec) == by_events  # the same numbers, printed
    assert "No changes" in cli(tmp_path, "plan", spec).stdout  # where the metric is read is not drift

    res = cli(tmp_path, "prune", spec, "--keep", "best=1", "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert ranked(tmp_path, spec) == [(0.25, 0.75, "Succeeded"), (0.0625, 0.1875, "pruned"), (0.125, 0.375, "pruned")]

    spec.write_text(SPEC.replace("OBJECTIVE", "{metric: validation/epoch_acc, goal: maximize}"))
    row = json.loads(cli(tmp_path, "status", spec, "-o", "json").stdout)[0]
    assert row["note"] == "no 'validation/epoch_acc'; found validation/epoch_accuracy, train/epoch_accuracy"
