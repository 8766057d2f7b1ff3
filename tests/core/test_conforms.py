"""The compiled spec check that spares jsonschema's import must agree with jsonschema.

It may only ever say "valid" of what jsonschema finds valid; a spec that is
valid should take that path, or status pays jsonschema's import for nothing.
Judged over real specs and every one-edit mutation of them: each value
replaced by values of every JSON type, each key removed, an unknown key added.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from sweepctl.core.conforms import conforms
from sweepctl.core.schema import SCHEMA

ROOT = Path(__file__).resolve().parents[2]

FULL = """\
name: starry-tpe
namespace: team-a
backend: kubernetes
image: sweepctl/tf-paint:0.1.0
useGPU: true
args: [--epochs, "300"]
kubernetes: {kind: TrainJob, runtime: sweepctl-tensorflow}
resources: {requests: {cpu: "1", memory: 1Gi}, limits: {memory: 2Gi}}
logVolume: {claimName: logs, mountPath: /tmp/tensorflow}
tensorboard: {image: tensorflow/tensorflow:2.21.0, serviceType: LoadBalancer, loadBalancerSourceRanges: [10.0.0.0/8]}
objective: {metric: psnr, goal: maximize}
local: {parallelism: 2, threadsPerTrial: 1}
defaults: {batchSize: 50}
search: {algorithm: tpe, trials: 24, parallel: 4, seed: 0, startupTrials: 10}
hyperParamValues:
  learningRate: {min: 1.0e-4, max: 0.1, scale: log}
  hiddenLayers: {min: 3, max: 9, type: int}
  activation: [relu, tanh]
  batchSize: [50, 200]
earlyStopping: {rule: median, afterStep: 6000, minTrials: 3}
"""

PROBES: list[Any] = [None, True, False, 0, 1, -1, 1.0, 2.5, -0.5, math.inf, "", "x", "Lab", "1", "log", "int",
                     "median", "tpe", "NodePort", [], [1], [1, 1.0], [True, 1], ["a", "a"], [1, "1"], [[1]], {},
                     {"a": 1}, {"min": 1, "max": 2}]


def _valid_documents() -> list[dict[str, Any]]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "specs").glob("*.yaml"))]
    return [*docs, yaml.safe_load(FULL)]


def _paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*at, i))


def _edited(doc: dict[str, Any], path: tuple[Any, ...], edit: str, value: Any = None) -> Any:
    out = copy.deepcopy(doc)
    if not path:
        return value if edit == "set" else out
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    if edit == "set":
        parent[path[-1]] = copy.deepcopy(value)
    elif edit == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    return out


def _mutations(doc: dict[str, Any]) -> Iterator[Any]:
    for path in _paths(doc):
        for probe in PROBES:
            yield _edited(doc, path, "set", probe)
        yield _edited(doc, path, "delete")
    for path in _paths(doc):
        target = _edited(doc, (), "copy")
        node = target
        for step in path:
            node = node[step]
        if isinstance(node, dict):
            node["unknownKey"] = 1
            yield target


@pytest.mark.parametrize("doc", _valid_documents(), ids=lambda d: d["name"])
def test_it_never_calls_valid_what_jsonschema_refuses(doc: dict[str, Any]) -> None:
    validator = Draft202012Validator(SCHEMA)
    assert conforms(doc, SCHEMA) and validator.is_valid(doc)  # a valid spec takes the fast path
    judged = 0
    for mutated in _mutations(doc):
        valid, fast = validator.is_valid(mutated), conforms(mutated, SCHEMA)
        assert not (fast and not valid), mutated
        assert fast or not valid, mutated  # and a valid one is never sent to jsonschema for nothing
        judged += 1
    assert judged > 300


def test_jsonschemas_type_rules() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}, "s": {"type": "number"},
                                               "u": {"type": "array", "uniqueItems": True}}}
    for doc, valid in [({"n": 1.0}, True), ({"n": True}, False), ({"s": False}, False), ({"n": 0}, False),
                       ({"u": [1, 1.0]}, False), ({"u": [True, 1]}, True), ({"u": ["1", 1]}, True)]:
        assert Draft202012Validator(schema).is_valid(doc) is valid
        assert conforms(doc, schema) is valid


def test_checking_fills_no_defaults_in() -> None:
    doc = {"name": "lab", "hyperParamValues": {"lr": [1]}}
    assert conforms(doc, SCHEMA)
    assert doc == {"name": "lab", "hyperParamValues": {"lr": [1]}}
