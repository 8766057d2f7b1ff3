"""The local backend: trials are trainer processes on this machine.

State lives in a folder (./.sweepctl by default, as Terraform keeps
.terraform/), one sub-folder per sweep:

  sweeps/<sweep>/state.json        every trial: params, args, state, its apply and
                                   its process; every pruned trial: params, last metric
  sweeps/<sweep>/state.lock        held while a command rewrites state.json
  sweeps/<sweep>/lock              held by the apply that starts trainers, while it runs
  sweeps/<sweep>/logs/<trial>/     the trial's TensorBoard logs, stdout.log, exit-code
  sweeps/<sweep>/logs/<trial>/attempt-<n>/   an earlier attempt's, kept

How commands share a sweep (several may act on it at once):
- state.json is only ever rewritten whole (a temporary file, then a rename),
  and only inside state.lock, by read-modify-write: an apply and a prune that
  change it at once both keep their changes. Readers (plan, status, report)
  take no lock and never write: they cannot make an apply fail.
- Only one apply starts trainers at a time (the `lock`), so no trial ever runs
  twice at once. Commands that only delete (prune, destroy) run beside it.
- A trial is recorded Queued (with its apply's identity) before it starts, and
  Running with its process's identity (backends/processes.py) in the same
  state.lock section that starts it; the process trains only once that record
  is written (backends/forkserver.py), so no trainer ever runs unrecorded.
  What a record means is checked against the processes, so it stays true
  whoever dies: a Queued trial whose apply is gone is Interrupted; a Running
  trial whose process is gone ended, as its exit-code file says (Interrupted
  without one).
- Deleting (prune) removes the record first, then stops the trial's process.
  The apply that started it sees its trainer end with no record left, and
  counts the trial as removed, not failed; a queued trial with no record left
  is never started.
- Trainers are forked from one process per command that imported TensorFlow
  once (backends/forkserver.py), and run in sessions of their own. A killed
  apply (kill -9) leaves them running; the next apply adopts them (they count
  towards its parallelism and it waits for them) instead of starting their
  trials again.
- Logs are never deleted: a trial that runs again (resumed, revived, re-added,
  replaced) first moves its earlier attempt into attempt-<n>/. TensorBoard
  shows that as the run <trial>/attempt-<n>; status and report read only the
  trial's own folder, the current attempt.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import sys
import time
import weakref
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepctl import workspace
from sweepctl.backends import processes
from sweepctl.backends.base import ApplyResult, Progress, RunningTrial
from sweepctl.backends.forkserver import EXIT_FILE
from sweepctl.core.command import environment, with_log_dir
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.hparams import hparams_data
from sweepctl.core.manifests import FAILURE, PARAMS, TEMPLATE_HASH, TRIAL, local_trial
from sweepctl.core.objective import EVENT_FILES, STDOUT, MetricSource
from sweepctl.core.plan import PRUNED, Action, Change, LiveObject, Observed, Plan
from sweepctl.core.spec import Spec
from sweepctl.core.trials import Trial

if TYPE_CHECKING:
    from types import ModuleType

    from sweepctl.metrics.events import RunData

__all__ = ["LocalBackend"]

_LOSS = re.compile(rb"(?<![\w-])loss\s*=\s*([+-]?\d*\.?\d+(?:[eE][+-]?\d+)?)")
_ATTEMPT = re.compile(r"attempt-(\d+)")
_ACTIVE = ("Queued", "Running")
_TAIL_LINES = 5  # of a failed trial's output, for status


class LocalBackend:
    """Runs trials as processes, at most `parallelism` at once."""

    name = "local"
    notes: tuple[str, ...] = ()  # reading files here needs no permission

    def __init__(self, *, state_dir: Path, parallelism: int | None = None, threads_per_trial: int = 1) -> None:
        self.state_dir = state_dir
        self.threads_per_trial = threads_per_trial
        self.parallelism = parallelism or max(1, (os.cpu_count() or 1) // threads_per_trial)
        # One for all of this command's applies (`apply --wait` runs many): TensorFlow is imported once.
        self.forks = processes.ForkServer()
        weakref.finalize(self, self.forks.close)
        self._sweep_lock: Any = None  # the sweep's lock while this command holds it (lock)
        self._holder: Any = None  # who holds the sweep's lock, to take it again (relock)

    @property
    def namespace(self) -> str:
        return ""

    @property
    def target(self) -> str:
        return f"state in {self.state_dir.resolve()}"

    def sweep_dir(self, sweep: str) -> Path:
        return workspace.sweep_dir(self.state_dir, sweep)

    def log_dir(self, sweep: str, trial: str) -> Path:
        return workspace.trial_dir(self.state_dir, sweep, trial)

    def sweeps(self) -> list[str]:
        """The sweeps that have state here, for errors that must say which exist."""
        return workspace.sweeps_in(self.state_dir)

    def desired(self, spec: Spec, trial: Trial) -> dict[str, Any]:
        return local_trial(spec, trial)

    def support(self, spec: Spec) -> list[dict[str, Any]]:
        return []  # TensorBoard runs on demand: `sweepctl tensorboard`

    def requirements(self, spec: Spec) -> list[str]:
        return []  # the trainer runs here; kubernetes.kind and runtime do not apply

    def specs(self, sweep: str, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {}  # observe reads every trial's arguments already

    def local_logs(self, sweep: str) -> Path | None:
        return self.sweep_dir(sweep) / "logs"

    def tensorboard_proxy(self, sweep: str) -> str | None:
        return None

    def record_hparams(self, spec: Spec, plan: Plan) -> None:
        """The sweep's HParams experiment in its logs, and the session of every planned trial that lacks one.

        New trials get theirs as they start and finish (_Run); this catches up
        on trials that ran before, or whose apply was killed.
        """
        writer = _hparams_writer()
        if writer is not None and not plan.destroy:
            logs = self.sweep_dir(spec.name) / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            writer.sync(logs, hparams_data(spec, plan))

    def read_runs(self, sweep: str, names: Collection[str], tags: Collection[str], *, image_tag: str | None = None,
                  tensorboard_url: str | None = None, required: bool = True, source: MetricSource = EVENT_FILES,
                  explain: Collection[str] = ()) -> dict[str, RunData]:
        """The trials' event files (resuming from what the last command read), or their stdout.log.

        The cache sits in the state folder beside the sweeps (`cache/<sweep>/`),
        not in the sweep's own folder, which only apply writes. Reads that fetch
        pictures (the report) go without it: it keeps scalars only.
        """
        from sweepctl.metrics import cache, events

        log_dirs = workspace.trial_dirs(self.state_dir, sweep, names)
        if source.kind == STDOUT:
            return {name: _stdout_run(path / "stdout.log", tags, source, ended=name in explain)
                    for name, path in log_dirs.items()}
        if image_tag:
            return events.read_runs(log_dirs, tags, image_tag=image_tag, explain=explain)[0]
        where = cache.cache_file(workspace.cache_dir(self.state_dir, sweep), tags)
        previous = cache.load(where, tags)
        runs, reads = events.read_runs(log_dirs, tags, previous=previous, explain=explain)
        if reads != previous:
            cache.save(where, tags, reads)
        return runs

    # -- state ---------------------------------------------------------------------------

    def _read(self, sweep: str) -> dict[str, Any]:
        path = workspace.state_file(self.state_dir, sweep)
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            state = {}
        except ValueError as err:
            raise SweepctlError(f"{path} is corrupt: {err}", hint="restore it, or remove the sweep's folder") from None
        state.setdefault("trials", {})
        state.setdefault("pruned", {})
        for name in [*state["trials"], *state["pruned"]]:  # they become folder names
            workspace.check_trial_name(name, source=str(path))
        return state

    @contextmanager
    def _state(self, sweep: str) -> Iterator[dict[str, Any]]:
        """state.json for a read-modify-write: under state.lock, written back unless the body raised."""
        path = workspace.state_file(self.state_dir, sweep)
        path.parent.mkdir(parents=True, exist_ok=True)
        with workspace.state_lock_file(self.state_dir, sweep).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # held for milliseconds: wait for it
            state = self._read(sweep)
            yield state
            tmp = path.with_name(f"state.json.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            os.replace(tmp, path)  # atomic: readers and a killed writer never see half a file

    @contextmanager
    def _apply_lock(self, sweep: str) -> Iterator[bool]:
        """Yield True while holding the sweep's apply lock, False if another apply holds it."""
        path = workspace.lock_file(self.state_dir, sweep)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True  # closing the file releases it

    @contextmanager
    def lock(self, sweep: str, *, command: str, timeout: float) -> Iterator[Any]:
        """The sweep's lock (sweep.lock), until the command's writes are done.

        An apply that trains lets go of it once its trials are recorded: while
        trainers run, only the apply lock (one trainer per trial) holds, and
        prune and destroy may stop trials beside it.
        """
        from sweepctl.backends.locking import FileLock, holding, new_holder

        self._sweep_lock = FileLock(workspace.sweep_dir(self.state_dir, sweep) / "sweep.lock", sweep)
        try:
            with holding(self._sweep_lock, new_holder(command), timeout=timeout, sweep=sweep) as held:
                self._holder = held
                yield held
        finally:
            self._sweep_lock = None
            self._holder = None

    def relock(self) -> None:
        """Take the sweep's lock again for apply --wait's next round, waiting for it as long as it takes.

        The round's apply lets go of it once its trials are recorded, so that
        prune and destroy may act while trainers run; the next round plans
        and records only once it holds the lock again. It waits without a
        limit (--lock-timeout is for starting: this apply owns the sweep, and
        a prune beside it holds the lock for moments), and says so once.
        """
        from sweepctl.backends.locking import LockHeld

        if self._sweep_lock is None or self._holder is None or self._sweep_lock.held():
            return
        holder = self._holder
        try:
            self._sweep_lock.acquire(holder, timeout=0)
        except LockHeld as held:
            who = held.holder.describe() if held.holder else "another command"
            print(f"waiting for the lock of sweep {self._sweep_lock.sweep}, held by {who}, to plan the next round",
                  file=sys.stderr, flush=True)
            self._sweep_lock.acquire(holder, timeout=float("inf"))

    def unlock(self, sweep: str, lock_id: str) -> Any:
        from sweepctl.backends.locking import FileLock

        return FileLock(workspace.sweep_dir(self.state_dir, sweep) / "sweep.lock", sweep).unlock(lock_id)

    def _ended(self, sweep: str, name: str) -> tuple[str, int | None]:
        """How a trial whose process is gone ended: its exit-code file, or Interrupted without one."""
        try:
            code = int((self.log_dir(sweep, name) / EXIT_FILE).read_text())
        except (OSError, ValueError):
            return "Interrupted", None
        return ("Succeeded" if code == 0 else "Failed"), code

    def _current(self, sweep: str, name: str, rec: dict[str, Any]) -> str:
        """A record's state as it is now, checked against the processes it names."""
        state = rec["state"]
        if state == "Queued" and not processes.alive(rec.get("owner")):
            return "Interrupted"  # its apply is gone: nobody will start it
        if state == "Running" and not processes.alive(rec.get("process")):
            if processes.alive(rec.get("owner")):
                return "Running"  # ended a moment ago; its apply records how
            return self._ended(sweep, name)[0]
        return state

    def observe(self, sweep: str) -> Observed:
        """The sweep's trials; reads only (no lock, no write), so it never gets in an apply's way.

        A failed trial carries the last lines of its output (FAILURE), which say why.
        """
        state = self._read(sweep)
        objects = []
        for name, rec in state["trials"].items():
            trial_state = self._current(sweep, name, rec)
            annotations = {TEMPLATE_HASH: rec["template_hash"], PARAMS: json.dumps(rec["params"])}
            if trial_state == "Failed":
                annotations[FAILURE] = self._failure(sweep, name)
            objects.append(
                LiveObject(
                    kind="Trial",
                    name=name,
                    uid=rec["uid"],
                    generation=1,
                    labels={TRIAL: rec["id"]},
                    annotations=annotations,
                    spec={"command": rec["command"]} if "command" in rec else {"args": rec["args"]},
                    state=trial_state,
                    params=rec["params"],
                )
            )
        return Observed(objects=tuple(objects), pruned=state["pruned"])

    def _failure(self, sweep: str, name: str) -> str:
        """How a trial failed: its exit status and the last lines of its output (stderr goes there too)."""
        logs = self.log_dir(sweep, name)
        code = self._ended(sweep, name)[1]
        try:
            with (logs / "stdout.log").open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
                lines = [line for line in f.read().decode(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        ended = f"exited with {code}" if code is not None else "its supervisor was killed"
        return "\n".join([f"{ended}; last output ({logs / 'stdout.log'}):" if lines else f"{ended}; no output",
                          *(line[-300:] for line in lines[-_TAIL_LINES:])])

    # -- apply ---------------------------------------------------------------------------

    def apply(self, plan: Plan, *, progress: Progress) -> ApplyResult:
        """Delete, then run the trials to create; a plan that only deletes runs beside a running apply."""
        if not any(c.action in (Action.CREATE, Action.REPLACE) for c in plan.trials):
            return self._delete(plan, progress, ApplyResult())
        if any(c.manifest is not None and "args" in c.manifest["spec"] for c in plan.trials):
            processes.trainer_root()  # no trainer, no change
        with self._apply_lock(plan.sweep) as held:
            if not held:
                raise SweepctlError(
                    f"another apply of sweep {plan.sweep} is running in {self.state_dir}",
                    hint="wait for it to finish, or stop it (Ctrl-C); running one trial twice would waste its work"
                    " (`sweepctl prune` works while it runs)",
                )
            result = ApplyResult()
            if writer := _hparams_writer():
                writer.prepare()  # here, not while a trainer's start holds Ctrl-C and state.lock
            adopted = self._adopt(plan.sweep)
            self._delete(plan, progress, result)
            queue = self._queue(plan, skip=result.errors)
            if self._sweep_lock is not None:
                self._sweep_lock.release()  # recorded: prune and destroy may act beside the trainers
            _Run(self, plan, progress, result, queue, adopted).run()
            return result

    def _delete(self, plan: Plan, progress: Progress, result: ApplyResult) -> ApplyResult:
        """Record pruned trials, drop the deleted and replaced trials' records, then stop their processes.

        Records first: the apply that runs a trial learns from the missing
        record that its trainer was stopped on purpose. Logs stay.
        """
        stopping = []
        with self._state(plan.sweep) as state:
            trials, pruned = state["trials"], state["pruned"]
            if plan.destroy:
                pruned.clear()  # a destroyed sweep starts afresh
            # Recorded before anything is deleted: a trial deleted but not recorded
            # would come back with the next apply.
            pruned.update({name: dict(rec) for name, rec in plan.prune.items()})
            for change in plan.trials:
                if change.action not in (Action.DELETE, Action.REPLACE):
                    continue
                rec = trials.get(change.name)
                if rec is not None and change.uid not in (None, rec["uid"]):
                    result.errors[change.name] = "it was recreated since the plan was made; not deleted"
                    continue
                if rec is not None:
                    del trials[change.name]
                    stopping.append(rec.get("process"))
        processes.stop(p for p in stopping if p)
        for change in plan.trials:
            if change.action is Action.DELETE and change.name not in result.errors:
                result.destroyed += 1
                progress.done(change, None)
        return result

    def _adopt(self, sweep: str) -> dict[str, dict[str, Any]]:
        """Take over what a killed apply left: its live trainers are this apply's now; the rest is settled."""
        me = processes.identity(os.getpid())
        adopted = {}
        with self._state(sweep) as state:
            for name, rec in state["trials"].items():
                if rec["state"] not in _ACTIVE or processes.alive(rec.get("owner")):
                    continue
                if rec["state"] == "Running" and processes.alive(rec.get("process")):
                    rec["owner"] = me
                    adopted[name] = rec
                    continue
                rec["state"], code = self._ended(sweep, name) if rec["state"] == "Running" else ("Interrupted", None)
                if code is not None:
                    rec["exit_code"] = code
                    _session_end(self.log_dir(sweep, name), rec["state"])
                rec.pop("owner", None)
                rec.pop("process", None)
        return adopted

    def _queue(self, plan: Plan, *, skip: Collection[str]) -> list[tuple[Change, str]]:
        """Record the trials to run as Queued, each with a fresh uid, their earlier logs set aside."""
        me = processes.identity(os.getpid())
        queue = []
        with self._state(plan.sweep) as state:
            trials, pruned = state["trials"], state["pruned"]
            changes = [c for c in plan.trials if c.action in (Action.CREATE, Action.REPLACE) and c.name not in skip]
            for change in changes:
                assert change.manifest is not None
                old = trials.get(change.name)
                if old is not None and processes.alive(old.get("process")):
                    continue  # adopted: it runs already
                logs = self.log_dir(plan.sweep, change.name)
                _set_aside(logs)
                if change.state == PRUNED:
                    pruned.pop(change.name, None)  # revived
                uid = f"{change.trial_id}-{time.time_ns()}"
                body = change.manifest["spec"]
                # The user's command runs in the spec's folder (`args` of tf-paint: in this one).
                run = {"command": list(body["command"]), "cwd": os.path.dirname(plan.spec_path or "") or os.getcwd()
                       } if "command" in body else {"args": list(body["args"])}
                trials[change.name] = {
                    "id": change.trial_id,
                    "uid": uid,
                    "params": dict(change.params),
                    **run,
                    "template_hash": change.manifest["metadata"]["annotations"][TEMPLATE_HASH],
                    "state": "Queued",
                    "owner": me,
                }
                queue.append((change, uid))
        return queue


def _hparams_writer() -> ModuleType | None:
    """backends.hparams_writer, or None where tensorboard is not installed (a trainer of the user's own)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return None
    from sweepctl.backends import hparams_writer

    return hparams_writer


def _session_start(logs: Path, name: str, params: dict[str, Any]) -> None:
    """A starting trial's HParams session: before its trainer runs, so the start sorts first."""
    writer = _hparams_writer()
    if writer is not None:
        with suppress(OSError):  # the dashboard's row; never a reason to fail the trial
            writer.write_session_start(logs, name, params)


def _session_end(logs: Path, state: str) -> None:
    writer = _hparams_writer()
    if writer is not None:
        with suppress(OSError):
            writer.write_session_end(logs, state)


def _set_aside(logs: Path) -> None:
    """Move an earlier attempt's logs into logs/attempt-<n>/, so that a new attempt starts in an empty folder."""
    if not logs.is_dir():
        return
    entries = [p for p in logs.iterdir() if not (p.is_dir() and _ATTEMPT.fullmatch(p.name))]
    if not entries:
        return
    numbers = [int(m.group(1)) for p in logs.iterdir() if (m := _ATTEMPT.fullmatch(p.name))]
    attempt = logs / f"attempt-{max(numbers, default=0) + 1}"
    attempt.mkdir()
    for entry in entries:
        entry.rename(attempt / entry.name)


@dataclass
class _Trainer:
    """A trainer this apply watches: one it started, or one it adopted (change is None)."""

    name: str
    uid: str
    params: dict[str, Any]
    process: dict[str, Any]
    change: Change | None  # None when adopted: not part of this plan
    started: float
    offset: int = 0
    loss: float | None = None
    pidfd: int | None = None  # readable once the process ended: the run loop wakes at once, not at its next poll

    def __post_init__(self) -> None:
        with suppress(OSError, AttributeError):  # gone already, or no pidfd_open (not Linux 5.3+): polled
            if processes.alive(self.process):  # checked right before: never a reused pid's
                self.pidfd = os.pidfd_open(int(self.process["pid"]))

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class _Run:
    """One apply's run loop: start queued trials `parallelism` at a time, watch them, record how they end."""

    def __init__(self, backend: LocalBackend, plan: Plan, progress: Progress, result: ApplyResult,
                 queue: list[tuple[Change, str]], adopted: dict[str, dict[str, Any]]) -> None:
        self.backend, self.sweep, self.progress, self.result = backend, plan.sweep, progress, result
        self.pending = queue
        self.finished = 0
        self.forks = backend.forks
        now = time.monotonic()
        self.running = {
            name: _Trainer(name=name, uid=rec["uid"], params=rec["params"], process=rec["process"], change=None,
                           started=now - max(0.0, time.time() - rec.get("started", time.time())))
            for name, rec in adopted.items()
        }

    def run(self) -> None:
        try:
            while self.pending or self.running:
                while self.pending and len(self.running) < self.backend.parallelism:
                    self._start(*self.pending.pop(0))
                for trainer in list(self.running.values()):
                    if processes.alive(trainer.process):
                        continue
                    del self.running[trainer.name]
                    trainer.close()
                    self._finish(trainer)
                for trainer in self.running.values():
                    _read_loss(self.backend.log_dir(self.sweep, trainer.name) / "stdout.log", trainer)
                rows = [RunningTrial(name=t.name, params=t.params, loss=t.loss, seconds=time.monotonic() - t.started)
                        for t in self.running.values()]
                self.progress.running(rows, finished=self.finished, queued=len(self.pending))
                if not (self.pending and len(self.running) < self.backend.parallelism):  # else: start the next now
                    _wait([t.pidfd for t in self.running.values() if t.pidfd is not None], 0.2)
        except BaseException:
            self._interrupt()
            raise

    def _start(self, change: Change, uid: str) -> None:
        """Start a queued trial, unless it was deleted meanwhile; recorded in the same state.lock section."""
        logs = self.backend.log_dir(self.sweep, change.name)
        own = "command" in (change.manifest or {}).get("spec", {})
        self.forks.start_server(trainer=not own)  # (again, if it died) before Ctrl-C is held and state.lock taken
        # Ctrl-C waits until the trainer is recorded: a trainer nobody knows of could run twice.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        pid = None
        try:
            with self.backend._state(self.sweep) as state:
                rec = state["trials"].get(change.name)
                if rec is None or rec["uid"] != uid:
                    self._removed(change, state)
                    return
                logs.mkdir(parents=True, exist_ok=True)
                _session_start(logs, change.name, rec["params"])
                env = environment(log_dir=str(logs.absolute()), trial=change.name, sweep=self.sweep)
                title = f"{self.sweep} {change.name}"
                if "command" in rec:
                    pid = self.forks.start_command(with_log_dir(rec["command"], str(logs.absolute())),
                                                   cwd=Path(rec["cwd"]), logs=logs, exit_file=logs / EXIT_FILE,
                                                   env=env, title=title)
                else:
                    args = [*rec["args"], "--log-dir", str(logs)]
                    pid = self.forks.start(args, logs=logs, exit_file=logs / EXIT_FILE, env=env, title=title)
                process = processes.identity(pid)
                rec.update(state="Running", process=process, started=time.time())
            # Recorded (state.json is written): only now may it train. Had the apply died
            # before this, the trainer would have exited without training.
            self.forks.release(pid)
            self.running[change.name] = _Trainer(name=change.name, uid=uid, params=dict(change.params),
                                                 process=process, change=change, started=time.monotonic())
        except BaseException:
            if pid is not None and change.name not in self.running:
                with suppress(SweepctlError, OSError):
                    self.forks.release(pid, train=False)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _finish(self, trainer: _Trainer) -> None:
        """Record how a trainer ended, or count its trial as removed when its record is gone."""
        name = trainer.name
        self.finished += 1
        with self.backend._state(self.sweep) as state:
            rec = state["trials"].get(name)
            if rec is None or rec["uid"] != trainer.uid:
                if trainer.change is not None:
                    self._removed(trainer.change, state)
                return
            final, code = self.backend._ended(self.sweep, name)
            if final == "Interrupted" and trainer.change is not None:  # its supervisor itself was killed
                final = "Failed"
            rec.update(state=final, exit_code=code, finished=time.time())
            rec.pop("process", None)
            rec.pop("owner", None)
        _session_end(self.backend.log_dir(self.sweep, name), final)
        change = trainer.change
        if change is None:
            return  # adopted: not this plan's change
        ended = f"trainer exited with {code}" if code is not None else "its supervisor was killed"
        error = None if final == "Succeeded" else (
            f"{ended}; see {self.backend.log_dir(self.sweep, name) / 'stdout.log'}")
        if error:
            self.result.errors[name] = error
        elif change.action is Action.REPLACE:
            self.result.changed += 1
        else:
            self.result.added += 1
        self.progress.done(change, error)

    def _removed(self, change: Change, state: dict[str, Any]) -> None:
        """A trial of this plan that another command (prune, destroy) deleted while it ran: not an error."""
        self.result.removed[change.name] = "pruned" if change.name in state["pruned"] else "deleted"
        self.progress.done(change, None)

    def _interrupt(self) -> None:
        """Ctrl-C (or any error): stop every trainer this apply watches, and record them Interrupted."""
        trainers = list(self.running.values())
        processes.stop((t.process for t in trainers), grace=5)
        for t in trainers:
            t.close()
        with self.backend._state(self.sweep) as state:
            for t in trainers:
                rec = state["trials"].get(t.name)
                if rec is not None and rec["uid"] == t.uid:
                    rec["state"] = "Interrupted"
                    rec.pop("process", None)
                    rec.pop("owner", None)


def _wait(pidfds: list[int], timeout: float) -> None:
    """Sleep until one of these processes ends, or `timeout` seconds: a short trial's next one starts at once."""
    if pidfds:
        select.select(pidfds, [], [], timeout)
    else:
        time.sleep(timeout)


def _stdout_run(path: Path, metrics: Collection[str], source: MetricSource, *, ended: bool) -> RunData:
    """A trial's metrics from the lines its trainer printed (metrics.stdout says the format)."""
    from sweepctl.metrics import stdout
    from sweepctl.metrics.events import RunData

    try:
        text: str | None = path.read_text(errors="replace")
    except OSError:
        text = None
    return RunData(scalars={m: stdout.series(text, m, source.pattern, ended=ended) for m in metrics})


def _read_loss(path: Path, trainer: _Trainer) -> None:
    """Keep the latest `loss=` value of a trainer's output, reading only what it wrote since."""
    try:
        with path.open("rb") as f:
            f.seek(trainer.offset)
            chunk = f.read()
    except OSError:
        return
    end = chunk.rfind(b"\n") + 1
    trainer.offset += end
    for match in _LOSS.finditer(chunk[:end]):
        trainer.loss = float(match.group(1))
