"""Shared fixtures: a real control plane, a fresh namespace per test, a CLI runner.

The control plane is started once per session by tests/cluster/up (built from
the official Go modules on first use), or reused when SWEEPCTL_TEST_KUBECONFIG
names the kubeconfig of one already running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from controlplane import ControlPlane
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "tests" / "cluster"


def pytest_sessionstart(session: pytest.Session) -> None:
    """A SIGTERM (a CI timeout, `kill`) ends the session like Ctrl-C, so every
    fixture's teardown still runs and no cluster process outlives the tests."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    existing = os.environ.get("SWEEPCTL_TEST_KUBECONFIG")
    if existing:
        bin_dir = Path(subprocess.run([str(CLUSTER / "build")], capture_output=True, text=True, check=True)
                       .stdout.strip().splitlines()[-1])
        yield ControlPlane(Path(existing), bin_dir)
        return
    run_dir = tmp_path_factory.mktemp("controlplane") / "run"
    proc = subprocess.run([sys.executable, str(CLUSTER / "up"), "--dir", str(run_dir)],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        pytest.fail(f"tests/cluster/up failed with exit {proc.returncode}; see its output above")
    kubeconfig = Path(proc.stdout.strip().splitlines()[-1])
    try:
        yield ControlPlane(kubeconfig, (run_dir / "bin").resolve())
    finally:
        subprocess.run([sys.executable, str(CLUSTER / "down"), "--dir", str(run_dir)], check=False)


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace per test, removed afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kube_env(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point sweepctl (and the Kubernetes client) at the test control plane, as admin."""
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    return {"KUBECONFIG": str(control_plane.kubeconfig)}


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def sweepctl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run the real CLI in-process, in a scratch working directory."""
    from sweepctl.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        res = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
        return Result(res.exit_code, res.stdout, res.stderr)

    return run
