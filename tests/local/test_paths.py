"""Nothing from a file or a flag reaches a path unchecked: every name is a DNS label first.

Each test plants a name that climbs out of the state folder (`../..`) where a
user could: a flag, a saved plan, `last-sweep.json`, `state.json`. The folder
it points at must stay untouched, and the command must say what is wrong.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

SPEC = "name: tiny\nbackend: local\nhyperParamValues:\n  hiddenLayers: [0]\n"


@pytest.fixture
def outside(tmp_path: Path):
    """A folder name next to the test's working directory, removed afterwards whatever happened."""
    name = f"escaped-{uuid.uuid4().hex[:8]}"
    yield name, tmp_path.parent / name
    shutil.rmtree(tmp_path.parent / name, ignore_errors=True)


def test_a_sweep_flag_is_a_dns_label(sweepctl, tmp_path: Path, outside) -> None:
    name, folder = outside
    for command in ("status", "prune", "report"):
        args = [command, "--sweep", f"../../../{name}"] + (["--keep", "best=1"] if command == "prune" else [])
        res = sweepctl(*args)
        assert res.exit_code == 1, res.output
        assert f"--sweep: '../../../{name}' is not a sweep name" in res.stderr
    assert not folder.exists()  # no lock, no state: nothing was created there


def test_a_crafted_last_sweep_is_ignored(sweepctl, tmp_path: Path, outside) -> None:
    name, folder = outside
    (tmp_path / ".sweepctl").mkdir()
    (tmp_path / ".sweepctl" / "last-sweep.json").write_text(
        json.dumps({"sweep": f"../../../{name}", "backend": "local", "namespace": None, "spec_path": None}))
    res = sweepctl("status")
    assert res.exit_code == 1
    assert "which sweep?" in res.stderr
    assert not folder.exists()


def test_a_crafted_saved_plan_is_refused(sweepctl, tmp_path: Path, outside) -> None:
    name, folder = outside
    (tmp_path / "s.yaml").write_text(SPEC)
    assert sweepctl("plan", "s.yaml").exit_code == 0
    saved = tmp_path / ".sweepctl" / "plan.json"
    doc = json.loads(saved.read_text())
    doc["plan"]["trials"][0]["name"] = f"../../../../{name}"
    saved.write_text(json.dumps(doc))
    res = sweepctl("apply")
    assert res.exit_code == 1
    assert f"'../../../../{name}' is not a trial name" in res.stderr
    doc["plan"]["sweep"] = f"../../{name}"
    saved.write_text(json.dumps(doc))
    res = sweepctl("apply")
    assert res.exit_code == 1 and f"'../../{name}' is not a sweep name" in res.stderr
    assert not folder.exists()


def test_crafted_trial_names_in_state_never_delete_outside(sweepctl, tmp_path: Path, outside) -> None:
    name, folder = outside
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "precious.txt").write_text("keep me")
    (tmp_path / "s.yaml").write_text(SPEC)
    state = tmp_path / ".sweepctl" / "sweeps" / "tiny" / "state.json"
    state.parent.mkdir(parents=True)
    # logs/<trial> with this name is the folder outside.
    state.write_text(json.dumps({"trials": {f"../../../../../{name}/logs": {
        "id": "0123456789", "uid": "u", "params": {}, "args": [], "template_hash": "x", "state": "Succeeded"}},
        "pruned": {}}))
    for command in (("plan", "s.yaml"), ("destroy", "s.yaml", "--auto-approve"), ("status", "s.yaml")):
        res = sweepctl(*command)
        assert res.exit_code == 1, res.output
        assert "is not a trial name" in res.stderr and ".sweepctl/sweeps/tiny/state.json" in res.stderr
    assert (folder / "logs" / "precious.txt").read_text() == "keep me"
