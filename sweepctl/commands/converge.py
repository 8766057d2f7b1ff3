"""`sweepctl apply SPEC --wait`: keep the sweep converging until its budget is spent and every trial finished.

The loop is plan, apply, wait, again: each round plans afresh from what the
sweep has (so TPE proposes from the latest history), and applies the plan
without asking. Beside it, a watcher applies the spec's early-stopping rule and
reports progress. Nothing is kept in memory that the sweep does not hold, so an
interrupted run is continued by running the command again.

On the local backend an apply runs its trials to the end, so the next round's
proposals wait for the round's trials (those stopped early end early); on
Kubernetes an apply only creates TFJobs, and a round starts whenever a trial
finishes or is stopped.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sweepctl.backends.base import Backend, RunningTrial
from sweepctl.commands.common import Access, backend_for, make_plan, read_spec
from sweepctl.commands.stopping import apply_rule
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.manifests import TRIAL
from sweepctl.core.plan import PRUNED, Action, Change, Plan
from sweepctl.core.search import FINISHED
from sweepctl.core.spec import Spec
from sweepctl.metrics import events
from sweepctl.metrics.ranking import SweepStatus, default_strategy
from sweepctl.metrics.sources import sweep_status
from sweepctl.views import View
from sweepctl.workspace import remember_sweep

__all__ = ["run"]

_STUCK_ROUNDS = 3  # rounds that planned the same changes and made no progress before giving up
_SETTLE_FOR = 30.0  # seconds the last status waits for succeeded trials' scores (TensorBoard reloads every 5 s)
_UNREADABLE_FOR = 300.0  # seconds a round waits for a history it cannot read (TensorBoard starting)
_TICK = 0.2  # seconds between looks at local trials' event files, for the early-stopping rule


class _Quiet:
    """Progress of the rounds' applies: the watcher's lines say what matters."""

    def done(self, change: Change, error: str | None) -> None:
        pass

    def running(self, trials: Sequence[RunningTrial], *, finished: int, queued: int) -> None:
        pass


def run(view: View, *, spec_path: Path, access: Access, auto_approve: bool, max_trials: int, interval: float,
        tensorboard_url: str | None = None) -> int:
    spec = read_spec(spec_path, max_trials=max_trials)
    backend = backend_for(spec, access)
    # Held throughout on Kubernetes; a local apply lets go of it once its trials are recorded.
    with backend.lock(spec.name, command="apply", timeout=access.lock_timeout):
        return _run(view, spec, backend, access, auto_approve=auto_approve, interval=interval,
                    tensorboard_url=tensorboard_url)


def _run(view: View, spec: Spec, backend: Backend, access: Access, *, auto_approve: bool, interval: float,
         tensorboard_url: str | None) -> int:
    plan = make_plan(spec, backend, tensorboard_url=tensorboard_url)
    view.plan(plan)
    plan.check_requirements()
    if plan.has_changes and not auto_approve and not view.confirm(
            plan, "Do you want to perform these actions, and keep applying the next ones until the sweep is done?"):
        raise SweepctlError("Apply cancelled.", hint="nothing was changed")
    watcher = _Watcher(spec, backend_for(spec, access), view, interval, tensorboard_url)
    watcher.start()
    try:
        _converge(spec, backend, plan, interval, view, tensorboard_url)
    finally:
        watcher.stop()
    status = _settled_status(spec, backend, interval, tensorboard_url)
    view.status(status)
    view.message(f"Sweep {spec.name} is done: {_summary(spec, status)}.")
    return 0


def _converge(spec: Spec, backend: Backend, plan: Plan, interval: float, view: View,
              tensorboard_url: str | None) -> None:
    """Apply plans until one has no changes and no trial is unfinished.

    Each round plans while holding the sweep's lock (a local apply lets go of
    it while trainers run, so prune and destroy may act meanwhile). A trial
    that an earlier round ran and that is gone without a pruned record was
    deleted by another command (destroy): the loop stops rather than undo it.
    """
    stuck, last = 0, None
    ran: set[str] = set()
    while True:
        backend.record_hparams(spec, plan)  # every round: new trials, and the states of finished ones
        errors: dict[str, str] = {}
        if plan.has_changes:
            changes = sorted((c.action.value, c.name) for c in plan.trials if c.action.value != " ")
            plan.check_requirements()
            remember_sweep(plan)
            result = backend.apply(plan, progress=_Quiet())
            errors = result.errors
            progressed = result.added or result.changed or result.destroyed or result.removed
            stuck = 0 if progressed or changes != last else stuck + 1
            if stuck >= _STUCK_ROUNDS:
                raise SweepctlError(f"apply made no progress in {_STUCK_ROUNDS} rounds: "
                                    + "; ".join(f"{k}: {v}" for k, v in sorted(result.errors.items())[:3]),
                                    hint="fix the errors, then run the same command again: it continues")
            last = changes
        elif not any(o.state not in FINISHED for o in backend.observe(spec.name).objects if TRIAL in o.labels):
            return
        else:
            time.sleep(interval)
        ran |= {c.name for c in plan.trials
                if c.action is not Action.DELETE and c.state != PRUNED and c.name not in errors}
        backend.relock()
        plan = _next_plan(spec, backend, interval, view, tensorboard_url)
        gone = sorted(c.name for c in plan.trials if c.action is Action.CREATE and not c.state and c.name in ran)
        if gone:
            trials = "1 trial" if len(gone) == 1 else f"{len(gone)} trials"
            raise SweepctlError(
                f"{trials} of sweep {spec.name} that this apply ran {'was' if len(gone) == 1 else 'were'} deleted "
                f"by another command meanwhile ({', '.join(gone[:3])}{', ...' if len(gone) > 3 else ''}); it stops "
                "rather than train them again", hint="run `sweepctl apply` again if they should come back")


def _next_plan(spec: Spec, backend: Backend, interval: float, view: View, tensorboard_url: str | None) -> Plan:
    """The next round's plan; a history that cannot be read yet (a TensorBoard still starting) is waited for."""
    deadline = time.monotonic() + _UNREADABLE_FOR
    while True:
        try:
            return make_plan(spec, backend, tensorboard_url=tensorboard_url)
        except SweepctlError as err:
            if time.monotonic() > deadline:
                raise
            view.message(f"{time.strftime('%H:%M:%S')} cannot plan yet, trying again: {err}")
            time.sleep(interval)


