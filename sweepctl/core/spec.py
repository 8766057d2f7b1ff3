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

from sweepctl.core.conforms import conforms
from sweepctl.core.diagnostics import Diagnostic, SpecError, did_you_mean
from sweepctl.core.objective import EVENTS, STDOUT, MetricSource, pattern_problem
from sweepctl.core.schema import DEFAULT_MAX_TRIALS, SCHEMA
from sweepctl.core.space import EarlyStopping, Range, Search, parse_early_stopping, parse_range, parse_search, space_diagnostics

__all__ = ["RESERVED_FLAGS", "Scalar", "HyperParam", "Spec", "load_spec", "canonical_value", "flag_name", "flag_value"]

Scalar = bool | int | float | str
Path = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class HyperParam:
    """One swept hyperparameter and its values, in the order the spec lists them, or its range."""

    name: str
    values: tuple[Scalar, ...]
    default: Scalar | None = None
    range: Range | None = None  # random and tpe search only; `values` is then empty


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
    kind: str = "TFJob"  # what a trial is on Kubernetes (schema.TRIAL_KINDS)
    runtime: str = ""  # TrainJob: the ClusterTrainingRuntime it runs on
    # The user's own trainer (core/command.py): its argv template, args appended.
    # Empty: the tf-paint trainer, with kebab-case flags and --log-dir.
    command: tuple[str, ...] = ()
    metric_source: MetricSource = field(default_factory=MetricSource)  # objective.source and .pattern


# Flags that sweepctl passes every trial itself: a hyperparameter or a fixed
# argument with the same flag would be overridden without a word.
RESERVED_FLAGS = {
    "--log-dir": "sweepctl passes each trial its own log folder",
    "--threads": "the local backend passes local.threadsPerTrial as --threads",
}


@functools.lru_cache(maxsize=1024)
def flag_name(name: str) -> str:
    """camelCase hyperparameter name -> trainer flag: learningRate -> --learning-rate."""
    return "--" + re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z])(?=[a-z])", r"-\1\2", name).lower()


def canonical_value(value: Scalar) -> Scalar:
    """The value's identity: 0.01, 1.0e-2 and 0.010 are one value; 5.0 is 5."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def flag_value(value: Scalar) -> str:
    """The value as the trainer receives it: one argv element.

    Two values with the same text reach the trainer as the same flag, so this
    text is what makes two values the same (0.01 and "0.01" are one value).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(canonical_value(value))


# -- YAML 1.2 ---------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = re.compile(r"~|null|Null|NULL|")
# A document cannot hold more values than it has characters unless aliases
# repeat them; this much repetition on top is plenty for any real spec.
_ALIAS_ALLOWANCE = 10_000
_MAX_DEPTH = 50


class _Resolver12(yaml.resolver.BaseResolver):
    """The YAML 1.2 core schema: `yes`, `on`, `1:30`, `2024-01-01` and `1_000` are strings.

    PyYAML follows YAML 1.1, where `yes` is true, `010` is 8, `1:30` is 90 and
    `1e-3` (no dot) is a string: all surprises for a hyperparameter value.
    """


