"""The sweep spec: parse YAML text into a validated, normalised `Spec`.

Pure: it takes the file's text and name and never reads the disk, so every
error can be reported, with its line and column, before anything else happens.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from sweepctl.core.diagnostics import Diagnostic, SpecError, did_you_mean
from sweepctl.core.schema import DEFAULT_MAX_TRIALS, SCHEMA
from sweepctl.core.space import EarlyStopping, Range, Search, parse_early_stopping, parse_range, parse_search, space_diagnostics

__all__ = ["Scalar", "HyperParam", "Spec", "load_spec", "canonical_value", "flag_name", "value_key"]

Scalar = bool | int | float | str
Path = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class HyperParam:
    """One swept hyperparameter and its values, in the order the spec lists them, or its range."""

    name: str
    values: tuple[Scalar, ...]
    default: Scalar | None = None
    range: Range | None = None  # random and tpe search only; `values` is then empty

    @property
    def flag(self) -> str:
        return flag_name(self.name)


@dataclass(frozen=True, kw_only=True)
class Spec:
    """A validated sweep spec with every default filled in."""

    name: str
    namespace: str | None
    backend: str
    image: str
    use_gpu: bool
    args: tuple[str, ...]
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    claim_name: str
    mount_path: str
    tensorboard_image: str
    service_type: str
    source_ranges: tuple[str, ...]
    metric: str
    goal: str
    parallelism: int | None
    threads_per_trial: int
    hyper_params: tuple[HyperParam, ...]
    source: str = "<spec>"
    digest: str = field(default="", compare=False)
    search: Search = field(default_factory=Search)
    early_stopping: EarlyStopping | None = None

    @property
    def grid_size(self) -> int:
        return math.prod(len(hp.values) for hp in self.hyper_params)


@functools.lru_cache(maxsize=1024)
def flag_name(name: str) -> str:
    """camelCase hyperparameter name -> trainer flag: learningRate -> --learning-rate."""
    return "--" + re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z])", r"-\1\2", name).lower()


def canonical_value(value: Scalar) -> Scalar:
    """The value's identity: 0.01, 1.0e-2 and 0.010 are one value; 5.0 is 5."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def value_key(value: Scalar) -> tuple[str, Scalar]:
    """What makes two values the same: equal numbers, or equal strings or booleans.

    True == 1 in Python, but they are different hyperparameter values.
    """
    return (type(value).__name__ if isinstance(value, bool | str) else "number", value)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as 1e-3 as numbers.

    PyYAML follows YAML 1.1, where 1e-3 (no dot) is a string: a surprise for
    anyone writing a learning rate.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass
class _Document:
    """Plain data from YAML, with the position of every key and value."""

    data: Any
    values: dict[Path, yaml.Mark]
    keys: dict[Path, yaml.Mark]


def _compose(text: str, filename: str) -> _Document:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise SpecError(
            [
                Diagnostic(
                    message=f"malformed YAML: {err.problem or err.context}",
                    file=filename,
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                    hint="check the indentation and quoting around this position",
                )
            ]
        ) from None
    except yaml.YAMLError as err:
        raise SpecError([Diagnostic(message=f"malformed YAML: {err}", file=filename)]) from None
    if root is None:
        raise SpecError(
            [Diagnostic(message="the spec is empty", file=filename, hint="start with 'name:' and 'hyperParamValues:'")]
        )
    doc = _Document(data=None, values={}, keys={})
    problems: list[Diagnostic] = []
    constructor = _Loader("")

    def build(node: yaml.Node, path: Path) -> Any:
        doc.values[path] = node.start_mark
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = constructor.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    problems.append(_at(filename, key_node.start_mark, "keys must be plain strings"))
                    continue
                if key in out:
                    problems.append(
                        _at(filename, key_node.start_mark, f"duplicate key '{key}'", "remove one of the two")
                    )
                    continue
                doc.keys[path + (key,)] = key_node.start_mark
                out[key] = build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, path + (i,)) for i, item in enumerate(node.value)]
        return constructor.construct_object(node)

    doc.data = build(root, ())
    if problems:
        raise SpecError(problems)
    return doc


def _at(filename: str, mark: yaml.Mark | None, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(
        message=message,
        file=filename,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
        hint=hint,
    )


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing (null)"
    return f"a {type(value).__name__}"


_TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing",
}


