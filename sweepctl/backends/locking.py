"""One writer per sweep: the lock that apply, prune and destroy hold, and who holds it.

A command that writes a sweep takes its lock before it reads the sweep to
plan, and keeps it until its writes are done, so two writers never plan from
the same state and undo each other's work. Read-only commands (plan, status,
report) take none. A lock says who holds it (user, host, pid), what (the
command) and since when, and carries an id: `sweepctl unlock SWEEP ID` breaks
it only for that id.

Backends keep the lock where their sweep lives: the local backend in a file
held with flock (the kernel releases it when its process dies, however it
dies), Kubernetes in a Lease (backends/lease.py) that the holder renews and
another command may take once it expired.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import secrets
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.durations import say_seconds

__all__ = ["Holder", "LockHeld", "SweepLock", "new_holder", "wait_for", "holding", "FileLock"]


@dataclass(frozen=True, kw_only=True)
class Holder:
    """Who holds a sweep's lock: its id (for unlock), user, host, pid, command and since (UTC)."""

    id: str
    user: str
    host: str
    pid: int
    command: str
    since: str

    def describe(self) -> str:
        return f"`{self.command}` by {self.user}@{self.host} (pid {self.pid}) since {self.since}, lock id {self.id}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Holder | None:
        try:
            data = json.loads(text or "")
            return cls(id=str(data["id"]), user=str(data["user"]), host=str(data["host"]), pid=int(data["pid"]),
                       command=str(data["command"]), since=str(data["since"]))
        except (ValueError, KeyError, TypeError):
            return None


def new_holder(command: str) -> Holder:
    """This process as a holder: the command as typed, shortened to what a message can show."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    # The command as typed, when this process is that command (not a test or a library calling it).
    typed = shlex.join(["sweepctl", *sys.argv[1:]]) if sys.argv[1:2] == [command] else f"sweepctl {command}"
    return Holder(id=secrets.token_hex(8), user=user, host=socket.gethostname(), pid=os.getpid(),
                  command=typed if len(typed) <= 200 else typed[:197] + "...",
                  since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


class LockHeld(SweepctlError):
    """Another command holds the sweep's lock; nothing was changed."""

    def __init__(self, sweep: str, holder: Holder | None, *, waited: float, expires: str = "", where: str = "") -> None:
        who = holder.describe() if holder else "another command (its holder record is unreadable)"
        waited_text = f" (waited {say_seconds(waited)})" if waited else ""
        unlock = f"sweepctl unlock {sweep} {holder.id if holder else 'ID'}{where}"
        super().__init__(
            f"sweep {sweep} is locked by {who}{waited_text}; nothing was changed",
            hint=f"wait for it with --lock-timeout 5m{expires}; if that command is gone, `{unlock}` breaks the lock",
        )
        self.holder = holder


def wait_for(take: Callable[[], Holder | None], *, timeout: float, sweep: str,
             expires: str = "", where: str = "", poll: float = 1.0) -> None:
    """Call `take` until it returns None (taken) or `timeout` seconds passed (then LockHeld).

    `take` returns the current holder when the lock is someone else's. Polls
    every `poll` seconds, doubling up to 4 s, never past the timeout. `where`
    holds the flags that make `sweepctl unlock` reach the same lock.
    """
    start = time.monotonic()
    while True:
        holder = take()
        if holder is None:
            return
        left = start + timeout - time.monotonic()
        if left <= 0:
            raise LockHeld(sweep, holder, waited=time.monotonic() - start if timeout else 0, expires=expires,
                           where=where)
        time.sleep(min(poll, left))
        poll = min(poll * 2, 4.0)


class SweepLock(Protocol):
    """A backend's lock of one sweep."""

    def acquire(self, holder: Holder, *, timeout: float) -> None: ...

    def release(self) -> bool:
        """Let go; False when it could not (the API server is away): it then expires by itself."""
        ...

    def unlock(self, lock_id: str) -> Holder | None: ...


@contextmanager
def holding(lock: SweepLock, holder: Holder, *, timeout: float, sweep: str, expires: str = "") -> Iterator[Holder]:
    """Hold `lock` for the body; released on the way out, Ctrl-C and SIGTERM included."""
    with _terminate_as_interrupt():
        lock.acquire(holder, timeout=timeout)
        try:
            yield holder
        finally:
            if not lock.release():
                print(f"warning: the lock of sweep {sweep} could not be released (the API server did not answer); "
                      f"it expires by itself{expires}", file=sys.stderr, flush=True)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While a lock is held, SIGTERM ends the command as Ctrl-C does: cleanly, releasing the lock."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


class FileLock:
    """The local backend's sweep lock: an flock on `path`, whose content is the holder's record.

    The kernel drops an flock when its process ends, so a killed holder never
    leaves a stale lock behind: there is nothing to expire or break.
    """

    def __init__(self, path: Path, sweep: str) -> None:
        self.path = path
        self.sweep = sweep
        self._file: Any = None

    def acquire(self, holder: Holder, *, timeout: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")

        def take() -> Holder | None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return self.holder() or Holder(id="?", user="?", host="?", pid=0, command="?", since="?")
            return None

        try:
            wait_for(take, timeout=timeout, sweep=self.sweep)
        except BaseException:
            f.close()
            raise
        f.seek(0)
        f.truncate()
        f.write(holder.to_json())
        f.flush()
        self._file = f

    def held(self) -> bool:
        """Whether this object holds the lock now (acquired, not yet released)."""
        return self._file is not None

    def release(self) -> bool:
        """Let go (idempotent): the record is cleared first, so a reader never sees a stale holder."""
        f, self._file = self._file, None
        if f is not None:
            f.seek(0)
            f.truncate()
            f.flush()
            f.close()
        return True

    def holder(self) -> Holder | None:
        try:
            return Holder.from_json(self.path.read_text())
        except OSError:
            return None

    def held_by_someone(self) -> bool:
        try:
            with self.path.open("a") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return False
        except BlockingIOError:
            return True
        except FileNotFoundError:
            return False

    def unlock(self, lock_id: str) -> Holder:
        """Locally a lock lives as long as its process: refuse with what to do instead."""
        holder = self.holder()
        if not self.held_by_someone():
            raise SweepctlError(f"sweep {self.sweep} is not locked", hint="nothing to unlock")
        if holder is None or holder.id != lock_id:
            raise SweepctlError(
                f"lock id {lock_id} does not match the lock of sweep {self.sweep}"
                + (f", held by {holder.describe()}" if holder else ""), hint="nothing was changed")
        raise SweepctlError(
            f"sweep {self.sweep} is locked by a running process: {holder.describe()}",
            hint=f"a local lock ends with its process: stop it (Ctrl-C, or kill {holder.pid}); nothing was changed")
