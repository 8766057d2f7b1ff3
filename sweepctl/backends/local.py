"""The local backend: trials are trainer subprocesses on this machine.

State lives in a folder (./.sweepctl by default, as Terraform keeps
.terraform/), one sub-folder per sweep:

  sweeps/<sweep>/state.json        every trial: params, args, state, exit code;
                                   and every pruned trial: params, last metric
  sweeps/<sweep>/lock              held by the apply that is running trials
  sweeps/<sweep>/logs/<trial>/     the trial's TensorBoard logs and stdout.log

A trial is recorded as Queued before it starts and Running while it runs, so
an apply that is interrupted (Ctrl-C, or killed) leaves records that the next
plan shows as Interrupted and the next apply runs again. Only one apply of a
sweep runs at a time (the lock), so no trial ever runs twice at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sweepctl.backends.base import ApplyResult, Progress, RunningTrial
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.manifests import PARAMS, TEMPLATE_HASH, TRIAL
from sweepctl.core.plan import PRUNED, Action, Change, LiveObject, Observed, Plan

__all__ = ["LocalBackend", "TRAINER"]

# The trainer is this project's own package; never run through a shell.
TRAINER = [sys.executable, "-m", "model"]
_LOSS = re.compile(r"(?<![\w-])loss\s*=\s*([+-]?\d*\.?\d+(?:[eE][+-]?\d+)?)")


class LocalBackend:
    """Runs trials as subprocesses, at most `parallelism` at once."""

    name = "local"

    def __init__(self, *, state_dir: Path, parallelism: int | None = None, threads_per_trial: int = 1) -> None:
        self.state_dir = state_dir
        self.threads_per_trial = threads_per_trial
        self.parallelism = parallelism or max(1, (os.cpu_count() or 1) // threads_per_trial)

    @staticmethod
    def default_state_dir() -> Path:
        return Path(".sweepctl")

    @property
    def namespace(self) -> str:
        return ""

    @property
    def target(self) -> str:
        return f"state in {self.state_dir.resolve()}"

    def sweep_dir(self, sweep: str) -> Path:
        return self.state_dir / "sweeps" / sweep

    def log_dir(self, sweep: str, trial: str) -> Path:
        return self.sweep_dir(sweep) / "logs" / trial

    def sweeps(self) -> list[str]:
        """The sweeps that have state here, for errors that must say which exist."""
        return sorted(p.parent.name for p in (self.state_dir / "sweeps").glob("*/state.json"))

    # -- state ---------------------------------------------------------------------------

    def _read(self, sweep: str) -> dict[str, Any]:
        path = self.sweep_dir(sweep) / "state.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return {"trials": {}, "pruned": {}}
        except ValueError as err:
            raise SweepctlError(f"{path} is corrupt: {err}", hint="restore it, or remove the sweep's folder") from None

    def _write(self, sweep: str, state: dict[str, Any]) -> None:
        path = self.sweep_dir(sweep) / "state.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"state.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, path)  # atomic: a killed apply never leaves half a file

    @contextmanager
    def _locked(self, sweep: str, *, wait: bool = False) -> Iterator[bool]:
        """Yield True while holding the sweep's lock, False if another apply holds it."""
        path = self.sweep_dir(sweep) / "lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def observe(self, sweep: str) -> Observed:
        state = self._read(sweep)
        with self._locked(sweep) as free:
            objects = []
            for name, rec in state["trials"].items():
                trial_state = rec["state"]
                if free and trial_state in ("Queued", "Running"):
                    trial_state = "Interrupted"  # no apply holds the lock: nobody runs it
                objects.append(
                    LiveObject(
                        kind="Trial",
                        name=name,
                        uid=rec["uid"],
                        generation=1,
                        labels={TRIAL: rec["id"]},
                        annotations={TEMPLATE_HASH: rec["template_hash"], PARAMS: json.dumps(rec["params"])},
                        spec={"args": rec["args"]},
                        state=trial_state,
                        params=rec["params"],
                    )
                )
        return Observed(objects=tuple(objects), pruned=state.get("pruned", {}))

    # -- apply ---------------------------------------------------------------------------

    def apply(self, plan: Plan, *, progress: Progress) -> ApplyResult:
        with self._locked(plan.sweep) as held:
            if not held:
                raise SweepctlError(
                    f"another apply of sweep {plan.sweep} is running in {self.state_dir}",
                    hint="wait for it to finish; running one trial twice would waste its work"
                    + ("; or stop it (Ctrl-C), then prune: interrupted trials are pruned too" if plan.prune else ""),
                )
            return self._apply(plan, progress)

    def _apply(self, plan: Plan, progress: Progress) -> ApplyResult:
        result = ApplyResult()
        state = self._read(plan.sweep)
        trials: dict[str, Any] = state["trials"]
        pruned: dict[str, Any] = state.setdefault("pruned", {})
        if plan.destroy:
            pruned.clear()  # a destroyed sweep starts afresh
        if plan.prune:
            # Recorded before anything is deleted: a trial deleted but not recorded
            # would come back with the next apply.
            pruned.update({name: dict(rec) for name, rec in plan.prune.items()})
            self._write(plan.sweep, state)
        for change in plan.trials:
            if change.action in (Action.DELETE, Action.REPLACE):
                rec = trials.pop(change.name, None)
                if rec is not None:
                    _stop_orphan(rec, self.log_dir(plan.sweep, change.name))
                    if change.name not in plan.prune:  # a pruned trial's logs stay, as on a cluster's volume
                        _remove_tree(self.log_dir(plan.sweep, change.name))
                if change.action is Action.DELETE:
                    result.destroyed += 1
                    progress.done(change, None)
        queue = [c for c in plan.trials if c.action in (Action.CREATE, Action.REPLACE)]
        for change in queue:
            assert change.manifest is not None
            old = trials.get(change.name)
            if old is not None:  # interrupted: stop what may still run, start clean
                _stop_orphan(old, self.log_dir(plan.sweep, change.name))
            _remove_tree(self.log_dir(plan.sweep, change.name))
            if change.state == PRUNED:
                pruned.pop(change.name, None)  # revived
            meta = change.manifest["metadata"]
            trials[change.name] = {
                "id": change.trial_id,
                "uid": f"{change.trial_id}-{time.time_ns()}",
                "params": dict(change.params),
                "args": list(change.manifest["spec"]["args"]),
                "template_hash": meta["annotations"][TEMPLATE_HASH],
                "state": "Queued",
            }
        self._write(plan.sweep, state)
        if queue:
            self._run(plan, queue, state, progress, result)
        return result

    def _run(self, plan: Plan, queue: list[Change], state: dict[str, Any], progress: Progress,
             result: ApplyResult) -> None:
        """Run the queue, `parallelism` at a time, reporting live rows; Ctrl-C stops cleanly."""
        lock = threading.Lock()
        running: dict[str, tuple[subprocess.Popen[bytes], float, Change]] = {}
        losses: dict[str, float | None] = {}
        pending = list(queue)
        finished = 0
        trials = state["trials"]

        def start(change: Change) -> None:
            logs = self.log_dir(plan.sweep, change.name)
            logs.mkdir(parents=True, exist_ok=True)
            argv = [*TRAINER, *trials[change.name]["args"], "--log-dir", str(logs)]
            out = (logs / "stdout.log").open("wb")
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            rec = trials[change.name]
            rec.update(state="Running", pid=proc.pid, started=time.time(), argv=argv)
            running[change.name] = (proc, time.monotonic(), change)
            losses[change.name] = None
            threading.Thread(target=_pump, args=(proc, out, losses, change.name, lock), daemon=True).start()

        try:
            while pending or running:
                while pending and len(running) < self.parallelism:
                    start(pending.pop(0))
                    self._write(plan.sweep, state)
                for name, (proc, _, change) in list(running.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    del running[name]
                    finished += 1
                    rec = trials[name]
                    rec.update(state="Succeeded" if code == 0 else "Failed", exit_code=code, finished=time.time())
                    rec.pop("pid", None)
                    self._write(plan.sweep, state)
                    error = None if code == 0 else (
                        f"trainer exited with {code}; see {self.log_dir(plan.sweep, name) / 'stdout.log'}"
                    )
                    if error:
                        result.errors[name] = error
                    elif change.action is Action.REPLACE:
                        result.changed += 1
                    else:
                        result.added += 1
                    progress.done(change, error)
                with lock:
                    rows = [
                        RunningTrial(name=n, params=c.params, loss=losses.get(n), seconds=time.monotonic() - t0)
                        for n, (_, t0, c) in running.items()
                    ]
                progress.running(rows, finished=finished, queued=len(pending))
                time.sleep(0.2)
        except BaseException:
            # Ctrl-C reaches the trainers too (same process group); give them a moment.
            for proc, _, _ in running.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 5
            for name, (proc, _, _) in running.items():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                trials[name].update(state="Interrupted")
                trials[name].pop("pid", None)
            self._write(plan.sweep, state)
            raise


def _pump(proc: subprocess.Popen[bytes], out: Any, losses: dict[str, float | None], name: str,
          lock: threading.Lock) -> None:
    """Copy a trainer's output to its stdout.log, keeping its latest `loss=` value."""
    assert proc.stdout is not None
    with out:
        for line in proc.stdout:
            out.write(line)
            out.flush()
            match = _LOSS.search(line.decode(errors="replace"))
            if match:
                with lock:
                    losses[name] = float(match.group(1))


def _stop_orphan(rec: dict[str, Any], logs: Path) -> None:
    """A trainer left running by a killed apply: stop it before its trial runs again."""
    pid = rec.get("pid")
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return
    if str(logs) in cmdline:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
