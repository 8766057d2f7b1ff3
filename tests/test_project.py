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
        "heavy = [m for m in ('tensorflow', 'kubernetes', 'jsonschema', 'deepdiff', 'PIL', 'optuna', 'pydantic') if m in sys.modules]\n"
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


def test_no_type_ignore_reaches_into_a_backend() -> None:
    """The Backend protocol says everything callers need; only open_backend asks which backend is meant."""
    opener = ROOT / "sweepctl" / "backends" / "__init__.py"
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "sweepctl").rglob("*.py"))
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "type: ignore" in line or (p != opener and any(
                     f'{side} == "{name}"' in line for side in ("name", "backend") for name in ("local", "kubernetes")))]
    assert offenders == []


def test_sweepctl_schema_prints_the_published_schema(sweepctl) -> None:
    from jsonschema import Draft202012Validator

    res = sweepctl("schema")
    assert res.exit_code == 0
    printed = json.loads(res.stdout)
    assert printed == json.loads((ROOT / "schema" / "sweep.schema.json").read_text())
    Draft202012Validator.check_schema(printed)
    validator = Draft202012Validator(printed)
    assert list(validator.iter_errors({"name": "lab", "hyperParamValues": {"lr": [0.1]}})) == []
    assert list(validator.iter_errors({"name": "Lab", "hyperParamValues": {"lr": [0.1]}}))


def test_hyperparameters_come_after_args_and_win() -> None:
    """In the real trainer's parser: the swept value, not the fixed one, is what it trains with."""
    from model.cli import build_parser
    from sweepctl.core.manifests import local_trial, tfjob
    from sweepctl.core.spec import load_spec
    from sweepctl.core.trials import expand

    spec = load_spec("name: s\nargs: [--hidden-layers, '2', --epochs, '5']\nhyperParamValues: {hiddenLayers: [3]}\n")
    trial = expand(spec)[0]
    k8s = tfjob(spec, trial, namespace="ns")["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    for args in (k8s["args"], local_trial(spec, trial)["spec"]["args"]):
        parsed = build_parser().parse_args(args)
        assert (parsed.hidden_layers, parsed.epochs) == (3, 5)


def test_the_cyclic_gc_runs_while_an_apply_runs(sweepctl, tmp_path: Path, monkeypatch) -> None:
    """Only planning pauses the GC; an apply (hours, locally) and --watch run with it."""
    import gc
    import time

    seen: list[bool] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        seen.append(gc.isenabled())
        real_sleep(min(seconds, 0.05))

    monkeypatch.setattr(time, "sleep", sleep)
    (tmp_path / "s.yaml").write_text("name: tiny\nbackend: local\nhyperParamValues:\n  hiddenLayers: [0]\n")
    res = sweepctl("apply", "s.yaml", "--auto-approve")
    assert "trainer exited with 2" in res.stderr, res.output
    assert seen and all(seen)
    assert gc.isenabled()


def test_what_a_plan_made_is_not_collected_again_as_young() -> None:
    """After the GC pause, the plan's objects wait for a full collection: the next allocations scan none of them."""
    import gc

    from sweepctl.commands.common import paused_gc

    with paused_gc():
        made = [{"trial": [i]} for i in range(50_000)]
    assert gc.isenabled()
    oldest = {id(o) for o in gc.get_objects(generation=2)}  # not left young, to be scanned by the next allocations
    assert all(id(o) in oldest for o in made[::1000])
    del made