_Resolver12.add_implicit_resolver(_TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Resolver12.add_implicit_resolver(_TAG + "int", re.compile(rf"^(?:{_INT.pattern})$"), list("-+0123456789"))
_Resolver12.add_implicit_resolver(_TAG + "float", re.compile(rf"^(?:{_FLOAT.pattern})$"), list("-+0123456789."))
_Resolver12.add_implicit_resolver(_TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Resolver12):
    """Reads YAML into nodes only; _Builder turns them into data, refusing what a spec cannot hold."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver12.__init__(self)


class _Refused(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.mark, self.hint = message, mark, hint


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def _scalar(node: yaml.ScalarNode) -> Any:
    """A scalar of the YAML 1.2 core schema; any other tag is refused."""
    tag, text = node.tag, node.value
    if tag == _TAG + "str":
        return _text(text, node.start_mark)
    if tag == _TAG + "bool" and text in _BOOL:
        return _BOOL[text]
    if tag == _TAG + "null" and _NULL.fullmatch(text):
        return None
    if tag == _TAG + "int" and _INT.fullmatch(text):
        return _int(text, node.start_mark)
    if tag == _TAG + "float" and _INT.fullmatch(text):
        return float(_int(text, node.start_mark))
    if tag == _TAG + "float" and _FLOAT.fullmatch(text):
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        return math.nan if lowered == ".nan" else float(text)
    if tag in (_TAG + t for t in ("str", "bool", "null", "int", "float")):
        raise _Refused(f"{text!r} is not a valid {_tag_name(tag)}", node.start_mark)
    raise _Refused(f"the tag {_tag_name(tag)} is not allowed in a spec", node.start_mark, _NO_TAGS)


def _int(text: str, mark: yaml.Mark) -> int:
    try:
        if text.startswith(("0o", "0x")):
            value = int(text[2:], 8 if text[1] == "o" else 16)
        else:
            value = int(text)  # YAML 1.2: 010 is ten, not eight
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        value = _INT_LIMIT
    if not -_INT_LIMIT <= value < _INT_LIMIT:
        raise _Refused(f"the integer {text[:20]}{'...' if len(text) > 20 else ''} does not fit in 64 bits", mark,
                       "write it as a float (e.g. 1.0e30), or quote it to pass it as text")
    return value


# Plans, trial ids and saved plans are JSON, whose integers stop at 64 bits.
_INT_LIMIT = 2**63


def _text(text: str, mark: yaml.Mark) -> str:
    """A string every later step can carry: UTF-8 (JSON, Kubernetes, file names) and no NUL (argv).

    A surrogate pair written as two escapes ("\\ud83d\\ude00", as JSON writes
    an emoji) is the one character it stands for; a lone surrogate is refused.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        try:
            return _text(text.encode("utf-16-le", "surrogatepass").decode("utf-16-le"), mark)
        except UnicodeDecodeError:
            pass
        raise _Refused(f"the text {_clip(text)} holds {text[err.start]!r}, a lone surrogate that is not a character",
                       mark, "write the character itself, or a \\U escape of the whole code point") from None
    if "\0" in text:
        raise _Refused(f"the text {_clip(text)} holds a NUL character, which no program argument can carry", mark,
                       "remove the \\0")
    return text


def _clip(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


_NO_TAGS = "a spec holds plain YAML 1.2 values (numbers, strings, booleans, lists and mappings): remove the tag"


@dataclass
class _Document:
    """Plain data from YAML, with the position of every key and value."""

    data: Any
    values: dict[Path, yaml.Mark]
    keys: dict[Path, yaml.Mark]


class _Builder:
    """Turns composed nodes into plain data, with positions, and never trusts them.

    Aliases make a node graph, not a tree: a node may contain itself, and a
    few hundred bytes may stand for millions of values. Both are refused.
    """

    def __init__(self, filename: str, budget: int) -> None:
        self.filename = filename
        self.budget = budget
        self.doc = _Document(data=None, values={}, keys={})
        self.problems: list[Diagnostic] = []
        self.open: set[int] = set()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.budget -= 1
        if self.budget < 0:
            where = self.doc.keys.get(path[:1], node.start_mark)  # the top-level key that expands so
            raise _Refused("the YAML expands to too many values through aliases (*name)", where,
                           "write the values out; a spec never needs aliases to repeat this much")
        if len(path) > _MAX_DEPTH:
            raise _Refused(f"the YAML is nested more than {_MAX_DEPTH} levels deep", node.start_mark)
        if id(node) in self.open:
            raise _Refused("an alias refers to the anchor that contains it (a recursive value)", node.start_mark,
                           "a spec is a tree: remove the alias, or point it at another anchor")
        self.doc.values[path] = node.start_mark
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        expected = _TAG + ("map" if isinstance(node, yaml.MappingNode) else "seq")
        if node.tag != expected:
            raise _Refused(f"the tag {_tag_name(node.tag)} is not allowed in a spec", node.start_mark, _NO_TAGS)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.problems.append(_at(self.filename, key_node.start_mark, "keys must be plain strings"))
                continue
            if key in out:
                self.problems.append(
                    _at(self.filename, key_node.start_mark, f"duplicate key '{key}'", "remove one of the two"))
                continue
            self.doc.keys[path + (key,)] = key_node.start_mark
            out[key] = self.build(value_node, path + (key,))
        return out


def _compose(text: str, filename: str) -> _Document:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise SpecError([_at(filename, mark, f"malformed YAML: {err.problem or err.context}",
                             "check the indentation and quoting around this position")]) from None
    except yaml.YAMLError as err:
        raise SpecError([Diagnostic(message=f"malformed YAML: {err}", file=filename)]) from None
    except RecursionError:
        raise SpecError([Diagnostic(message=f"malformed YAML: nested more than {_MAX_DEPTH} levels deep",
                                    file=filename)]) from None
    if root is None:
        raise SpecError(
            [Diagnostic(message="the spec is empty", file=filename, hint="start with 'name:' and 'hyperParamValues:'")]
        )
    builder = _Builder(filename, budget=len(text) + _ALIAS_ALLOWANCE)
    try:
        builder.doc.data = builder.build(root, ())
    except _Refused as err:
        raise SpecError([_at(filename, err.mark, err.message, err.hint)]) from None
    if builder.problems:
        raise SpecError(builder.problems)
    return builder.doc


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


def _schema_errors(data: Any) -> list[Any]:
    """jsonschema's errors, in document order; none for a document that conforms."""
    if conforms(data, SCHEMA):
        return []
    from jsonschema import Draft202012Validator  # heavy: only for a spec that does not surely conform

    return sorted(Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])


def _refused_paths(errors: list[Any]) -> set[Path]:
    """Where each schema error lies: the values that semantic checks must not read.

    An unknown key blames that key, not its mapping; a name that is no camelCase
    blames its entry; a missing key at the top blames only that key (other
    fields can still be checked); uniqueItems blames nothing, as duplicates are
    judged by value in _semantic_diagnostics.
    """
    refused: set[Path] = set()
    for error in errors:
        path: Path = tuple(error.absolute_path)
        if error.validator == "uniqueItems":
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = error.schema.get("properties", {})
            refused.update(path + (key,) for key in error.instance if key not in known)
        elif "propertyNames" in error.schema_path:
            refused.add(path + (error.instance,))
        elif error.validator == "required" and not path:
            refused.update((key,) for key in error.validator_value if key not in error.instance)
        else:
            refused.add(path)
    return refused


def _accepted(value: Any, path: Path, refused: set[Path]) -> Any:
    """`value` without what the schema refused; a list with one refused item is left out whole."""
    if path in refused:
        return _REFUSED
    if isinstance(value, dict):
        kept = {key: _accepted(sub, path + (key,), refused) for key, sub in value.items()}
        return {key: sub for key, sub in kept.items() if sub is not _REFUSED}
    if isinstance(value, list):
        items = [_accepted(sub, path + (i,), refused) for i, sub in enumerate(value)]
        return _REFUSED if any(item is _REFUSED for item in items) else items
    return value


_REFUSED = object()


def _schema_diagnostics(doc: _Document, filename: str, errors: list[Any]) -> Iterator[Diagnostic]:
    for error in errors:
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
    "runtime": "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'",
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


def _semantic_diagnostics(doc: _Document, filename: str, max_trials: int, refused: set[Path]) -> Iterator[Diagnostic]:
    """What the schema cannot say, judged only on what the schema accepted.

    Each check reads values the schema accepted (`data` leaves out the rest);
    a check across fields runs only when none of them was refused, so a type
    error never turns into a second, wrong message or a crash.
    """
    data = _accepted(doc.data, (), refused)

    def intact(*keys: str) -> bool:
        return not any(path and path[0] in keys for path in refused)

    grid = data.get("hyperParamValues", {})
    own = "command" in doc.data  # the user's trainer: no kebab flags, nothing reserved (core/command.py)
    if own and data.get("command") and intact("command", "args", "hyperParamValues"):  # an empty one is the schema's error
        yield from _command_diagnostics(doc, filename)
    flags: dict[str, str] = {}
    for name, values in grid.items():
        flag = flag_name(name)
        if own:
            pass  # ${args} passes the names as written; nothing is passed besides the command
        elif "_" in name:  # the schema allows it for a command's ${args}; tf-paint takes kebab-case flags
            yield _at(filename, doc.keys.get(("hyperParamValues", name)),
                      f"hyperparameter name {name!r} must be camelCase letters and digits",
                      f"write it as '{_camel(name)}'; it becomes the flag {flag_name(_camel(name))} (snake_case "
                      "names are for your own trainer's command)")
        elif flag in RESERVED_FLAGS:
            yield _at(filename, doc.keys.get(("hyperParamValues", name)),
                      f"hyperparameter {name} becomes the flag {flag}, which sweepctl sets itself",
                      f"{RESERVED_FLAGS[flag]}; sweep another hyperparameter")
        elif flag in flags:
            yield _at(filename, doc.keys.get(("hyperParamValues", name)),
                      f"hyperparameters {flags[flag]} and {name} both become the flag {flag}",
                      "keep one of them: the trainer would get the flag twice")
        flags.setdefault(flag, name)
        if not isinstance(values, list):
            continue  # a range: space_diagnostics checks it
        seen: dict[str, int] = {}
        for i, value in enumerate(values):
            if not isinstance(value, bool | int | float | str):
                continue  # a type error, already reported
            if isinstance(value, float) and not math.isfinite(value):
                yield _at(filename, doc.values.get(("hyperParamValues", name, i)), f"hyperParamValues.{name}[{i}] is {value}, not a finite number")
                continue
            key = flag_value(value)
            if key in seen:
                yield _at(
                    filename,
                    doc.values.get(("hyperParamValues", name, i)),
                    f"hyperParamValues.{name} lists {value!r} twice (the same value as item {seen[key]})",
                    "remove the duplicate: values are compared as the trainer receives them, so 0.01, 1.0e-2, "
                    "0.010 and '0.01' are the same",
                )
            else:
                seen[key] = i
    for i, arg in enumerate([] if own else data.get("args", [])):
        flag = arg.split("=", 1)[0] if isinstance(arg, str) else None
        if flag in RESERVED_FLAGS:
            yield _at(filename, doc.values.get(("args", i)), f"args: {flag} is set by sweepctl itself",
                      RESERVED_FLAGS[flag] + "; remove it from args")
    swept = doc.data.get("hyperParamValues")
    for name in data.get("defaults", {}) if isinstance(swept, dict) else ():
        if name not in swept:
            yield _at(
                filename,
                doc.keys.get(("defaults", name)),
                f"defaults.{name} names no hyperparameter in hyperParamValues",
                did_you_mean(name, swept) or "a default only applies to a swept hyperparameter",
            )
    tensorboard = data.get("tensorboard", {}) if intact("tensorboard") else {}
    if tensorboard.get("serviceType") == "LoadBalancer" and not tensorboard.get("loadBalancerSourceRanges"):
        yield _at(
            filename,
            doc.values.get(("tensorboard", "serviceType")),
            "a LoadBalancer TensorBoard needs tensorboard.loadBalancerSourceRanges",
            "TensorBoard has no authentication: list the CIDRs allowed to reach it "
            "(write 0.0.0.0/0 only if you mean the whole internet), or use ClusterIP",
        )
    if tensorboard.get("serviceType") == "NodePort" and tensorboard.get("allowNodePort") is not True:
        yield _at(
            filename,
            doc.values.get(("tensorboard", "serviceType")),
            "a NodePort TensorBoard needs tensorboard.allowNodePort: true",
            "TensorBoard has no authentication, and a NodePort opens it on every node to anyone who reaches "
            "the nodes: set allowNodePort: true if that is what you mean, or use ClusterIP and kubectl port-forward",
        )
    if intact("objective"):
        yield from _objective_diagnostics(doc, filename)
    kubernetes = data.get("kubernetes", {}) if intact("kubernetes") else {}
    if "runtime" in kubernetes and kubernetes.get("kind", "TFJob") != "TrainJob":
        yield _at(filename, doc.keys.get(("kubernetes", "runtime")),
                  "kubernetes.runtime names a Trainer v2 runtime, which only TrainJob trials use",
                  "add kind: TrainJob under kubernetes, or remove runtime")
    if not intact("hyperParamValues", "search"):
        return
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


def _command_diagnostics(doc: _Document, filename: str) -> Iterator[Diagnostic]:
    """Placeholders of command and args that name nothing, and hyperparameters that reach none."""
    from sweepctl.core.command import problems

    data = doc.data
    command, args = data["command"], data.get("args", [])
    swept = [n for n, v in data["hyperParamValues"].items() if isinstance(v, dict) or len(v) > 1]
    paths = [("command", i) for i in range(len(command))] + [("args", i) for i in range(len(args))]
    for problem in problems([*command, *args], list(data["hyperParamValues"]), swept=swept):
        if problem.index is not None:
            path = paths[problem.index]
            mark, where = doc.values.get(path), _field_name(path)
        else:
            mark, where = doc.keys.get(("hyperParamValues", problem.name or "")), f"hyperParamValues.{problem.name}"
        yield _at(filename, mark, f"{where}: {problem.message}", problem.hint)


def _objective_diagnostics(doc: _Document, filename: str) -> Iterator[Diagnostic]:
    """A stdout pattern must compile and have `name` and `value` groups; only stdout lines take one."""
    objective = doc.data.get("objective")
    if not isinstance(objective, dict) or not isinstance(objective.get("pattern"), str):
        return
    where = doc.values.get(("objective", "pattern"))
    if objective.get("source", EVENTS) != STDOUT:
        yield _at(filename, where, "objective.pattern reads stdout lines, but objective.source is not stdout",
                  "add source: stdout under objective, or remove pattern")
    elif problem := pattern_problem(objective["pattern"]):
        yield _at(filename, where, problem,
                  r"for example pattern: '(?P<name>\w+) is (?P<value>[-+.\deE]+)' reads lines like 'loss is 0.25'")


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
    errors = _schema_errors(doc.data)
    problems = [*_schema_diagnostics(doc, filename, errors), *_semantic_diagnostics(
        doc, filename, max_trials, _refused_paths(errors))]
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
        kind=data["kubernetes"]["kind"],
        runtime=data["kubernetes"]["runtime"],
        command=tuple(data.get("command", ())),
        metric_source=MetricSource(kind=objective.get("source", EVENTS), pattern=objective.get("pattern")),
    )
