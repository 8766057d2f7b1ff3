"""Search and early stopping on the local backend, end to end through the CLI.

The median rule and TPE's staleness are checked on a sweep whose state holds
trials with known curves (real TensorBoard event files) and, for running
trials, real processes that the rule must stop; `apply --wait` runs the real
trainer at a tiny size.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from events_helpers import write_loss
from local_helpers import SLOW, TINY, cli, start, state, wait_for

from sweepctl.backends import processes
from sweepctl.core.manifests import TEMPLATE_HASH, local_trial
from sweepctl.core.spec import load_spec
from sweepctl.core.trials import expand

pytest.importorskip("optuna")


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Stand-ins for running trainers: processes in sessions of their own, as the local backend starts them."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def make_sweep(cwd: Path, spec_text: str, curves: dict[str, list[tuple[int, float]]], running: set[str],
               sleepers: list[subprocess.Popen[bytes]], grid: str) -> dict[str, str]:
    """A sweep as the local backend keeps it: one trial per grid point (by its learning rate), with its curve.

    Running trials get a live process; the others ended with exit code 0; a grid point without a curve
    is not there yet. Returns learning rate -> trial name.
    """
    spec = load_spec(grid)
    sweep_dir = cwd / ".sweepctl" / "sweeps" / spec.name
    records, names = {}, {}
    for trial in expand(spec):
        key = str(trial.params["learningRate"])
        names[key] = trial.name
        if key not in curves:
            continue
        manifest = local_trial(spec, trial)
        logs = sweep_dir / "logs" / trial.name
        logs.mkdir(parents=True)
        write_loss(logs, curves[key])
        rec = {"id": trial.id, "uid": f"{trial.id}-1", "params": dict(trial.params), "args": manifest["spec"]["args"],
               "template_hash": manifest["metadata"]["annotations"][TEMPLATE_HASH], "state": "Succeeded",
               "exit_code": 0}
        if key in running:
            proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
            sleepers.append(proc)
            rec.update(state="Running", process=processes.identity(proc.pid), owner=processes.identity(proc.pid))
            del rec["exit_code"]
        else:
            (logs / "exit-code").write_text("0")
        records[trial.name] = rec
    sweep_dir.joinpath("state.json").write_text(json.dumps({"trials": records, "pruned": {}}))
    (cwd / "s.yaml").write_text(spec_text)
    return names


GRID = "name: ms\nhyperParamValues:\n  learningRate: [0.001, 0.002, 0.003, 0.004, 0.005]\n  hiddenLayers: [5]\n"
CURVES = {
    "0.001": [(0, 10.0), (10, 8.0), (20, 6.0), (30, 4.0)],
    "0.002": [(0, 10.0), (10, 7.0), (20, 5.0), (30, 3.0)],
    "0.003": [(0, 10.0), (10, 9.0), (20, 7.0), (30, 5.0)],
    "0.004": [(0, 10.0), (10, 9.5), (20, 9.0)],  # running, worse than the median from step 20 on (after 15)
    "0.005": [(0, 10.0), (10, 7.5), (20, 5.5)],  # running, better
}


def test_prune_rule_median_stops_the_right_trial_at_the_right_step(tmp_path: Path, sleepers) -> None:
    spec = GRID + "earlyStopping: {rule: median, afterStep: 15, minTrials: 3}\n"
    names = make_sweep(tmp_path, spec, CURVES, {"0.004", "0.005"}, sleepers, GRID)
    dry = cli(tmp_path, "prune", "--rule", "median", "s.yaml", "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    assert [t["name"] for t in json.loads(dry.stdout)["delete"]] == [names["0.004"]]
    assert all(p.poll() is None for p in sleepers)  # a dry run stops nothing

    res = cli(tmp_path, "prune", "--rule", "median", "s.yaml", "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "by the median rule (afterStep 15, minTrials 3)" in res.stdout
    wait_for(lambda: sleepers[0].poll() is not None, timeout=30)  # its process was stopped
    assert sleepers[1].poll() is None  # the good one runs on
    record = state(tmp_path, "ms")["pruned"][names["0.004"]]
    assert record["stopped_at"] == 20 and "step 20" in record["reason"] and "median 5.75 of 4" in record["reason"]

    status = json.loads(cli(tmp_path, "status", "s.yaml", "-o", "json").stdout)
    stopped = [t for t in status if t["state"] == "pruned"]
    assert [(t["name"], t["note"]) for t in stopped] == [(names["0.004"], record["reason"])]
    assert "stopped by the median rule at step 20" in cli(tmp_path, "status", "s.yaml").stdout
    plan = json.loads(cli(tmp_path, "plan", "s.yaml", "-o", "json").stdout)
    assert plan["add"] == [] and [t["name"] for t in plan["pruned"]] == [names["0.004"]]  # never re-proposed
    again = json.loads(cli(tmp_path, "prune", "--rule", "median", "s.yaml", "--dry-run", "-o", "json").stdout)
    assert again["delete"] == []


TPE = """\
name: ms
search: {algorithm: tpe, trials: 8, parallel: 2, seed: 3, startupTrials: 2}
hyperParamValues:
  learningRate: {min: 1.0e-4, max: 0.1, scale: log}
  hiddenLayers: {min: 3, max: 9, type: int}
