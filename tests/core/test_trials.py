"""Trial identity: by value, stable under reordering, insertion and new defaulted params."""

from __future__ import annotations

import re

from sweepctl.core.spec import flag_name, load_spec
from sweepctl.core.trials import expand

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def names(text: str) -> dict[str, dict]:
    return {t.name: dict(t.params) for t in expand(load_spec(text))}


def test_flags_are_kebab_case() -> None:
    assert flag_name("learningRate") == "--learning-rate"
    assert flag_name("hiddenLayers") == "--hidden-layers"
    assert flag_name("seed") == "--seed"


def test_reordering_and_inserting_values_keeps_names() -> None:
    base = names("name: s\nhyperParamValues: {lr: [0.1, 0.01], depth: [5, 6]}\n")
    moved = names("name: s\nhyperParamValues: {depth: [6, 5], lr: [0.01, 0.05, 0.1]}\n")
    assert set(base) < set(moved)
    assert len(moved) - len(base) == 2


def test_spelling_variants_are_the_same_trial() -> None:
    a = names("name: s\nhyperParamValues: {lr: [0.01], depth: [5]}\n")
    b = names("name: s\nhyperParamValues: {lr: [1.0e-2], depth: [5.0]}\n")
    c = names("name: s\nhyperParamValues: {lr: [0.010], depth: [5]}\n")
    assert a.keys() == b.keys() == c.keys()


def test_a_new_hyperparameter_keeps_trials_at_its_default() -> None:
    before = names("name: s\nhyperParamValues: {lr: [0.1, 0.01]}\n")
    after = names("name: s\ndefaults: {batchSize: 50}\nhyperParamValues: {lr: [0.1, 0.01], batchSize: [50, 200]}\n")
    assert set(before) < set(after)
    kept = [p for n, p in after.items() if n in before]
    assert all(p["batchSize"] == 50 for p in kept)
    new = [t for t in expand(load_spec(
        "name: s\ndefaults: {batchSize: 50}\nhyperParamValues: {lr: [0.1], batchSize: [50, 200]}\n"))]
    # Always passed, the default too: what a trial shows is what it ran, whatever the trainer's default.
    assert new[0].flags() == ["--lr", "0.1", "--batch-size", "50"]
    assert new[1].flags() == ["--lr", "0.1", "--batch-size", "200"]


def test_names_are_dns1035_unique_and_fit_for_the_longest_sweep_name() -> None:
    sweep = "s" * 40
    grid = names(f"name: {sweep}\nhyperParamValues: {{learningRate: [0.001, 1e-5, 3], hiddenLayers: [5, 6], "
                 "optimizerName: [adam, 'SGD with momentum'], useBias: [true, false]}\n")
    assert len(grid) == 24
    for name in grid:
        assert len(name) <= 63 and DNS1035.match(name), name
    short = names("name: lab\nhyperParamValues: {learningRate: [0.01], hiddenLayers: [5]}\n")
    assert list(short)[0].startswith("lab-hl5-lr0p01-")


def test_names_do_not_depend_on_the_order_of_keys() -> None:
    a = names("name: s\nhyperParamValues: {lr: [0.1, 0.01], depth: [5, 6, 7], act: [relu, tanh]}\n")
    b = names("name: s\nhyperParamValues: {act: [tanh, relu], lr: [0.01, 0.1], depth: [7, 5, 6]}\n")
    assert len(a) == 12
    assert a == b  # the same names, each with the same values


def test_values_the_trainer_gets_as_the_same_text_are_one_trial() -> None:
    number = expand(load_spec("name: s\nhyperParamValues: {lr: [0.01], useBias: [true]}\n"))[0]
    text = expand(load_spec("name: s\nhyperParamValues: {lr: ['0.01'], useBias: ['true']}\n"))[0]
    assert number.flags() == text.flags() == ["--lr", "0.01", "--use-bias", "true"]
    assert number.name == text.name


def test_negative_and_positive_values_read_differently() -> None:
    grid = names("name: s\nhyperParamValues: {lr: [-0.01, 0.01]}\n")
    readable = sorted(n.rsplit("-", 1)[0] for n in grid)
    assert readable == ["s-lr0p01", "s-lrm0p01"]


def test_booleans_and_numeric_looking_strings_are_passed_as_written() -> None:
    trials = expand(load_spec("name: s\nhyperParamValues:\n  useBias: [true, false]\n"
                              "  tag: ['010', '1e-3', 'yes', 7]\n"))
    flags = {tuple(t.flags()) for t in trials}
    assert ("--use-bias", "true", "--tag", "010") in flags
    assert ("--use-bias", "false", "--tag", "1e-3") in flags
    assert ("--use-bias", "true", "--tag", "yes") in flags
    assert ("--use-bias", "false", "--tag", "7") in flags
    params = {(t.params["useBias"], t.params["tag"]) for t in trials}
    assert (True, "010") in params and (False, 7) in params
    assert len({t.name for t in trials}) == 8
