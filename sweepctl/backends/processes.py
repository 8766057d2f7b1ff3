"""Processes of the local backend: start a trainer, tell whether a recorded one still runs, stop it.

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

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from sweepctl.backends import supervisor
from sweepctl.core.diagnostics import SweepctlError

__all__ = ["Identity", "alive", "identity", "start_trainer", "stop", "supervisors", "trainer_root"]

Identity = Mapping[str, Any]  # {"pid", "start", "boot"}, as stored in state.json
_SUPERVISOR = os.path.abspath(supervisor.__file__)
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


def supervisors() -> dict[str, list[dict[str, Any]]]:
    """Every live supervisor by the exit file it writes, found by its command line.

    For a trainer started by an apply killed before it could record the pid:
    the only way to find it, so that its trial never runs twice at once.
    """
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:4] == [b"-P", _SUPERVISOR.encode(), b"run"] and len(argv) > 4:
            ident = identity(int(entry.name))
            if alive(ident):
                found.setdefault(argv[4].decode(errors="replace"), []).append(ident)
    return found


@cache
def trainer_root() -> Path:
    """The folder holding the sweepctl package and, beside it, the trainer package `model`."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "model" / "__main__.py").is_file():
        raise SweepctlError(f"the trainer (package `model`) is not installed beside sweepctl in {root}",
                            hint="reinstall sweepctl with its trainer: pip install 'sweepctl[train]'")
    return root


def start_trainer(args: list[str], *, logs: Path, exit_file: Path) -> subprocess.Popen[bytes]:
    """Start the trainer with these arguments, its output appended to logs/stdout.log.

    It runs in this directory (relative paths in `args` keep their meaning),
    but never imports from it.
    """
    env = dict(os.environ)
    here = Path.cwd().resolve()
    path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != here]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    else:
        env.pop("PYTHONPATH", None)
    argv = [sys.executable, "-P", _SUPERVISOR, "run", str(exit_file), str(trainer_root()), "--", *args]
    with (logs / "stdout.log").open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
