"""`sweepctl tensorboard SPEC`: look at a sweep's trials in TensorBoard.

Locally it starts a real TensorBoard on the sweep's logs, on loopback unless
--bind-all; on Kubernetes it says how to reach the sweep's own TensorBoard.
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sweepctl.commands.common import Access, backend_for, command_line, read_spec
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.manifests import tensorboard_name
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, spec_path: Path, access: Access, port: int | None, bind_all: bool) -> int:
    spec = read_spec(spec_path, max_trials=10**9)
    backend = backend_for(spec, access)
    logs = backend.local_logs(spec.name)
    if logs is None:
        name, ns = tensorboard_name(spec.name), backend.namespace
        view.message(
            f"TensorBoard for sweep {spec.name} runs in the cluster as service/{name} "
            f"(namespace {ns}, {spec.service_type}).\n"
            f"Reach it with:  kubectl port-forward -n {ns} service/{name} 6006:80  and open http://localhost:6006\n"
            f"or through the API server's proxy: {backend.tensorboard_proxy(spec.name)}"
        )
        return 0
    if not logs.is_dir():
        raise SweepctlError(f"sweep {spec.name} has no logs in {logs}",
                            hint=f"run `{command_line('apply', spec_path, access=access)}` first")
    if importlib.util.find_spec("tensorboard") is None:
        raise ModuleNotFoundError(name="tensorboard")  # said as one line, naming the extra
    host = "0.0.0.0" if bind_all else "127.0.0.1"
    port = port or _free_port(host)
    argv = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", host, "--port", str(port)]
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as err:
        raise SweepctlError(f"cannot start TensorBoard: {err}") from None
    url = f"http://{'127.0.0.1' if host == '127.0.0.1' else socket.gethostname()}:{port}/"

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    # Killed or hung up on, sweepctl still stops its TensorBoard (the finally below).
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        _wait_until_serving(proc, f"http://127.0.0.1:{port}/")
        view.message(f"TensorBoard for sweep {spec.name}: {url}  (one run per trial; Ctrl-C to stop)")
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_until_serving(proc: subprocess.Popen[bytes], url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SweepctlError(f"TensorBoard exited with {proc.returncode}: {err.strip()[-500:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SweepctlError(f"TensorBoard did not answer at {url} within {timeout:.0f} s")
