"""The layers hold: core < metrics < backends < views < commands < cli, and no import cycles.

import-linter checks the contracts in pyproject.toml ([tool.importlinter]) on
the source as it is, and on a copy with one import that breaks them, so that a
contract that checked nothing would fail here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(LINT, cwd=root, env=env, capture_output=True, text=True, check=False)


def test_every_layer_imports_only_from_below() -> None:
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "sweepctl", tmp_path / "sweepctl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    metrics = tmp_path / "sweepctl" / "metrics" / "ranking.py"
    metrics.write_text(metrics.read_text() + "\nfrom sweepctl.backends.base import Backend  # noqa\n")
    res = _lint(tmp_path)
    assert res.returncode == 1
    assert "sweepctl.metrics is not allowed to import sweepctl.backends" in res.stdout
    assert "sweepctl.metrics.ranking -> sweepctl.backends.base" in res.stdout