def _field_name(path: Path) -> str:
    return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[") or "the spec"


def _schema_diagnostics(doc: _Document, filename: str) -> Iterator[Diagnostic]:
    from jsonschema import Draft202012Validator  # heavy; only when a spec is loaded

    validator = Draft202012Validator(SCHEMA)
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: [str(p) for p in e.absolute_path]):
        path: Path = tuple(error.absolute_path)
        mark = doc.values.get(path)
        where = _field_name(path)
        kind = error.validator
        if kind == "additionalProperties" and isinstance(error.instance, dict):
            known = list(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in known:
                    yield _at(
                        filename,
                        doc.keys.get(path + (key,)),
                        f"unknown key '{key}'" + (f" in {where}" if path else ""),
                        did_you_mean(key, known) or (f"known keys: {', '.join(known)}" if known else None),
                    )
        elif kind == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            key = missing[0] if missing else "?"
            yield _at(filename, mark, f"missing required key '{key}'", _REQUIRED_HINTS.get(key))
        elif kind == "minItems":
            yield _at(
                filename, mark, f"{where} is an empty list", "give at least one value, or remove the key"
            )
        elif kind == "uniqueItems":
            continue  # reported by value, with the duplicate's own line, in _semantic_diagnostics
        elif kind == "minProperties":
            yield _at(filename, mark, f"{where} is empty", "add at least one hyperparameter with a list of values")
        elif kind == "type":
            expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
            names = [_TYPE_WORDS.get(t, t) for t in expected if t != "null"]
            words = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
            hint = None
            if isinstance(error.instance, list | dict) and "array" not in expected and "object" not in expected:
                hint = "each value must be a single scalar"
            yield _at(filename, mark, f"{where}: expected {words}, got {_describe(error.instance)}", hint)
        elif kind == "enum":
            options = [str(o) for o in error.validator_value]
            yield _at(
                filename,
                mark,
                f"{where}: {error.instance!r} is not one of {', '.join(options)}",
                did_you_mean(str(error.instance), options),
            )
        elif kind == "pattern" and path == ("name",):
            yield _at(
                filename,
                mark,
                f"sweep name {error.instance!r} is not a DNS-1035 label of at most 40 characters",
                f"use lowercase letters, digits and '-', starting with a letter, e.g. '{_dns_suggestion(error.instance)}'",
            )
        elif kind == "pattern" and error.validator_value == SCHEMA["properties"]["hyperParamValues"]["propertyNames"]["pattern"]:
            yield _at(
                filename,
                doc.keys.get(path + (error.instance,), mark),
                f"hyperparameter name {error.instance!r} must be camelCase letters and digits",
                f"write it as '{_camel(error.instance)}'; it becomes the flag {flag_name(_camel(error.instance))}",
            )
        elif kind == "pattern":
            yield _at(filename, mark, f"{where}: {error.instance!r} is not valid ({_PATTERN_WORDS.get(path[-1] if path else '', 'see the schema')})")
        elif kind == "minimum":
            yield _at(filename, mark, f"{where} must be at least {error.validator_value}, got {error.instance}")
        else:
            yield _at(filename, mark, f"{where}: {error.message}")


_REQUIRED_HINTS = {
    "name": "add e.g. 'name: my-sweep' (a DNS label of at most 40 characters)",
    "hyperParamValues": "add e.g. 'hyperParamValues: {learningRate: [0.001, 0.01]}'",
}
_PATTERN_WORDS = {
    "namespace": "a DNS-1123 label: lowercase letters, digits and '-'",
    "claimName": "a DNS-1123 label: lowercase letters, digits and '-'",
    "mountPath": "an absolute path",
}


def _dns_suggestion(name: Any) -> str:
    text = re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")
    text = re.sub(r"^[^a-z]+", "", text)[:40].rstrip("-")
    return text or "my-sweep"


def _camel(name: str) -> str:
    parts = [p for p in re.split(r"[^a-zA-Z0-9]+", name) if p]
    if not parts:
        return "param"
    camel = parts[0][0].lower() + parts[0][1:] + "".join(p[0].upper() + p[1:] for p in parts[1:])
    return camel if camel[0].isalpha() else "p" + camel


def _semantic_diagnostics(doc: _Document, filename: str, max_trials: int) -> Iterator[Diagnostic]:
    data = doc.data
    grid = data["hyperParamValues"]
    for name, values in grid.items():
        if not isinstance(values, list):
            continue  # a range: space_diagnostics checks it
        seen: dict[tuple[str, Scalar], int] = {}
        for i, value in enumerate(values):
            if not isinstance(value, bool | int | float | str):
                continue  # a type error, already reported
            if isinstance(value, float) and not math.isfinite(value):
                yield _at(filename, doc.values.get(("hyperParamValues", name, i)), f"hyperParamValues.{name}[{i}] is {value}, not a finite number")
                continue
            key = value_key(canonical_value(value))
            if key in seen:
                yield _at(
                    filename,
                    doc.values.get(("hyperParamValues", name, i)),
                    f"hyperParamValues.{name} lists {value!r} twice (the same value as item {seen[key]})",
                    "remove the duplicate: values are compared as numbers, so 0.01, 1.0e-2 and 0.010 are the same",
                )
            else:
                seen[key] = i
    for name in data.get("defaults", {}):
        if name not in grid:
            yield _at(
                filename,
                doc.keys.get(("defaults", name)),
                f"defaults.{name} names no hyperparameter in hyperParamValues",
                did_you_mean(name, grid) or "a default only applies to a swept hyperparameter",
            )
    tensorboard = data.get("tensorboard", {})
    if tensorboard.get("serviceType") == "LoadBalancer" and not tensorboard.get("loadBalancerSourceRanges"):
        yield _at(
            filename,
            doc.values.get(("tensorboard", "serviceType")),
            "a LoadBalancer TensorBoard needs tensorboard.loadBalancerSourceRanges",
            "TensorBoard has no authentication: list the CIDRs allowed to reach it "
            "(write 0.0.0.0/0 only if you mean the whole internet), or use ClusterIP",
        )
    yield from space_diagnostics(data, lambda path, message, hint: _at(
        filename, doc.values.get(path), message, hint), max_trials=max_trials)
    size = math.prod(len(v) for v in grid.values())
    if (data.get("search") or {}).get("algorithm", "grid") == "grid" and size > max_trials:
        sizes = " x ".join(str(len(v)) for v in grid.values())
        yield _at(
            filename,
            doc.keys.get(("hyperParamValues",)),
            f"the grid has {size:,} trials ({sizes}), more than the limit of {max_trials:,}",
            f"raise the limit with --max-trials {size}, or list fewer values",
        )


def _grid_is_well_typed(data: dict[str, Any]) -> bool:
    """Whether the value checks can run even though other fields have errors."""
    grid, defaults, tensorboard = data.get("hyperParamValues"), data.get("defaults", {}), data.get("tensorboard", {})
    return (
        isinstance(grid, dict)
        and all(isinstance(v, list | dict) for v in grid.values())
        and isinstance(defaults, dict)
        and isinstance(tensorboard, dict)
        and isinstance(data.get("search", {}), dict)
    )


def _with_defaults(schema: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Fill every default the schema declares, recursively, into a copy of data."""
    out = dict(data)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = json.loads(json.dumps(sub["default"]))
        if isinstance(out.get(key), dict) and "properties" in sub:
            out[key] = _with_defaults(sub, out[key])
    return out


def _as_quantities(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(canonical_value(v)) for k, v in values.items()}


def load_spec(text: str, *, filename: str = "<spec>", max_trials: int = DEFAULT_MAX_TRIALS) -> Spec:
    """Parse and validate a spec. Raises SpecError with every problem found."""
    doc = _compose(text, filename)
    if not isinstance(doc.data, dict):
        raise SpecError(
            [_at(filename, doc.values.get(()), f"the spec must be a mapping of keys, got {_describe(doc.data)}")]
        )
    problems = list(_schema_diagnostics(doc, filename))
    if _grid_is_well_typed(doc.data):
        problems += _semantic_diagnostics(doc, filename, max_trials)
    if problems:
        raise SpecError(problems)

    data = _with_defaults(SCHEMA, doc.data)
    defaults = {k: canonical_value(v) for k, v in data["defaults"].items()}
    hyper_params = tuple(
        HyperParam(name=name, values=(), default=defaults.get(name), range=parse_range(values))
        if isinstance(values, dict) else
        HyperParam(name=name, values=tuple(canonical_value(v) for v in values), default=defaults.get(name))
        for name, values in data["hyperParamValues"].items()
    )
    resources, volume, tensorboard, objective, local = (
        data["resources"],
        data["logVolume"],
        data["tensorboard"],
        data["objective"],
        data["local"],
    )
    normalised = {**data, "defaults": defaults, "hyperParamValues": {
        hp.name: hp.range.describe() if hp.range else list(hp.values) for hp in hyper_params}}
    digest = hashlib.sha256(json.dumps(normalised, sort_keys=True).encode()).hexdigest()
    return Spec(
        name=data["name"],
        namespace=data["namespace"],
        backend=data["backend"],
        image=data["image"],
        use_gpu=data["useGPU"],
        args=tuple(data["args"]),
        requests=_as_quantities(resources["requests"]),
        limits=_as_quantities(resources["limits"]),
        claim_name=volume["claimName"],
        mount_path=volume["mountPath"].rstrip("/") or "/",
        tensorboard_image=tensorboard["image"],
        service_type=tensorboard["serviceType"],
        source_ranges=tuple(tensorboard["loadBalancerSourceRanges"]),
        metric=objective["metric"],
        goal=objective["goal"],
        parallelism=local["parallelism"],
        threads_per_trial=local["threadsPerTrial"],
        hyper_params=hyper_params,
        source=filename,
        digest=digest,
        search=parse_search(data["search"]),
        early_stopping=parse_early_stopping(data["earlyStopping"]),
    )
