"""What a newcomer relies on: the README documents every field, the published
schema is current, and the CLI starts without heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sweepctl.core.schema import SCHEMA

ROOT = Path(__file__).resolve().parent.parent


def _fields(schema: dict, prefix: str = "") -> list[str]:
    out = []
    for key, sub in schema.get("properties", {}).items():
        if "properties" in sub:
            out += _fields(sub, f"{prefix}{key}.")
        else:
            out.append(prefix + key)
    return out


def test_readme_documents_every_spec_field() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [f for f in _fields(SCHEMA) if f"| `{f}` |" not in readme]
    assert missing == []


def test_published_schema_is_current() -> None:
    assert json.loads((ROOT / "schema" / "sweep.schema.json").read_text()) == SCHEMA


def test_cli_imports_nothing_heavy() -> None:
    probe = (
        "import sys\nfrom sweepctl.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'kubernetes', 'jsonschema', 'deepdiff', 'PIL', 'optuna') if m in sys.modules]\n"
        "print(heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == "[]"


def test_plan_never_imports_tensorflow(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nbackend: local\nhyperParamValues: {learningRate: [0.1]}\n")
    probe = (
        "import sys\nfrom sweepctl.cli import app\n"
        f"try:\n    app(['plan', {str(spec)!r}, '--state-dir', {str(tmp_path / 'st')!r}])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert proc.stderr.strip().endswith("False"), proc.stderr
    assert "1 to add" in proc.stdout
