"""Metrics from a trainer's own output lines (objective.source: stdout), in the formats the README documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from library_writers import keras_fit

from sweepctl.core.diagnostics import SpecError
from sweepctl.core.spec import load_spec
from sweepctl.metrics.stdout import parse, series


def test_name_value_pairs_anywhere_on_a_line_count_by_exact_name() -> None:
    text = ("starting\naccuracy=0.5\nepoch 3: accuracy=0.75 loss=0.2\n"
            "32/32 - 0s - loss: 0.3 - val_accuracy: 0.9100 - accuracy: 0.875\nval_accuracy=0.1\n")
    points, last = parse(text, "accuracy")
    assert points == [(1, 0.5), (2, 0.75), (3, 0.875)]  # the step counts matching lines; val_accuracy is another name
    assert parse(text, "val_accuracy")[0] == [(1, 0.91), (2, 0.1)]
    assert parse(text, "loss")[0] == [(1, 0.2), (2, 0.3)]
    assert last == "val_accuracy=0.1"


def test_a_step_or_epoch_pair_gives_the_step() -> None:
    text = "step=10 loss=0.5\nepoch=3 loss=0.4\nloss=0.3 step: 40 epoch=9\nloss=0.2\nstep=1.5 loss=0.1\n"
    assert parse(text, "loss")[0] == [(3, 0.4), (4, 0.2), (5, 0.1), (10, 0.5), (40, 0.3)]


def test_progress_bars_count_as_the_terminal_shows_them() -> None:
    text = "1/3 loss: 9.0\r2/3 loss: 8.0\r3/3 loss: 0.25\nloss=nan\nloss=-1e-3 and more\n"
    points, _ = parse(text, "loss")
    assert [s for s, _ in points] == [1, 2, 3] and points[0][1] == 0.25 and points[2][1] == -1e-3
    assert points[1][1] != points[1][1]  # NaN, kept: a diverged trial ranks last


def test_a_pattern_reads_other_formats_with_its_own_groups() -> None:
    text = "loss is 0.5\n[7] loss is 0.25\nloss=0.1\n"
    assert parse(text, "loss", r"(?P<name>\w+) is (?P<value>[-+.\deE]+)")[0] == [(1, 0.5), (2, 0.25)]
    assert parse(text, "loss", r"\[(?P<step>\d+)\] (?P<name>\w+) is (?P<value>\S+)")[0] == [(7, 0.25)]


def test_a_trial_without_the_metric_says_what_it_printed_last() -> None:
    assert series(None, "loss").error == "no output yet"
    assert series("", "loss", ended=True).error == "no output"
    missing = series("Epoch 1/3\nval_loss: 0.5\ndone\n", "loss", ended=True)
    assert not missing.points and missing.error == "no line matched 'loss'; last line: done"
    long = series("x" * 500, "loss").error
    assert long is not None and long.endswith("...") and len(long) < 200


def test_real_keras_output_gives_the_history_keras_reports(tmp_path: Path) -> None:
    history = keras_fit(tmp_path / "trial", seed=1, epochs=2)
    text = (tmp_path / "trial" / "stdout.log").read_text()
    for name in ("val_accuracy", "accuracy", "val_loss"):
        points, _ = parse(text, name)
        assert [s for s, _ in points] == [1, 2]
        assert [v for _, v in points] == pytest.approx(history[name], abs=1e-4)  # Keras prints 4 decimals


@pytest.mark.parametrize(("objective", "message"), [
    ("{source: stdout, pattern: '(?P<name>\\w+)'}", "objective.pattern has no (?P<value>...) group"),
    ("{source: stdout, pattern: '(unclosed'}", "objective.pattern is not a regular expression"),
    ("{pattern: '(?P<name>\\w+)=(?P<value>\\S+)'}", "objective.pattern reads stdout lines"),
    ("{source: stderr}", "objective.source"),
])
def test_a_bad_stdout_objective_is_refused_with_its_line(objective: str, message: str) -> None:
    text = f"name: s\nhyperParamValues:\n  lr: [0.1]\nobjective: {objective}\n"
    with pytest.raises(SpecError) as err:
        load_spec(text, filename="s.yaml")
    (problem,) = err.value.diagnostics
    assert message in problem.message and problem.file == "s.yaml" and problem.line == 4


def test_a_stdout_objective_loads_and_events_stay_the_default() -> None:
    base = "name: s\nhyperParamValues:\n  lr: [0.1]\n"
    spec = load_spec(base + "objective: {source: stdout, metric: accuracy, goal: maximize}\n")
    assert (spec.metric_source.kind, spec.metric_source.pattern, spec.metric) == ("stdout", None, "accuracy")
    plain = load_spec(base)
    assert plain.metric_source.kind == "events" and plain.metric_source.pattern is None
