"""The fault suite's test bed: a control plane of its own (its processes are killed and frozen here),
a fresh namespace per test with the README Role granted to the restricted user, and the fault proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "kubernetes"))
from faultproxy import FaultProxy, mint_certificate  # noqa: E402
from lockhelpers import grant_readme_role  # noqa: E402
from controlplane import ControlPlane  # noqa: E402

CLUSTER = HERE.parent / "cluster"


@dataclass(frozen=True)
class Bed(ControlPlane):
    """A running control plane whose etcd and kube-apiserver these tests may kill, restart and freeze."""

    run_dir: Path

    def _pids(self) -> dict:
        return json.loads((self.run_dir / "pids.json").read_text())

    def pid(self, name: str) -> int:
        return self._pids()[name]["pid"]

    def kill_apiserver(self) -> list[str]:
        """SIGKILL kube-apiserver; returns its command line, to start it again with the same flags."""
        pid = self.pid("kube-apiserver")
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        os.kill(pid, signal.SIGKILL)
        # Gone once its port refuses connections: a killed Go server's main thread may be a zombie
        # while its other threads still hold the listening socket (a restart at once then fails to bind).
        server = json.loads(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        host, port = server.removeprefix("https://").rsplit(":", 1)
        for _ in range(200):
            try:
                socket.create_connection((host, int(port)), timeout=0.5).close()
            except OSError:
                break
            time.sleep(0.05)
        return argv

    def start_apiserver(self, argv: list[str]) -> None:
        log = open(self.run_dir / "kube-apiserver.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        pids = self._pids()
        pids["kube-apiserver"] = {"pid": proc.pid, "binary": argv[0]}
        (self.run_dir / "pids.json").write_text(json.dumps(pids))  # so that `down` stops this one

    def ready(self) -> bool:
        return self.kubectl("get", "--raw", "/readyz", check=False).returncode == 0

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            assert time.monotonic() < deadline, "kube-apiserver not ready again"
            time.sleep(0.2)

    def restart_apiserver_in(self, delay: float, down_for: float) -> threading.Thread:
        """In the background: after `delay` s SIGKILL kube-apiserver, start it again `down_for` s later."""
        def go() -> None:
            time.sleep(delay)
            argv = self.kill_apiserver()
            time.sleep(down_for)
            self.start_apiserver(argv)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    run_dir = tmp_path_factory.mktemp("faultbed") / "run"
    proc = subprocess.run([sys.executable, str(CLUSTER / "up"), "--dir", str(run_dir)], stdout=subprocess.PIPE,
                          text=True)
    if proc.returncode != 0:
        pytest.fail(f"tests/cluster/up failed with exit {proc.returncode}")
    try:
        yield Bed(kubeconfig=Path(proc.stdout.strip().splitlines()[-1]), bin_dir=(run_dir / "bin").resolve(),
                  run_dir=run_dir)
    finally:
        pids = run_dir / "pids.json"
        if pids.is_file():  # nothing left frozen, whatever a test did
            for entry in json.loads(pids.read_text()).values():
                try:
                    os.kill(entry["pid"], signal.SIGCONT)
                except OSError:
                    pass
        subprocess.run([sys.executable, str(CLUSTER / "down"), "--dir", str(run_dir)], check=False)


@pytest.fixture
def ns(bed: Bed) -> Iterator[str]:
    """A fresh namespace where the restricted user has exactly the README Role."""
    bed.wait_ready()
    name = f"f-{uuid.uuid4().hex[:10]}"
    bed.kubectl("create", "namespace", name)
    grant_readme_role(bed, name)
    yield name
    bed.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def proxy(bed: Bed, tmp_path: Path) -> Iterator[FaultProxy]:
    cert, key = mint_certificate(bed.run_dir / "pki", tmp_path / "proxy-pki")
    server = json.loads(bed.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    fault_proxy = FaultProxy(server, bed.run_dir / "pki" / "ca.crt", cert, key).start()
    yield fault_proxy
    fault_proxy.stop()
