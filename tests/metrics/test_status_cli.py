"""`sweepctl status` as the README promises it, on curves chosen to tell the rules apart.

The trials' logs are real TensorBoard event files (TensorBoard's own writer),
in a local sweep's state folder; the CLI reads them as it reads a trainer's.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from test_events import write_events

SWEEP = "curves"


@pytest.fixture
def sweep(tmp_path: Path):
    """Make a local sweep whose trial `<name>` logged `values` as its loss, one point per 10 steps."""

    def make(curves: dict[str, list[float]]) -> dict[str, str]:
        root = tmp_path / ".sweepctl" / "sweeps" / SWEEP
        trials, names = {}, {}
        for i, (label, values) in enumerate(curves.items()):
            name = f"{SWEEP}-{label}-{i:010d}"
            names[label] = name
            trials[name] = {"id": f"{i:010d}", "uid": name, "params": {"label": label}, "args": [],
                            "template_hash": "h", "state": "Succeeded"}
            write_events(root / "logs" / name, [(10 * step, v) for step, v in enumerate(values)])
        (root / "state.json").write_text(json.dumps({"trials": trials, "pruned": {}}))
        return names

    return make


def status(sweepctl, *args: str) -> list[dict]:
    res = sweepctl("status", "--sweep", SWEEP, "-o", "json", *args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))


def test_strategy_latest_ranks_by_the_last_value_not_the_best(sweepctl, sweep) -> None:
    names = sweep({"dips": [5.0, 1.0, 3.0], "steady": [4.0, 2.0, 2.0]})
    by_min = status(sweepctl)
    assert [(r["name"], r["metric"]) for r in by_min] == [(names["dips"], 1.0), (names["steady"], 2.0)]
    by_latest = status(sweepctl, "--strategy", "latest")
    assert [(r["name"], r["metric"]) for r in by_latest] == [(names["steady"], 2.0), (names["dips"], 3.0)]
    by_max = status(sweepctl, "--strategy", "max")  # ranked by the objective's goal: still minimize
    assert [r["metric"] for r in by_max] == [4.0, 5.0]


def test_the_best_k_are_marked_when_k_is_smaller_than_the_sweep(sweepctl, sweep) -> None:
    names = sweep({"a": [4.0], "b": [1.0], "c": [3.0], "d": [2.0]})
    rows = status(sweepctl, "--keep", "best=2")
    assert [(r["name"], r["rank"], r["top"]) for r in rows] == [
        (names["b"], 1, True), (names["d"], 2, True), (names["c"], 3, False), (names["a"], 4, False)]
    text = sweepctl("status", "--sweep", SWEEP, "--keep", "best=1").stdout
    starred = [line for line in text.splitlines()[1:] if line.startswith("★")]
    assert len(starred) == 1 and names["b"] in starred[0]


def test_nan_and_infinity_are_strings_in_json(sweepctl, sweep) -> None:
    names = sweep({"fine": [2.0, 1.0], "diverged": [3.0, math.nan], "exploded": [math.inf]})
    rows = {r["name"]: r for r in status(sweepctl, "--strategy", "latest")}
    assert rows[names["diverged"]]["metric"] == "nan" and rows[names["diverged"]]["latest"] == "nan"
    assert rows[names["exploded"]]["metric"] == "inf"
    assert rows[names["fine"]]["rank"] == 1 and rows[names["diverged"]]["rank"] == 3  # NaN ranks last


@pytest.mark.parametrize("command", [["status"], ["prune", "--keep", "best=1", "--dry-run"]])
def test_a_colour_terminal_shows_the_same_table_in_colour(sweepctl, sweep, monkeypatch, command: list[str]) -> None:
    sweep({"a": [4.0], "b": [1.0], "c": [3.0, math.nan]})
    plain = sweepctl(*command, "--sweep", SWEEP)
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = sweepctl(*command, "--sweep", SWEEP)
    assert plain.exit_code == coloured.exit_code == 0, coloured.output
    assert "\x1b[" not in plain.stdout and "\x1b[32m" in coloured.stdout  # Succeeded, in green
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured.stdout) == plain.stdout
