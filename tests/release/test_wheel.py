"""A release that installs: `python -m build` makes an sdist and a wheel from the
repository's files, and the wheel, installed into fresh virtualenvs as a user
would (`pip install sweepctl`, then `sweepctl[train]`), works: without extras for
`--help`, `schema`, `runtime` and a `plan` against the API-only control plane as
the README Role's user; with `[train]` for a one-trial local apply. pip uses its
cache, as `make setup` does. The version is written in one place."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from readme_role import readme_role

import sweepctl

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run(argv, capture_output=True, text=True, env={**env, **kwargs.pop("env", {})}, **kwargs)
    assert res.returncode == 0, f"{argv} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built from a copy of the repository's files (the checkout is left as it was)."""
    tmp = tmp_path_factory.mktemp("release")
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout.split("\0")
    src = tmp / "src"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(src)])
    return tmp / "dist"


def fresh_venv(where: Path, wheel: Path, extra: str = "") -> Path:
    run([sys.executable, "-m", "venv", str(where)])
    # --no-compile: no byte-compiling of TensorFlow's thousands of modules at install time (this run needs few)
    run([str(where / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         f"{wheel}{extra}"])
    return where / "bin"


def test_build_makes_an_sdist_and_a_wheel_that_carries_what_users_need(dist: Path) -> None:
    version = sweepctl.__version__
    assert sorted(p.name for p in dist.iterdir()) == [f"sweepctl-{version}-py3-none-any.whl",
                                                      f"sweepctl-{version}.tar.gz"]
    names = zipfile.ZipFile(dist / f"sweepctl-{version}-py3-none-any.whl").namelist()
    assert "sweepctl/py.typed" in names
    # the schema and the runtime manifest are made by these modules, the trainer is the model package
    assert {"sweepctl/core/schema.py", "sweepctl/core/manifests.py", "model/__main__.py"} <= set(names)
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]
    metadata = zipfile.ZipFile(dist / f"sweepctl-{version}-py3-none-any.whl").read(
        f"sweepctl-{version}.dist-info/METADATA").decode()
    assert f"Version: {version}\n" in metadata and "Provides-Extra: train" in metadata


def test_the_wheel_without_extras_helps_prints_the_schema_and_plans_as_the_readme_role(
        dist: Path, tmp_path: Path, control_plane, namespace: str) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", next(dist.glob("*.whl")))
    cli = str(bin_dir / "sweepctl")
    assert "plan" in run([cli, "--help"], cwd=tmp_path).stdout
    assert run([cli, "--version"], cwd=tmp_path).stdout == f"sweepctl {sweepctl.__version__}\n"
    assert json.loads(run([cli, "schema"], cwd=tmp_path).stdout) == json.loads(
        (ROOT / "schema" / "sweep.schema.json").read_text())
    assert "kind: ClusterTrainingRuntime" in run([cli, "runtime"], cwd=tmp_path).stdout
    # nothing of [train]: the CLI works without TensorFlow
    probe = run([str(bin_dir / "python"), "-c", "import importlib.util as u; print(u.find_spec('tensorflow'))"])
    assert probe.stdout.strip() == "None"

    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=readme_role())
    control_plane.kubectl("create", "rolebinding", "sweepctl", "-n", namespace, "--role", "sweepctl",
                          "--user", "restricted")
    spec = tmp_path / "lab.yaml"
    spec.write_text(f"name: lab\nbackend: kubernetes\nnamespace: {namespace}\n"
                    "hyperParamValues: {learningRate: [0.001, 0.01], hiddenLayers: [5, 6]}\n")
    res = run([cli, "plan", str(spec), "--context", "restricted@testbed"], cwd=tmp_path,
              env={"KUBECONFIG": str(control_plane.kubeconfig), "COLUMNS": "200"})
    assert "4 to add" in res.stdout
    assert f"sweepctl/tf-paint:{sweepctl.__version__}" in json.dumps(
        json.loads((tmp_path / ".sweepctl" / "plan.json").read_text()))


def test_the_wheel_with_train_applies_a_one_trial_sweep_here(dist: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", next(dist.glob("*.whl")), "[train]")
    spec = tmp_path / "one.yaml"
    spec.write_text("name: one\nargs: [--epochs, '3', --size, '16']\nhyperParamValues: {learningRate: [0.01]}\n")
    res = run([str(bin_dir / "sweepctl"), "apply", str(spec), "--auto-approve"], cwd=tmp_path,
              env={"COLUMNS": "200"})
    assert "1 added" in res.stdout, res.stdout
    status = json.loads(run([str(bin_dir / "sweepctl"), "status", str(spec), "-o", "json"], cwd=tmp_path).stdout)
    [trial] = status
    assert trial["state"] == "Succeeded" and isinstance(trial["metric"], float), trial


def test_the_version_is_written_once_and_everything_follows_it() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sweepctl.__version__"}
    from cluster.images import default_images, project_version  # what the test cluster tags images with

    assert project_version() == sweepctl.__version__
    assert default_images()[0] == f"sweepctl/tf-paint:{sweepctl.__version__}"
    # the README and the example spec name the image this version builds
    for path in ("README.md", "specs/starry-night.yaml"):
        tags = set(re.findall(r"tf-paint:(\d+\.\d+\.\d+)", (ROOT / path).read_text()))
        assert tags == {sweepctl.__version__}, (path, tags)
