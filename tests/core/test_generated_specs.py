"""Generated specs: `plan` succeeds or exits 1 with positioned diagnostics; it never raises.

Documents are drawn from the schema's own shapes (every field, at its type or
its enum), with any value swapped for a hostile one: lone surrogates, NUL,
numbers beyond 64 bits or float range, deep nesting, and values of every wrong
type. Seeded (derandomize), so the suite sees the same documents every run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from click.testing import Result

from sweepctl.core.schema import SCHEMA

HOSTILE_TEXT = st.sampled_from(["\ud800", "a\udfffb", "\0", "lr\0", "", " ", "é", "\U0001f600", "--log-dir=/x",
                                "1e999", "0x10", "~", "yes", "!!str", "a" * 300])
HOSTILE_NUMBER = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, 1e308, -1e308, float("inf"),
                                  float("-inf"), float("nan"), -0.0, 0, -1, 0.5, 1.0, 2**53 + 1])
HOSTILE = st.one_of(HOSTILE_TEXT, HOSTILE_NUMBER, st.booleans(), st.none(), st.text(max_size=8),
                    st.integers(), st.floats(), st.just([]), st.just({}), st.just([[1]]), st.just({"min": 1}))


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


DEEP = st.integers(min_value=40, max_value=70).map(_nested)


def _shaped(schema: Any, hostile: bool) -> st.SearchStrategy[Any]:
    """Values of the schema's shape; if hostile, one in eight is hostile instead."""
    if not isinstance(schema, dict):
        return HOSTILE
    if not hostile:
        return _conforming(schema, hostile)
    return st.integers(min_value=0, max_value=7).flatmap(
        lambda dice: st.one_of(HOSTILE, DEEP) if dice == 7 else _conforming(schema, hostile))


def _conforming(schema: dict[str, Any], hostile: bool) -> st.SearchStrategy[Any]:
    """Values the schema's types and enums allow (the semantic checks may still refuse them)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "properties" in schema:
        props = schema["properties"]
        required = {k: _shaped(props[k], hostile) for k in schema.get("required", []) if k in props}
        optional = {k: _shaped(v, hostile) for k, v in props.items() if k not in required}
        fixed = st.fixed_dictionaries(required, optional=optional)
        if schema.get("additionalProperties") is False:
            return fixed
    types = schema.get("type", ["object"])
    types = types if isinstance(types, list) else [types]
    options: list[st.SearchStrategy[Any]] = []
    for kind in types:
        if kind == "object" and "properties" in schema:
            options.append(fixed)
        elif kind == "object":
            values = schema.get("additionalProperties", {})
            keys = st.from_regex(schema["propertyNames"]["pattern"], fullmatch=True) if "propertyNames" in schema \
                else st.text(max_size=10)
            if isinstance(values, dict) and "then" in values:  # hyperParamValues: a list or a range
                ranges, lists = _conforming(values["then"], hostile), st.lists(
                    _shaped(values["else"]["items"], hostile), min_size=1, max_size=4)
                entry = st.integers(min_value=0, max_value=3).flatmap(lambda dice: ranges if dice == 3 else lists)
            else:
                entry = _shaped(values, hostile)
            if hostile:
                keys = st.integers(min_value=0, max_value=7).flatmap(lambda dice: HOSTILE_TEXT if dice == 7 else keys)
            options.append(st.dictionaries(keys, entry, min_size=schema.get("minProperties", 0), max_size=4))
        elif kind == "array":
            options.append(st.lists(_shaped(schema.get("items", {}), hostile), max_size=4))
        elif kind == "string" and "pattern" in schema:
            options.append(st.from_regex(schema["pattern"], fullmatch=True))
        elif kind == "string":
            options.append(st.text(st.characters(codec="utf-8", exclude_characters="\0"),
                                   min_size=schema.get("minLength", 0), max_size=12))
        elif kind == "integer":
            options.append(st.integers(min_value=-2, max_value=2000))
        elif kind == "number":
            options.append(st.floats(allow_nan=True, allow_infinity=True))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
    return st.one_of(options) if options else HOSTILE


# Half the documents have only values of the right shape, which reach trial expansion and the plan.
DOCUMENTS = st.booleans().flatmap(lambda hostile: _conforming(SCHEMA, hostile))


def _render(doc: Any, style: int) -> str:
    """The document as YAML: JSON (YAML 1.2 flow, with escapes for surrogates and NUL) or block YAML."""
    if style == 0:
        return json.dumps(doc, allow_nan=True)
    try:
        return yaml.safe_dump(doc, default_flow_style=style == 2, allow_unicode=False, width=200)
    except yaml.YAMLError:
        return json.dumps(doc, allow_nan=True)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    return tmp_path / "spec.yaml"


@pytest.fixture(scope="module")
def plan() -> Callable[[Path], Result]:
    """`sweepctl plan FILE --backend local` in-process, its command built once (typer takes 40 ms a build)."""
    from click.testing import CliRunner
    from typer.main import get_command

    from sweepctl.cli import app

    command, runner = get_command(app), CliRunner()

    def run(path: Path) -> Result:
        res = runner.invoke(command, ["plan", str(path), "--backend", "local"], catch_exceptions=False)
        return res

    return run


@settings(derandomize=True, max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(doc=DOCUMENTS, style=st.integers(min_value=0, max_value=2))
def test_plan_never_raises_on_generated_specs(plan, spec_file: Path, monkeypatch: pytest.MonkeyPatch,
                                             doc: Any, style: int) -> None:
    monkeypatch.chdir(spec_file.parent)
    spec_file.write_text(_render(doc, style), encoding="utf-8", errors="surrogatepass")
    res = plan(spec_file)  # raises, failing the test, on any traceback
    assert res.exit_code in (0, 1), res.output
    if res.exit_code == 1:
        assert "spec.yaml:" in res.stderr, res.output  # a diagnostic that names the file


@pytest.mark.parametrize(("text", "message", "position"), [
    ('name: lab\nhyperParamValues:\n  batchSize: ["\\ud800"]\n', "a lone surrogate", (3, 15)),
    ('name: lab\nargs: +1\nimgae: x\nhyperParamValues:\n  lr: [1]\n', "args: expected a list, got a number", (2, 7)),
    ('name: lab\nhyperParamValues:\n  batchSize: ["a\\0b"]\n', "holds a NUL character", (3, 15)),
    ('name: lab\nhyperParamValues:\n  batchSize: [18446744073709551616]\n', "does not fit in 64 bits", (3, 15)),
], ids=["lone surrogate", "a number for args", "NUL", "65-bit integer"])
def test_found_by_generated_specs_are_positioned_errors(sweepctl, spec_file: Path, text: str, message: str,
                                                        position: tuple[int, int]) -> None:
    spec_file.write_text(text)
    res = sweepctl("plan", spec_file, "--backend", "local")
    assert res.exit_code == 1
    assert f"spec.yaml:{position[0]}:{position[1]}: " in res.stderr and message in res.stderr, res.stderr
    diagnostics = json.loads(sweepctl("plan", spec_file, "--backend", "local", "-o", "json").stdout)
    assert any(message in d["message"] for d in diagnostics["error"]["diagnostics"])


def test_a_surrogate_pair_is_the_character_it_stands_for() -> None:
    from sweepctl.core.spec import load_spec

    spec = load_spec('{"name": "lab", "hyperParamValues": {"mood": ["\\ud83d\\ude00", "\\u00e9"]}}')
    assert spec.hyper_params[0].values == ("\U0001f600", "é")  # as JSON means it, and as Python's json reads it
