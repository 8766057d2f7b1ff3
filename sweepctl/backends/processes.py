"""Processes of the local backend: start trainers (by fork), tell whether a recorded one still runs, stop it.

A process is recorded by its identity: pid, start time (clock ticks since
boot, from /proc) and boot id. A pid alone is not enough: after a trainer ends
its pid can be reused, and a stop must never hit a process that is not the
trainer it recorded. Any process (another apply, a prune, a status) can check
an identity, so none of them needs another's cooperation to know what runs.

Trainers run in sessions of their own: Ctrl-C in the apply's terminal reaches
only the apply, which stops them in order; a killed apply leaves them running,
for the next apply to adopt. A stop signals the trainer's whole process group
(the supervisor and the trainer in it).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from sweepctl.backends import forkserver
from sweepctl.core.diagnostics import SweepctlError

__all__ = ["ForkServer", "Identity", "alive", "identity", "stop", "trainer_root"]

Identity = Mapping[str, Any]  # {"pid", "start", "boot"}, as stored in state.json
_FORKSERVER = os.path.abspath(forkserver.__file__)
_HAVE_PROC = os.path.isdir("/proc/self")


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, int | None] | None:
    """The process's state letter and start time, or None when there is no such process.

    Without /proc (not Linux) only whether the pid exists is known: its start time is None.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if _HAVE_PROC:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?", None
    fields = text.rsplit(")", 1)[1].split()  # the command name, in parentheses, may hold spaces
    return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)


def identity(pid: int) -> dict[str, Any]:
    """What tells this process apart from any later one with the same pid."""
    stat = _stat(pid)
    return {"pid": pid, "start": stat[1] if stat else None, "boot": _boot_id()}


def alive(ident: Identity | None) -> bool:
    """Whether the recorded process still runs (a zombie, dead but not yet reaped, does not)."""
    if not ident or ident.get("boot") != _boot_id():
        return False
    stat = _stat(int(ident["pid"]))
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == ident.get("start")


def stop(idents: Iterable[Identity], *, grace: float = 10.0) -> None:
    """Stop these processes' groups: SIGTERM, then SIGKILL after `grace` seconds; return once all are gone."""
    targets = [i for i in idents if alive(i)]
    for ident in targets:
        _signal_group(ident, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(i) for i in targets) and time.monotonic() < deadline:
        time.sleep(0.05)
    for ident in targets:
        _signal_group(ident, signal.SIGKILL)
    while any(alive(i) for i in targets) and time.monotonic() < deadline + 5:
        time.sleep(0.05)


def _signal_group(ident: Identity, signum: int) -> None:
    if alive(ident):  # checked right before: never signal a reused pid
        try:
            os.killpg(int(ident["pid"]), signum)
        except ProcessLookupError:
            pass


@cache
def trainer_root() -> Path:
    """The folder holding the sweepctl package and, beside it, the trainer package `model`."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "model" / "__main__.py").is_file():
        raise SweepctlError(f"the trainer (package `model`) is not installed beside sweepctl in {root}",
                            hint="reinstall sweepctl with its trainer: pip install 'sweepctl[train]'")
    return root


class ForkServer:
    """A command's trainer starter: a fork server (backends/forkserver.py) that imported TensorFlow once.

    Started on first use and stopped by close(), or when this process ends (it
    reads its requests from a pipe that closes with us); the trainers it started
    run on without it. It runs in this directory (relative paths in the trainers'
    arguments keep their meaning), but never imports from it.
    """

    def __init__(self) -> None:
        self._server: subprocess.Popen[bytes] | None = None
        self._trainer = False  # whether the running server imported tf-paint (only commands need none)

    def _request(self, document: dict[str, Any]) -> None:
        assert self._server is not None and self._server.stdin is not None
        self._server.stdin.write((json.dumps(document) + "\n").encode())
        self._server.stdin.flush()

    def _reply(self) -> dict[str, Any]:
        assert self._server is not None and self._server.stdout is not None
        line = self._server.stdout.readline()
        if not line:
            code = self._server.wait()
            self._server = None
            raise SweepctlError(f"the trainer fork server ended unexpectedly (exit status {code})",
                                hint="run the trainer by hand to see why: python -m model --help")
        return json.loads(line)

    def start_server(self, *, trainer: bool = True) -> None:
        """Start the server, unless it runs, and wait until it has imported the trainer and TensorFlow (about 2 s).

        With trainer=False (a sweep of the user's own command) it imports nothing.
        """
        if self._server is not None:
            if self._server.poll() is None and self._trainer >= trainer:
                return
            self.close()  # it died (killed, out of memory), or it cannot start tf-paint: start another
        env = dict(os.environ)
        here = Path.cwd().resolve()
        path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != here]
        if path:
            env["PYTHONPATH"] = os.pathsep.join(path)
        else:
            env.pop("PYTHONPATH", None)
        argv = [sys.executable, "-P", _FORKSERVER, *([str(trainer_root())] if trainer else [])]
        self._trainer = trainer
        self._server = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        ready = self._reply()
        if "error" in ready:
            self.close()
            raise SweepctlError(f"cannot start the trainer: {ready['error']}",
                                hint="reinstall sweepctl with its trainer: pip install 'sweepctl[train]'")

    def start(self, args: list[str], *, logs: Path, exit_file: Path, env: Mapping[str, str] | None = None,
              title: str = "") -> int:
        """Fork a tf-paint trainer's supervisor, its output appended to logs/stdout.log; it waits for release(pid).

        `env` is added to the trainer's environment; `title` ("SWEEP TRIAL") names the
        supervisor and the trainer in ps.
        """
        self.start_server()
        return self._start({"args": args, "env": dict(env or {}), "title": title}, logs, exit_file)

    def start_command(self, command: list[str], *, cwd: Path, logs: Path, exit_file: Path,
                      env: Mapping[str, str], title: str = "") -> int:
        """Fork the supervisor of a user's command (exec'd in cwd with this process's environment plus env)."""
        self.start_server(trainer=False)
        return self._start({"command": command, "cwd": str(cwd), "env": {**os.environ, **env}, "title": title},
                           logs, exit_file)

    def _start(self, request: dict[str, Any], logs: Path, exit_file: Path) -> int:
        self._request({"exit_file": str(exit_file.absolute()), "log": str((logs / "stdout.log").absolute()),
                       **request})
        return int(self._reply()["pid"])

    def release(self, pid: int, *, train: bool = True) -> None:
        """Let a started supervisor train, once its pid is recorded; or, with train=False, make it exit."""
        self._request({"go" if train else "cancel": pid})

    def close(self) -> None:
        """Stop the server (the trainers it started run on); waiting supervisors exit without training."""
        server, self._server = self._server, None
        if server is None:
            return
        with contextlib.suppress(OSError):
            assert server.stdin is not None
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
