"""status, prune and --revive on the local backend, with real trainer runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SWEEP = "paint"  # the sweep of conftest.py's `trained`


def local_state(cwd: Path) -> dict:
    return json.loads((cwd / ".sweepctl" / "sweeps" / SWEEP / "state.json").read_text())


def status_json(sweepctl, *args: str) -> list[dict]:
    res = sweepctl("status", *args, "-o", "json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_status_ranks_trials_by_their_event_files(sweepctl, sweep_here: Path) -> None:
    rows = status_json(sweepctl, sweep_here)
    assert len(rows) == 3
    assert all({"name", "params", "state", "metric"} <= set(r) for r in rows)
    assert [r["params"]["learningRate"] for r in rows] == [0.1, 0.01, 0.001]  # lowest loss first
    assert [r["rank"] for r in rows] == [1, 2, 3]
    for r in rows:  # the metric is the series' min, the same number the trainer wrote last
        logs = sweep_here.parent / ".sweepctl" / "sweeps" / SWEEP / "logs" / r["name"]
        assert r["metric"] == pytest.approx(json.loads((logs / "metrics.json").read_text())["loss"], rel=1e-6)
        assert r["state"] == "Succeeded" and r["step"] == 12
    latest = status_json(sweepctl, sweep_here, "--strategy", "latest")
    assert [r["metric"] for r in latest] == [r["metric"] for r in rows]

    res = sweepctl("status", sweep_here, "--keep", "best=2")
    assert res.exit_code == 0, res.output
    assert res.stdout.count("★") == 3  # the two best, and the legend in the title
    assert "learningRate=0.1" in res.stdout and "Succeeded" in res.stdout


def test_prune_keeps_exactly_the_best_and_plans_never_bring_them_back(sweepctl, sweep_here: Path) -> None:
    before = {r["name"]: r for r in status_json(sweepctl, sweep_here)}
    worst = [n for n, r in before.items() if r["rank"] == 3]

    res = sweepctl("prune", sweep_here, "--keep", "best=2", input="no\n")
    assert res.exit_code == 1 and "Prune cancelled" in res.stderr
    assert len(local_state(sweep_here.parent)["trials"]) == 3

    res = sweepctl("prune", sweep_here, "--keep", "best=2", "--auto-approve")
    assert res.exit_code == 0, res.output
    assert "0 added, 0 changed, 1 destroyed" in res.stdout
    state = local_state(sweep_here.parent)
    assert sorted(state["trials"]) == sorted(n for n, r in before.items() if r["rank"] in (1, 2))
    assert list(state["pruned"]) == worst
    assert state["pruned"][worst[0]]["metric"] == pytest.approx(before[worst[0]]["metric"])
    logs = sweep_here.parent / ".sweepctl" / "sweeps" / SWEEP / "logs" / worst[0]
    assert list(logs.glob("events.out.tfevents.*")) and (logs / "metrics.json").is_file(), "pruned logs are kept"

    rows = {r["name"]: r for r in status_json(sweepctl, sweep_here)}
    assert rows[worst[0]]["state"] == "pruned"
    assert rows[worst[0]]["metric"] == pytest.approx(before[worst[0]]["metric"])

    plan = json.loads(sweepctl("plan", sweep_here, "-o", "json").stdout)
    assert plan["summary"] == {"add": 0, "change": 0, "destroy": 0}
    assert [p["name"] for p in plan["pruned"]] == worst
    res = sweepctl("plan", sweep_here)
    assert f"sweepctl apply --revive {worst[0]} brings it back" in res.stdout

    # No spec: the sweep of the last apply (the prune); nothing more to delete.
    res = sweepctl("prune", "--keep", "best=2", "--dry-run", "-o", "json")
    assert res.exit_code == 0, res.output
    dry = json.loads(res.stdout)
    assert dry["delete"] == [] and len(dry["keep"]) == 2

    # --revive brings it back: it trains again and its record is dropped.
    res = sweepctl("apply", "--revive", worst[0], "--auto-approve")
    assert res.exit_code == 0, res.output
    assert "1 added, 0 changed, 0 destroyed" in res.stdout
    state = local_state(sweep_here.parent)
    assert state["pruned"] == {} and state["trials"][worst[0]]["state"] == "Succeeded"


def test_unscored_trials_are_kept_unless_asked_and_bad_logs_never_crash(sweepctl, sweep_here: Path) -> None:
    logs = sweep_here.parent / ".sweepctl" / "sweeps" / SWEEP / "logs"
    rows = status_json(sweepctl, sweep_here)
    best, middle, worst = (r["name"] for r in rows)
    for f in (logs / middle).glob("events.out.tfevents.*"):
        f.write_bytes(b"\x00garbage, not a TFRecord" * 10)  # corrupt
    for f in (logs / worst).glob("events.out.tfevents.*"):
        f.unlink()  # missing
    rows = {r["name"]: r for r in status_json(sweepctl, sweep_here)}
    assert rows[best]["rank"] == 1
    assert rows[middle]["metric"] is None and rows[worst]["metric"] is None

    res = sweepctl("prune", sweep_here, "--keep", "best=1", "--dry-run")
    assert res.exit_code == 0, res.output
    assert "--include-unscored deletes it" in res.stdout and "1 to keep" not in res.stdout
    assert "3 to keep, 0 to delete" in res.stdout
    res = sweepctl("prune", sweep_here, "--keep", "best=1", "--include-unscored", "--auto-approve")
    assert res.exit_code == 0, res.output
    assert sorted(local_state(sweep_here.parent)["pruned"]) == sorted([middle, worst])


@pytest.mark.parametrize("keep", ["best=0", "best=x", "worst=2", "best=", "3", "best=-1"])
def test_bad_keep_is_a_clear_error(sweepctl, sweep_here: Path, keep: str) -> None:
    res = sweepctl("prune", sweep_here, "--keep", keep, "--dry-run")
    assert res.exit_code == 1
    assert f"--keep {keep}: expected best=K" in res.stderr and "Traceback" not in res.output


def test_without_a_spec_the_candidates_are_listed(sweepctl, sweep_here: Path, tmp_path: Path) -> None:
    (tmp_path / ".sweepctl" / "sweeps" / "other" ).mkdir(parents=True)
    (tmp_path / ".sweepctl" / "sweeps" / "other" / "state.json").write_text('{"trials": {}, "pruned": {}}')
    res = sweepctl("prune", "--keep", "best=1")
    assert res.exit_code == 1
    assert "which sweep?" in res.stderr and "other, paint" in res.stderr
    res = sweepctl("status", "--sweep", "pain")
    assert res.exit_code == 1 and "did you mean 'paint'?" in res.stderr
    assert len(status_json(sweepctl, "--sweep", SWEEP)) == 3


# What a warm status of 1,000 trials cannot afford (it has 0.3 s): TensorFlow and the Kubernetes client,
# jsonschema for a valid spec, pydantic (typer 0.29's coercion: typer is pinned below it), rich's emoji
# table. (difflib is in: typer's own click imports it, under 1 ms.)
NOT_FOR_READING = ("tensorflow", "kubernetes", "deepdiff", "jsonschema", "pydantic", "rich._emoji_codes")


@pytest.mark.parametrize("command", [["status", "s.yaml", "-o", "json"], ["status", "s.yaml"],
                                     ["prune", "s.yaml", "--keep", "best=1", "--dry-run", "-o", "json"]])
def test_reading_metrics_imports_nothing_it_does_not_need(sweep_here: Path, command: list[str]) -> None:
    probe = (
        "import sys\nfrom sweepctl.cli import app\n"
        f"try:\n    app({command!r})\nexcept SystemExit as done:\n    code = done.code\n"
        f"print(code, [m for m in {NOT_FOR_READING!r} if m in sys.modules], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=sweep_here.parent)
    assert proc.stderr.strip().endswith("0 []"), proc.stderr
    if command[-1] == "json" and command[0] == "status":
        assert all(r["metric"] is not None for r in json.loads(proc.stdout))


def test_report_draws_one_tile_per_trial(sweepctl, sweep_here: Path, tmp_path: Path) -> None:
    from PIL import Image

    res = sweepctl("report", sweep_here, "--out", tmp_path / "sheet.png", "-o", "json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert len(report["tiles"]) == 3 and all(t["image"] for t in report["tiles"])
    assert [t["top"] for t in report["tiles"]] == [True, True, True]
    with Image.open(tmp_path / "sheet.png") as png:
        assert png.format == "PNG" and png.width > 400 and png.height > 400


_NO_LOCK_PROBE = """
import json, os, signal, sys, threading
from pathlib import Path

