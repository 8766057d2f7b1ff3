"""Bad search specs are refused with the file, line and column, what was expected, and a hint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweepctl.core.diagnostics import SpecError
from sweepctl.core.spec import load_spec

GOOD = """\
name: s
search:
  algorithm: tpe
  trials: 24
  parallel: 4
hyperParamValues:
  learningRate: {min: 1.0e-4, max: 0.1, scale: log}
  hiddenLayers: {min: 3, max: 9, type: int}
  activation: [relu, tanh]
earlyStopping:
  rule: median
  afterStep: 2000
  minTrials: 3
"""

CASES = {
    "range in a grid": (GOOD.replace("  algorithm: tpe\n  trials: 24\n  parallel: 4\n", "  seed: 1\n"),
                        "hyperParamValues.learningRate is a range, and a grid needs a list of values", (5, 17),
                        "algorithm: random"),
    "min not below max": (GOOD.replace("min: 3, max: 9", "min: 9, max: 3"), "min (9) must be less than max (3)",
                          (8, 17), "swap them"),
    "log scale from zero": (GOOD.replace("min: 1.0e-4", "min: 0"), "a log scale needs min > 0, got 0", (7, 17),
                            "above zero"),
    "int range with fractions": (GOOD.replace("min: 3, max: 9", "min: 2.5, max: 9"), "an int range needs whole-number",
                                 (8, 17), "type: int"),
    "no budget": (GOOD.replace("  trials: 24\n", ""), "search.trials is required with algorithm tpe", (3, 3),
                  "trials: 24"),
    "budget over the limit": (GOOD.replace("trials: 24", "trials: 5000"), "search.trials is 5,000, more than the limit",
                              (4, 11), "--max-trials 5000"),
    "unknown algorithm": (GOOD.replace("algorithm: tpe", "algorithm: tpf"), "search.algorithm: 'tpf' is not one of grid, random, tpe",
                          (3, 14), "did you mean 'tpe'?"),
    "misspelt search key": (GOOD.replace("parallel:", "paralel:"), "unknown key 'paralel' in search", (5, 3),
                            "did you mean 'parallel'?"),
    "misspelt range key": (GOOD.replace("scale: log", "scal: log"), "unknown key 'scal' in hyperParamValues.learningRate",
                           (7, 41), "did you mean 'scale'?"),
    "range without max": (GOOD.replace(", max: 0.1", ""), "missing required key 'max'", (7, 17), None),
    "zero parallel": (GOOD.replace("parallel: 4", "parallel: 0"), "search.parallel must be at least 1, got 0", (5, 13), None),
    "unknown rule": (GOOD.replace("rule: median", "rule: mean"), "earlyStopping.rule: 'mean' is not one of median",
                     (11, 9), None),
    "a scalar for values": (GOOD.replace("[relu, tanh]", "relu"), "hyperParamValues.activation: expected a list or a mapping, got a string",
                            (9, 15), None),
    "budget in a grid": (GOOD.replace("algorithm: tpe", "algorithm: grid").replace(
        "{min: 1.0e-4, max: 0.1, scale: log}", "[0.01]").replace("{min: 3, max: 9, type: int}", "[5]"),
        "search.trials has no meaning for a grid", (4, 11), "random or tpe"),
    "random over a too small list space": (
        "name: s\nsearch: {algorithm: random, trials: 7}\nhyperParamValues: {a: [1, 2, 3], b: [x, y]}\n",
        "search.trials is 7, but the lists allow only 6 distinct trials", (2, 37), "lower trials to 6"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_search_spec(case: str) -> None:
    text, message, position, hint = CASES[case]
    with pytest.raises(SpecError) as err:
        load_spec(text, filename="bad.yaml")
    found = [d for d in err.value.diagnostics if message in d.message]
    assert found, [d.message for d in err.value.diagnostics]
    assert (found[0].file, found[0].line, found[0].column) == ("bad.yaml", *position)
    if hint:
        assert hint in (found[0].hint or "")


def test_the_good_spec_loads_with_its_settings() -> None:
    spec = load_spec(GOOD)
    assert (spec.search.algorithm, spec.search.trials, spec.search.parallel, spec.search.seed) == ("tpe", 24, 4, 0)
    assert spec.early_stopping is not None and (spec.early_stopping.after_step, spec.early_stopping.min_trials) == (2000, 3)
    lr = spec.hyper_params[0].range
    assert lr is not None and (lr.low, lr.high, lr.log, lr.integer) == (1e-4, 0.1, True, False)
    assert load_spec("name: s\nhyperParamValues: {a: [1]}\n").search.algorithm == "grid"  # the lab's form: a grid


def test_a_bad_search_spec_changes_nothing(sweepctl, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(GOOD.replace("min: 3, max: 9", "min: 9, max: 3"))
    res = sweepctl("apply", spec, "--auto-approve", "--state-dir", tmp_path / "state", "-o", "json")
    assert res.exit_code == 1
    assert "must be less than max" in json.loads(res.stdout)["error"]["diagnostics"][0]["message"]
    assert not (tmp_path / "state").exists()
