"""Real trainer runs, made once per session: three tiny trials whose event files the tests rank.

`trained` is a folder holding the spec and the local backend's state after
`sweepctl apply`; each test copies it into its own working directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TINY = ["--size", "8", "--epochs", "3", "--batch-size", "16"]
SWEEP = "paint"


def _spec_text(*, backend: str = "local", namespace: str | None = None) -> str:
    # Three learning rates: the trainer's losses after 3 epochs order them 0.1 < 0.01 < 0.001.
    return (f"name: {SWEEP}\nbackend: {backend}\n" + (f"namespace: {namespace}\n" if namespace else "")
            + f"args: {json.dumps(TINY)}\nlocal: {{parallelism: 3}}\n"
            "hyperParamValues:\n  learningRate: [0.001, 0.01, 0.1]\n  hiddenLayers: [2]\n")


@pytest.fixture
def spec_text():
    """The trained sweep's spec, for another backend or namespace."""
    return _spec_text


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    (root / "s.yaml").write_text(_spec_text())
    proc = subprocess.run([sys.executable, "-m", "sweepctl", "apply", "s.yaml", "--auto-approve"], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("plan.json", "last-sweep.json"):
        (root / ".sweepctl" / name).unlink(missing_ok=True)
    return root


@pytest.fixture
def sweep_here(trained: Path, tmp_path: Path, sweepctl) -> Path:
    """The trained sweep copied into the test's working directory (the `sweepctl` fixture's cwd)."""
    shutil.copytree(trained / ".sweepctl", tmp_path / ".sweepctl")
    shutil.copy(trained / "s.yaml", tmp_path / "s.yaml")
    return tmp_path / "s.yaml"


@pytest.fixture
def tensorboard_on(trained: Path) -> Iterator[str]:
    """A real TensorBoard serving the trained runs, one run per trial folder; yields its URL."""
    from tensorboard_helpers import serve

    logs = trained / ".sweepctl" / "sweeps" / SWEEP / "logs"
    with serve(logs, ready=lambda index: len(index) == 3 and all("loss" in t for t in index.values())) as url:
        yield url