def _status(spec: Spec, backend: Backend, tensorboard_url: str | None) -> SweepStatus:
    # Progress only: states still show while a TensorBoard starts (proposals and stops do need the metrics).
    return sweep_status(backend, spec.name, metric=spec.metric, goal=spec.goal, strategy=default_strategy(spec.goal),
                        keep=3, tensorboard_url=tensorboard_url, metrics_required=False,
                        source=spec.metric_source)


def _settled_status(spec: Spec, backend: Backend, interval: float, tensorboard_url: str | None) -> SweepStatus:
    """The last status once every succeeded trial's score is readable, or after _SETTLE_FOR seconds.

    A sweep's TensorBoard rereads its runs every few seconds, so a trial that just
    ended may not show its last point yet; a `prune` run right after the apply (a
    CI step, the in-cluster Job) would then keep it as unscored. Local event files
    are read directly: nothing to wait for.
    """
    deadline = time.monotonic() + (_SETTLE_FOR if backend.name != "local" else 0.0)
    while True:
        status = _status(spec, backend, tensorboard_url)
        if time.monotonic() > deadline or all(t.metric is not None for t in status.live if t.state == "Succeeded"):
            return status
        time.sleep(min(interval, 2.0))


def _summary(spec: Spec, status: SweepStatus) -> str:
    """Best so far, trials finished, stopped and running, and what is left of the budget."""
    ranked = [t for t in status.trials if t.rank == 1]
    best = (f"best {status.metric} {ranked[0].metric:.4g} ({ranked[0].name})" if ranked
            else f"no {status.metric} yet")
    live = status.live
    finished = sum(t.state in FINISHED for t in live)
    running = len(live) - finished
    stopped = len(status.trials) - len(live)
    grid = math.prod(len(hp.values) for hp in spec.hyper_params)
    budget = spec.search.trials if spec.search.algorithm != "grid" else grid
    left = max(0, (budget or 0) - len(status.trials))
    return (f"{best}; {finished} finished, {stopped} stopped, {running} running or queued, "
            f"{left} left in the budget of {budget}")


