"""The layers hold: core < metrics < backends < views < commands < cli, and core.search < core.tpe.

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


def _lint_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of the source in which `module` (a path under sweepctl/) has one more line."""
    shutil.copytree(ROOT / "sweepctl", tmp_path / "sweepctl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / "sweepctl" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    return _lint(tmp_path)


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path: Path) -> None:
    res = _lint_with(tmp_path, "metrics/ranking.py", "from sweepctl.backends.base import Backend")
    assert res.returncode == 1
    assert "sweepctl.metrics is not allowed to import sweepctl.backends" in res.stdout
    assert "sweepctl.metrics.ranking -> sweepctl.backends.base" in res.stdout


def test_tpe_importing_search_breaks_the_contract(tmp_path: Path) -> None:
    res = _lint_with(tmp_path, "core/tpe.py", "from sweepctl.core.search import select")
    assert res.returncode == 1
    assert "sweepctl.core.tpe -> sweepctl.core.search" in res.stdout
