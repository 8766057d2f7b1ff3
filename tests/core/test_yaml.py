"""The spec is read as YAML 1.2, and hostile YAML gets a clean error with a position.

PyYAML alone reads YAML 1.1 (`yes` is true, `010` is 8, `1:30` is 90),
constructs any tag, and expands aliases without limit.
"""

from __future__ import annotations

import tracemalloc

import pytest

from sweepctl.core.diagnostics import SpecError
from sweepctl.core.spec import load_spec
from sweepctl.core.trials import expand


def values(text: str) -> list:
    return list(load_spec(f"name: s\nhyperParamValues:\n  v: {text}\n").hyper_params[0].values)


def refused(text: str) -> tuple[int | None, int | None, str]:
    with pytest.raises(SpecError) as err:
        load_spec(text, filename="s.yaml")
    d = err.value.diagnostics[0]
    return d.line, d.column, d.message


def test_yaml_1_2_scalars() -> None:
    assert values("[yes, no, on, off, y, n]") == ["yes", "no", "on", "off", "y", "n"]
    assert values("[010, 0o10, 0x10, 1_000]") == [10, 8, 16, "1_000"]
    assert values("[1:30, 2024-01-01]") == ["1:30", "2024-01-01"]
    assert values("[1e-3, .5, 1.0e+2, -7]") == [0.001, 0.5, 100, -7]
    assert values("[true, False]") == [True, False]
    assert values("[TRUE, False]") == [True, False]
    assert values("[!!str 010, !!int '12', !!float 3]") == ["010", 12, 3]


def test_yaml_1_1_words_reach_the_trainer_as_written() -> None:
    trial = expand(load_spec("name: s\nhyperParamValues: {optimizerName: [on], warmup: [1:30], depth: [010]}\n"))[0]
    assert trial.flags() == ["--optimizer-name", "on", "--warmup", "1:30", "--depth", "10"]


@pytest.mark.parametrize("text, position, message", [
    ("name: s\nhyperParamValues:\n  lr: [!!python/object/apply:os.system ['echo pwned']]\n", (3, 8),
     "the tag !!python/object/apply:os.system is not allowed"),
    ("name: s\nhyperParamValues:\n  lr: !!python/object/apply:os.system ['echo pwned']\n", (3, 7),
     "the tag !!python/object/apply:os.system is not allowed"),
    ("name: s\nhyperParamValues: !!python/object:collections.OrderedDict {lr: [1]}\n", (2, 19),
     "the tag !!python/object:collections.OrderedDict is not allowed"),
    ("name: !custom s\nhyperParamValues: {lr: [1]}\n", (1, 7), "the tag !custom is not allowed"),
    ("name: s\nhyperParamValues: {lr: [!!binary aGk=]}\n", (2, 25), "the tag !!binary is not allowed"),
    ("name: s\nhyperParamValues: {lr: !!set {1, 2}}\n", (2, 24), "the tag !!set is not allowed"),
    ("name: s\nhyperParamValues: {lr: [!!int abc]}\n", (2, 25), "'abc' is not a valid !!int"),
    ("name: s\nhyperParamValues:\n  lr: &a [1, *a]\n", (3, 7), "an alias refers to the anchor that contains it"),
    ("name: s\nhyperParamValues: &m {lr: [1], more: *m}\n", (2, 19), "an alias refers to the anchor"),
])
def test_hostile_yaml_gets_a_clean_error_with_a_position(text: str, position: tuple[int, int], message: str) -> None:
    line, column, got = refused(text)
    assert message in got
    assert (line, column) == position


def test_alias_expansion_is_bounded() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdef"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{'abcdef'[i]}"] * 9) + "]")
    bomb = "name: s\nhyperParamValues: {lr: [1]}\nargs: []\nbomb:\n" + "".join(f"  {line}\n" for line in lines)
    assert len(bomb) < 350  # 9**6 = 531,441 values once expanded (unbounded, each level multiplies by 9)
    tracemalloc.start()
    try:
        line, column, message = refused(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "expands to too many values through aliases" in message
    assert line == 4  # the key under which it expands
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MB"


def test_deep_nesting_is_refused_cleanly() -> None:
    _, _, message = refused("name: s\nhyperParamValues: {lr: " + "[" * 2000 + "]" * 2000 + "}\n")
    assert "nested more than" in message