class _Watcher:
    """Beside the rounds: stop trials by the spec's rule, and say how the sweep stands when that changes.

    Where the sweep's logs are on this machine, the rule judges as soon as a
    trial logs a new point: the unfinished trials' event files are looked at
    every _TICK seconds (a few stat calls), and read only when they changed. A
    trial of seconds that trains on until the next --interval loses much of
    what stopping it saves. Elsewhere (a cluster's TensorBoard) it judges every
    --interval. Progress lines come at most every --interval.
    """

    def __init__(self, spec: Spec, backend: Backend, view: View, interval: float, tensorboard_url: str | None):
        self.spec, self.backend, self.view = spec, backend, view
        self.interval, self.tensorboard_url = interval, tensorboard_url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweepctl-watcher", daemon=True)
        self._said = ""
        self._logs = backend.local_logs(spec.name) if spec.early_stopping is not None else None
        self._unfinished: list[str] = []  # as the last check found them: the runs whose files are looked at

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        tick = min(_TICK, self.interval) if self._logs is not None else self.interval
        due = time.monotonic()  # the next progress line; the first check learns which trials are unfinished
        seen = self._seen()
        while not self._stop.wait(tick):
            now, latest = time.monotonic(), self._seen()
            if now < due and latest == seen:
                continue
            seen = latest  # taken before the check: what a trainer logs meanwhile triggers the next one
            try:
                self.check(progress=now >= due)
            except SweepctlError as err:
                self.view.message(f"(watcher: {err})")
            except Exception as err:  # noqa: BLE001 - a failed check is retried next time, never fatal
                self.view.message(f"(watcher: {err.__class__.__name__}: {err})")
            if now >= due:
                due = now + self.interval

    def _seen(self) -> tuple[object, ...] | None:
        """The state of the unfinished trials' event files, and of the folder new trials' logs appear in."""
        if self._logs is None:
            return None
        try:
            folder = self._logs.stat().st_mtime_ns
        except OSError:
            folder = None
        return folder, events.signature(self._logs / name for name in self._unfinished)

    def check(self, *, progress: bool = True) -> None:
        """Judge every unfinished trial by the rule and stop those it stops; say how the sweep stands if asked
        (or if a trial was stopped) and that changed."""
        spec, backend = self.spec, self.backend
        observed = backend.observe(spec.name)
        stopped = False
        if spec.early_stopping is not None:
            outcome = apply_rule(sweep=spec.name, backend=backend, spec=spec, metric=spec.metric, goal=spec.goal,
                                 rule=spec.early_stopping, observed=observed, tensorboard_url=self.tensorboard_url)
            self._unfinished = [t.name for t in outcome.status.live if t.state not in FINISHED]
            if outcome.plan is not None:
                backend.apply(outcome.plan, progress=_Quiet())
                stopped = True
                for stop in outcome.stops:
                    self.view.message(f"{time.strftime('%H:%M:%S')} {stop.name}: {stop.reason(spec.metric)}")
        if not (progress or stopped):
            return
        summary = _summary(spec, _status(spec, backend, self.tensorboard_url))
        if summary != self._said:
            self._said = summary
            self.view.message(f"{time.strftime('%H:%M:%S')} {summary}")
