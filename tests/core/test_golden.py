"""The tf-paint path, byte for byte: trial names and every manifest, pinned against files made before BYO commands.

A spec without `command` must give exactly the trial names and manifests it
gave before (issue 17): a changed byte would rename trials or show every live
trial of every existing sweep as drift. The files under golden/ were written
from main before `command` existed; rewrite them (python tests/core/test_golden.py)
only for a change that means to alter every sweep.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sweepctl.core.manifests import local_trial, tfjob, trainjob
from sweepctl.core.search import select
from sweepctl.core.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"

# A random search with ranges, a default, fixed args and a GPU: every branch the manifests take.
SEARCH_SPEC = """\
name: golden-search
image: registry.example/tf-paint:7
useGPU: true
args: [--epochs, "3", --size=24]
search: {algorithm: random, trials: 6, seed: 3}
defaults: {batchSize: 50}
hyperParamValues:
  learningRate: {min: 1.0e-4, max: 0.1, scale: log}
  hiddenLayers: {min: 3, max: 9, type: int}
  activation: [relu, tanh]
  batchSize: [50, 200]
"""

SPECS = {
    "demo": (ROOT / "specs" / "demo.yaml").read_text(),
    "starry-night": (ROOT / "specs" / "starry-night.yaml").read_text(),
    "search": SEARCH_SPEC,
}


def rendered(text: str) -> str:
    """Every trial's name and its TFJob, TrainJob and local manifest, in trial order, as JSON in insertion order."""
    spec = load_spec(text, filename="spec.yaml")
    trials = select(spec, ()).trials
    out = [{
        "name": t.name,
        "tfjob": tfjob(spec, t, namespace="ns"),
        "trainjob": trainjob(spec, t, namespace="ns"),
        "local": local_trial(spec, t),
    } for t in trials]
    return json.dumps(out, indent=1) + "\n"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_manifests_without_command_are_unchanged(name: str) -> None:
    assert rendered(SPECS[name]) == (GOLDEN / f"{name}.json").read_text()


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/core/test_golden.py --write   (only for a change meant to alter every sweep)")
    for name, text in SPECS.items():
        (GOLDEN / f"{name}.json").write_text(rendered(text))
