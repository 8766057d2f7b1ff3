"""Each example of examples/ swept on the local backend, as its README says: real trainer processes.

apply trains every trial with the example's own command (python train.py, run in
the spec's folder), status ranks them by the example's objective (read here
independently: TensorBoard's reader for event files, the README's line format
for stdout), prune --keep best=1 keeps the best, and report draws the sheet.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from examples_helpers import ALL, Example, example_files


@pytest.fixture
def user_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's shell in the virtualenv `make setup` made: `python` is the one with TensorFlow."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def status_rows(sweepctl, spec: Path) -> list[dict]:
    res = sweepctl("status", spec, "-o", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("example", ALL, ids=lambda e: e.name)
def test_an_example_trains_ranks_prunes_and_reports(example: Example, sweepctl, user_shell, tmp_path: Path) -> None:
    before = example_files()
    res = sweepctl("apply", example.spec, "--auto-approve")
    assert res.exit_code == 0, res.output
    logs = tmp_path / ".sweepctl" / "sweeps" / example.sweep / "logs"

    rows = status_rows(sweepctl, example.spec)
    assert len(rows) == 4 and all(r["state"] == "Succeeded" for r in rows), rows
    expected = {}
    for r in rows:
        trial = logs / r["name"]
        output = (trial / "stdout.log").read_text()
        series = example.series(log_dir=trial, output=output)
        expected[r["name"]] = example.best(series)
        assert r["step"] == series[-1][0], r
        if example.name == "keras":  # Keras: both runs of its callback, in the folder SWEEPCTL_LOG_DIR named
            assert list((trial / "train").glob("events.out.tfevents.*"))
            assert "val_accuracy:" in output  # its own progress lines, kept as the trainer printed them
    assert {r["name"]: r["metric"] for r in rows} == pytest.approx(expected, rel=1e-6)
    ordered = sorted(expected, key=lambda n: expected[n], reverse=example.goal == "maximize")
    assert [expected[r["name"]] for r in rows] == [expected[n] for n in ordered]  # best first
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    best = rows[0]["name"]

    res = sweepctl("prune", example.spec, "--keep", "best=1", "--auto-approve")
    assert res.exit_code == 0, res.output
    assert "0 added, 0 changed, 3 destroyed" in res.stdout
    state = json.loads((tmp_path / ".sweepctl" / "sweeps" / example.sweep / "state.json").read_text())
    assert list(state["trials"]) == [best] and len(state["pruned"]) == 3
    after = {r["name"]: r for r in status_rows(sweepctl, example.spec)}
    assert after[best]["state"] == "Succeeded"
    assert sorted(n for n, r in after.items() if r["state"] == "pruned") == sorted(set(expected) - {best})
    assert {n: r["metric"] for n, r in after.items()} == pytest.approx(expected, rel=1e-6)  # pruned keep theirs

    res = sweepctl("report", example.spec, "--out", tmp_path / "sheet.png", "-o", "json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    tiles = {t["name"]: t for t in report["tiles"]}
    assert best in tiles and tiles[best]["metric"] == pytest.approx(expected[best], rel=1e-6)
    assert not any(t["image"] for t in tiles.values())  # no reconstruction.png: no painting,
    assert all(t["curve"] for t in tiles.values())  # but the objective's curve
    assert (tmp_path / "sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    plan = json.loads(sweepctl("plan", example.spec, "-o", "json").stdout)
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}  # nothing trains again
    assert example_files() == before  # the trainers ran in the example's folder and wrote only their logs