sweeps = str(Path(".sweepctl/sweeps").resolve())
seen = []

def _under(path):
    return isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)).startswith(sweeps)

def hook(event, args):
    if event in ("fcntl.flock", "fcntl.lockf"):
        seen.append(event)
    elif event == "open" and _under(args[0]):
        mode, flags = args[1], args[2]
        if (any(c in mode for c in "wax+") if isinstance(mode, str)
                else flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            seen.append(f"open {args[0]} {mode or flags}")
    elif event in ("os.mkdir", "os.rename", "os.remove", "shutil.rmtree") and _under(args[0]):
        seen.append(f"{event} {args[0]}")

sys.addaudithook(hook)
from sweepctl.cli import app
if "--watch" in sys.argv:  # a few redraws, then Ctrl-C
    threading.Timer(6, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(seen), file=sys.stderr)
"""


@pytest.mark.parametrize("command", [["status", "s.yaml"], ["status", "s.yaml", "--watch", "--interval", "0.5"],
                                     ["report", "s.yaml", "--out", "sheet.png"], ["plan", "s.yaml"]])
def test_reading_commands_take_no_lock_and_write_nothing_in_the_sweep(sweep_here: Path, command: list[str]) -> None:
    """A running apply must never find its sweep locked, or its state changed, by someone who only looks."""
    proc = subprocess.run([sys.executable, "-c", _NO_LOCK_PROBE, *command], capture_output=True, text=True, check=False,
                          cwd=sweep_here.parent)
    assert proc.stdout, proc.stderr  # the command did its job
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
