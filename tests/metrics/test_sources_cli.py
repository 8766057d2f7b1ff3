"""status, prune and report of a local sweep by each metric source, as a user runs them.

The trials' logs are what real trainers leave: Keras's callback folders (a real fit), tensorboardX
scalars, and stdout.log lines. Each test makes a local sweep's state from them and runs the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from library_writers import keras_fit, tensorboardx_scalars

SWEEP = "byo"


@pytest.fixture(scope="module")
def keras_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, list[float]]]]:
    """Two real Keras fits (different seeds and widths), each with train/ and validation/ and its stdout."""
    root = tmp_path_factory.mktemp("fits")
    return {label: (root / label, keras_fit(root / label, seed=seed, units=units, epochs=3))
            for label, seed, units in (("a", 0, 4), ("b", 1, 16))}


@pytest.fixture
def sweep(tmp_path: Path):
    """A local sweep whose trial per label ended with `state`, its logs made by `fill(log_dir)`."""

    def make(trials: dict[str, tuple[str, object]], objective: str) -> tuple[Path, dict[str, str]]:
        root = tmp_path / ".sweepctl" / "sweeps" / SWEEP
        state, names = {}, {}
        for i, (label, (ended, fill)) in enumerate(trials.items()):
            name = names[label] = f"{SWEEP}-l{label}-{i:010d}"
            state[name] = {"id": f"{i:010d}", "uid": name, "params": {"label": label}, "args": [],
                           "template_hash": "h", "state": ended}
            log_dir = root / "logs" / name
            log_dir.parent.mkdir(parents=True, exist_ok=True)
            fill(log_dir)  # type: ignore[operator]
        (root / "state.json").write_text(json.dumps({"trials": state, "pruned": {}}))
        spec = tmp_path / "s.yaml"
        spec.write_text(f"name: {SWEEP}\nhyperParamValues:\n  label: {sorted(trials)}\nobjective: {objective}\n")
        return spec, names

    return make


def rows(sweepctl, spec: Path) -> dict[str, dict]:
    res = sweepctl("status", spec, "-o", "json")
    assert res.exit_code == 0, res.output
    return {r["name"]: r for r in json.loads(res.stdout)}


def copy(src: Path):
    return lambda dst: shutil.copytree(src, dst)


def test_keras_validation_accuracy_ranks_prunes_and_reports(sweepctl, sweep, keras_logs, tmp_path) -> None:
    (a, history_a), (b, history_b) = keras_logs["a"], keras_logs["b"]
    only_train = lambda dst: (shutil.copytree(a, dst), shutil.rmtree(dst / "validation"))  # noqa: E731
    spec, names = sweep({"a": ("Succeeded", copy(a)), "b": ("Succeeded", copy(b)),
                         "c": ("Succeeded", only_train)}, "{metric: validation/epoch_accuracy, goal: maximize}")
    best = {"a": max(history_a["val_accuracy"]), "b": max(history_b["val_accuracy"])}
    got = rows(sweepctl, spec)
    assert {label: got[names[label]]["metric"] for label in "ab"} == pytest.approx(best, rel=1e-6)
    order = sorted("ab", key=lambda label: (-best[label], names[label]))
    assert [got[names[label]]["rank"] for label in order] == [1, 2]
    assert got[names["c"]]["metric"] is None
    assert got[names["c"]]["note"].startswith("no 'validation/epoch_accuracy'; found train/epoch_accuracy")

    table = sweepctl("status", spec)
    assert "1 finished without validation/epoch_accuracy" in table.stdout
    assert "found train/epoch_accuracy" in table.stdout and "without a metric yet" not in table.stdout

    res = sweepctl("report", spec, "--out", tmp_path / "sheet.png", "-o", "json")
    assert res.exit_code == 0, res.output
    tiles = {t["name"]: t for t in json.loads(res.stdout)["tiles"]}
    assert not any(t["image"] for t in tiles.values())  # a user's trainer paints nothing ...
    assert [tiles[names[label]]["curve"] for label in "abc"] == [True, True, False]  # ... but its curve is drawn
    assert (tmp_path / "sheet.png").stat().st_size > 0

    dry = sweepctl("prune", spec, "--keep", "best=1", "--dry-run")
    assert "keep: no metric (no 'validation/epoch_accuracy'; found train/epoch_accuracy" in dry.stdout
    res = sweepctl("prune", spec, "--keep", "best=1", "--auto-approve")
    assert res.exit_code == 0, res.output
    after = rows(sweepctl, spec)
    loser = names[order[1]]
    assert after[loser]["state"] == "pruned" and after[loser]["metric"] == pytest.approx(best[order[1]], rel=1e-6)
    assert after[names[order[0]]]["rank"] == 1 and names["c"] in after  # unscored: kept


def test_stdout_lines_rank_and_prune_and_a_pruned_trial_keeps_its_value(sweepctl, sweep, tmp_path) -> None:
    def printed(text: str):
        return lambda dst: (dst.mkdir(), (dst / "stdout.log").write_text(text))

    spec, names = sweep({
        "a": ("Succeeded", printed("epoch 1: accuracy=0.5 loss=0.9\nepoch 2: accuracy=0.75 loss=0.4\n")),
        "b": ("Succeeded", printed("Epoch 1/2\n- loss: 0.7 - accuracy: 0.625\n- loss: 0.5 - accuracy: 0.875\n")),
        "c": ("Failed", printed("Traceback (most recent call last):\nValueError: bad data\n")),
        "d": ("Running", printed("")),
    }, "{source: stdout, metric: accuracy, goal: maximize}")
    got = rows(sweepctl, spec)
    assert [(got[names[x]]["rank"], got[names[x]]["metric"], got[names[x]]["step"]) for x in "ab"] == [
        (2, 0.75, 2), (1, 0.875, 2)]
    assert got[names["c"]]["note"] == "no line matched 'accuracy'; last line: ValueError: bad data"
    assert got[names["d"]]["note"] == "no output yet"  # still running: it may print one yet

    res = sweepctl("report", spec, "--out", tmp_path / "sheet.png", "-o", "json")
    assert res.exit_code == 0, res.output
    assert [t["curve"] for t in json.loads(res.stdout)["tiles"]][:2] == [True, True]

    assert sweepctl("prune", spec, "--keep", "best=1", "--auto-approve").exit_code == 0
    after = rows(sweepctl, spec)
    assert after[names["a"]]["state"] == "pruned" and after[names["a"]]["metric"] == 0.75
    assert after[names["b"]]["rank"] == 1


def test_a_pattern_and_a_tensorboardx_tag_with_a_slash_rank_alike(sweepctl, sweep) -> None:
    def both(loss: float):
        def fill(dst: Path) -> None:
            tensorboardx_scalars(dst, {"Loss/val": [(0, 4.0), (1, loss)]})
            (dst / "stdout.log").write_text(f"[0] Loss/val is 4.0\n[1] Loss/val is {loss}\n")
        return fill

    trials = {"a": ("Succeeded", both(0.5)), "b": ("Succeeded", both(0.25))}
    spec, names = sweep(trials, "{metric: Loss/val}")
    by_events = rows(sweepctl, spec)
    assert [by_events[names[x]]["metric"] for x in "ab"] == [0.5, 0.25] and by_events[names["b"]]["rank"] == 1
    spec.write_text(spec.read_text().replace(
        "objective: {metric: Loss/val}",
        r"objective: {metric: Loss/val, source: stdout, pattern: '\[(?P<step>\d+)\] (?P<name>\S+) is (?P<value>\S+)'}"))
    by_stdout = rows(sweepctl, spec)
    assert {n: (r["metric"], r["step"], r["rank"]) for n, r in by_stdout.items()} == {
        n: (r["metric"], r["step"], r["rank"]) for n, r in by_events.items()}


def test_early_stopping_and_search_history_read_the_same_source(sweep, tmp_path) -> None:
    import os

    from sweepctl.backends import processes
    from sweepctl.backends.local import LocalBackend
    from sweepctl.commands.stopping import apply_rule
    from sweepctl.core.space import EarlyStopping
    from sweepctl.core.spec import load_spec
    from sweepctl.metrics.history import read_history

    def printed(*losses: float):
        return lambda dst: (dst.mkdir(), (dst / "stdout.log").write_text(
            "".join(f"step={10 * i} loss={v}\n" for i, v in enumerate(losses))))

    spec_path, names = sweep({"a": ("Succeeded", printed(1.0, 0.5)), "b": ("Succeeded", printed(1.0, 0.4)),
                              "c": ("Succeeded", printed(1.0, 0.25)), "d": ("Running", printed(5.0, 4.0))},
                             "{source: stdout, metric: loss}")
    state_file = tmp_path / ".sweepctl" / "sweeps" / SWEEP / "state.json"
    state = json.loads(state_file.read_text())
    state["trials"][names["d"]]["process"] = processes.identity(os.getpid())  # alive: still training
    state_file.write_text(json.dumps(state))
    spec = load_spec(spec_path.read_text(), filename=str(spec_path))
    backend = LocalBackend(state_dir=tmp_path / ".sweepctl")
    observed = backend.observe(SWEEP)

    history = {p.name: (p.value, p.step) for p in read_history(backend, spec, observed)}
    assert history == {names["a"]: (0.5, 10), names["b"]: (0.4, 10), names["c"]: (0.25, 10), names["d"]: (4.0, 10)}
    outcome = apply_rule(sweep=SWEEP, backend=backend, spec=spec, metric="loss", goal="minimize",
                         rule=EarlyStopping(), observed=observed)
    assert [s.name for s in outcome.stops] == [names["d"]]  # worse than the median of the others at every step