"""


def test_tpe_plans_are_deterministic_and_a_saved_one_goes_stale_when_the_history_changes(
        tmp_path: Path, sleepers) -> None:
    names = make_sweep(tmp_path, TPE, CURVES, {"0.005"}, sleepers, GRID)  # continues from a grid phase
    first = cli(tmp_path, "plan", "s.yaml", "-o", "json")
    assert first.returncode == 0, first.stderr
    second = cli(tmp_path, "plan", "s.yaml", "-o", "json", "--out", "again.json")
    proposals = [t["params"] for t in json.loads(first.stdout)["add"]]
    assert len(proposals) == 1  # parallel 2, one trial still running
    assert proposals == [t["params"] for t in json.loads(second.stdout)["add"]]
    assert json.loads(first.stdout)["search"] == {"algorithm": "tpe", "budget": 8, "started": 5, "unfinished": 1,
                                                  "proposed": 1, "left": 2}
    # The running trial finishes: nothing was created or deleted, but TPE's history changed.
    sleepers[0].kill()
    sleepers[0].wait()
    (tmp_path / ".sweepctl" / "sweeps" / "ms" / "logs" / names["0.005"] / "exit-code").write_text("0")
    res = cli(tmp_path, "apply")
    assert res.returncode == 1
    assert "Saved plan is stale" in res.stderr and "history" in res.stderr
    assert len(state(tmp_path, "ms")["trials"]) == 5  # nothing was applied
    now = json.loads(cli(tmp_path, "plan", "s.yaml", "-o", "json").stdout)
    assert len(now["add"]) == 2 and now["search"]["started"] == 5


def test_apply_wait_runs_the_budget_out_and_a_rerun_finishes_an_interrupted_sweep(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: aw\nbackend: local\nargs: " + json.dumps(TINY) + "\nlocal: {parallelism: 2}\n"
        "search: {algorithm: tpe, trials: 5, parallel: 2, seed: 0, startupTrials: 2}\n"
        "earlyStopping: {rule: median, afterStep: 1, minTrials: 2}\n"
        "hyperParamValues:\n  learningRate: {min: 1.0e-3, max: 0.1, scale: log}\n  hiddenLayers: {min: 1, max: 3, type: int}\n")
    first = start(tmp_path, "apply", "s.yaml", "--wait", "--auto-approve", "--interval", "1")
    wait_for(lambda: any(r["state"] == "Running" for r in state(tmp_path, "aw")["trials"].values()), timeout=120)
    planned = set(state(tmp_path, "aw")["trials"])
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 130, out + err
    # As status shows them: a record the Ctrl-C caught mid-update still says Running, and is
    # read against its process, which is gone, and its exit-code file.
    shown = json.loads(cli(tmp_path, "status", "s.yaml", "-o", "json").stdout)
    assert shown and {r["state"] for r in shown} <= {"Interrupted", "Succeeded", "Failed", "pruned"}

    res = cli(tmp_path, "apply", "s.yaml", "--wait", "--auto-approve", "--interval", "1", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    final = state(tmp_path, "aw")
    assert planned <= set(final["trials"]) | set(final["pruned"])  # the interrupted trials were resumed
    assert len(final["trials"]) + len(final["pruned"]) == 5  # the budget, spent exactly
    assert {r["state"] for r in final["trials"].values()} == {"Succeeded"}
    assert "0 running or queued, 0 left in the budget of 5" in res.stdout
    assert all("stopped by the median rule" in r["reason"] for r in final["pruned"].values())
    assert json.loads(cli(tmp_path, "plan", "s.yaml", "-o", "json").stdout)["changes"] is False


def test_apply_wait_runs_a_grid_to_its_end(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: gw\nbackend: local\nargs: " + json.dumps(TINY) + "\n"
                                     "hyperParamValues:\n  learningRate: [0.01, 0.02]\n  hiddenLayers: [1]\n")
    res = cli(tmp_path, "apply", "s.yaml", "--wait", "--auto-approve", "--interval", "1", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 finished, 0 stopped, 0 running or queued, 0 left in the budget of 2" in res.stdout
    assert {r["state"] for r in state(tmp_path, "gw")["trials"].values()} == {"Succeeded"}


def test_apply_wait_stops_a_trial_when_it_logs_the_step_that_stops_it_not_at_the_next_interval(
        tmp_path: Path, sleepers) -> None:
    # Three finished trials with a loss of 0.001 at every step; the real trainer's is far above it, so the
    # rule stops it at its first logged step from afterStep on (SLOW logs every 1,080 steps: 2,160).
    grid = ("name: fs\nbackend: local\nargs: " + json.dumps(SLOW) + "\n"
            "hyperParamValues:\n  learningRate: [0.001, 0.002, 0.003, 0.004]\n  hiddenLayers: [2]\n")
    spec = grid + "earlyStopping: {rule: median, afterStep: 2000, minTrials: 3}\n"
    low = [(0, 0.001), (10**9, 0.001)]
    names = make_sweep(tmp_path, spec, {"0.001": low, "0.002": low, "0.003": low}, set(), sleepers, grid)
    # An interval longer than the trial: judging only every --interval would let it run to its end.
    res = cli(tmp_path, "apply", "s.yaml", "--wait", "--auto-approve", "--interval", "60", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    record = state(tmp_path, "fs")["pruned"][names["0.004"]]
    assert record["stopped_at"] == 2160, record
    logs = tmp_path / ".sweepctl" / "sweeps" / "fs" / "logs" / names["0.004"]
    from sweepctl.metrics.events import read_run

    points = read_run(logs, ["loss"])[0].scalars["loss"].points
    # Stopped within 20 of its 100 summary points of that step, not trained on for an interval.
    assert points[-1][0] <= 2160 + 20 * 1080, points[-1]
