"""Helpers for the local backend's tests: tiny specs, state, other processes, and a census of running trainers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

TINY = ["--size", "8", "--epochs", "3", "--batch-size", "16"]
# Long enough to be caught running (and pruned, or killed), short enough to finish in a test.
SLOW = ["--size", "24", "--epochs", "1500", "--batch-size", "8"]
SWEEPCTL = [sys.executable, "-m", "sweepctl"]


def spec_text(values: str, *, name: str = "tiny", parallelism: int = 2, args: list[str] = TINY) -> str:
    return (f"name: {name}\nbackend: local\nargs: {json.dumps(args)}\nlocal: {{parallelism: {parallelism}}}\n"
            f"hyperParamValues:\n{values}")


def state(cwd: Path, sweep: str = "tiny") -> dict:
    """The sweep's state.json; empty before the first apply wrote it."""
    path = cwd / ".sweepctl" / "sweeps" / sweep / "state.json"
    return json.loads(path.read_text()) if path.exists() else {"trials": {}, "pruned": {}}


def logs_of(cwd: Path, trial: str, sweep: str = "tiny") -> Path:
    return cwd / ".sweepctl" / "sweeps" / sweep / "logs" / trial


def wait_for(predicate, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def cli(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """sweepctl in a process of its own, as in a second terminal."""
    return subprocess.run([*SWEEPCTL, *map(str, args)], cwd=cwd, env={**os.environ, "COLUMNS": "200"},
                          capture_output=True, text=True, check=False, **kwargs)


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*SWEEPCTL, *map(str, args)], cwd=cwd, env={**os.environ, "COLUMNS": "200"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Census:
    """What trainers run for this test, sampled from /proc every 50 ms.

    A trainer is counted once per launch: a process whose output goes to a
    trial's stdout.log under the test's folder, and whose parent's does not go
    to the same one (a supervisor and the trainer it starts are one launch).
    Trainers are forks of sweepctl's fork server, so their command lines do
    not tell them apart; their open stdout does.
    """

    def __init__(self, root: Path) -> None:
        self.root = str(root.resolve())
        self.samples: list[dict[str, list[int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _log_dir(self, pid: str) -> str | None:
        try:
            out = os.readlink(f"/proc/{pid}/fd/1")
        except OSError:
            return None
        if not out.endswith(os.sep + "stdout.log") or not out.startswith(self.root + os.sep):
            return None
        return os.path.dirname(out)

    def sample(self) -> dict[str, list[int]]:
        dirs = {pid: d for pid in os.listdir("/proc") if pid.isdigit() and (d := self._log_dir(pid))}
        launches: dict[str, list[int]] = {}
        for pid, log_dir in dirs.items():
            try:
                ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if dirs.get(ppid) != log_dir:
                launches.setdefault(log_dir, []).append(int(pid))
        return launches

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            time.sleep(0.05)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def most_at_once(self) -> int:
        return max((len(s) for s in self.samples), default=0)

    def most_per_trial(self) -> int:
        return max((len(pids) for s in self.samples for pids in s.values()), default=0)

    def launches(self, trial: str) -> set[int]:
        """The pids of every launch seen for the trial (a trial run twice shows two)."""
        return {pid for s in self.samples for d, pids in s.items() if os.path.basename(d) == trial for pid in pids}


def fork_servers(root: Path) -> list[int]:
    """The trainer fork servers running in root: forkserver.py processes that read requests from a pipe.

    Supervisors and trainers are forks of a server, with the same command line and
    directory; their stdin is /dev/null (a supervisor that has not yet swapped it is
    still the child of a server).
    """
    forks: dict[int, tuple[int, str]] = {}  # pid -> parent pid, stdin
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
            stdin = os.readlink(entry / "fd" / "0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if any(a.endswith(b"/sweepctl/backends/forkserver.py") for a in argv) and cwd == str(root.resolve()):
            forks[int(entry.name)] = (ppid, stdin)
    return [pid for pid, (ppid, stdin) in forks.items() if ppid not in forks and stdin.startswith("pipe:")]
