"""The protocol every backend implements: render, observe, apply, read metrics.

Backends are the only code that does I/O on a sweep's trials. The core hands
them plain data (a Plan) and gets plain data back (Observed, ApplyResult).
Whatever differs between backends is a method here, so no caller asks which
backend it holds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sweepctl.core.objective import EVENT_FILES, MetricSource
from sweepctl.core.plan import Change, Observed, Plan
from sweepctl.core.spec import Scalar, Spec
from sweepctl.core.trials import Trial

if TYPE_CHECKING:
    from sweepctl.backends.locking import Holder
    from sweepctl.metrics.events import RunData

__all__ = ["Backend", "ApplyResult", "Progress", "RunningTrial"]


@dataclass(frozen=True, kw_only=True)
class RunningTrial:
    """A trial training right now (local backend), for live progress rows."""

    name: str
    params: Mapping[str, Scalar]
    loss: float | None
    seconds: float


class Progress(Protocol):
    """Where a backend reports progress; views implement it. Called from any thread."""

    def done(self, change: Change, error: str | None) -> None:
        """One change finished (error is None) or failed."""

    def running(self, trials: Sequence[RunningTrial], *, finished: int, queued: int) -> None:
        """The trials running now; only backends that run trials themselves call it."""


@dataclass(kw_only=True)
class ApplyResult:
    """What apply did. `errors` maps an object's name to why it was not done.

    `removed` maps a trial of the plan that another command deleted while
    this apply ran (a local `prune` beside a running apply) to "pruned" or
    "deleted": not done, and not an error.
    """

    added: int = 0
    changed: int = 0
    destroyed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    """Where a sweep's trials live."""

    name: str
    # What the last read_runs wants the user told, one line each (it read the
    # slow way, and which permission would make it fast); views show them.
    notes: tuple[str, ...]

    @property
    def target(self) -> str:
        """Which cluster or state folder this backend acts on, for plans and messages."""
        ...

    @property
    def namespace(self) -> str: ...

    def desired(self, spec: Spec, trial: Trial) -> dict[str, Any]:
        """The object that runs one trial here: a TFJob, or a local trial's record."""
        ...

    def support(self, spec: Spec) -> list[dict[str, Any]]:
        """The sweep's other objects: its TensorBoard on Kubernetes, none locally."""
        ...

    def observe(self, sweep: str) -> Observed:
        """Every object of the sweep, and its pruned trials."""
        ...

    def requirements(self, spec: Spec) -> list[str]:
        """What this target lacks that the spec's trials need (a missing runtime), each with what to do."""
        ...

    def specs(self, sweep: str, names: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        """The live specs of objects that `observe` listed without them (see plan.needs_spec)."""
        ...

    def read_runs(self, sweep: str, names: Collection[str], tags: Collection[str], *, image_tag: str | None = None,
                  tensorboard_url: str | None = None, required: bool = True, source: MetricSource = EVENT_FILES,
                  explain: Collection[str] = ()) -> dict[str, RunData]:
        """Each named trial's series of `tags` (metric names) and latest `image_tag` picture, by trial name.

        From the trials' event files (`<run subfolder>/<tag>`, metrics.names)
        or, with a stdout source, from the lines their trainers printed. With
        required=False, a TensorBoard that cannot be reached (still starting,
        say) leaves every trial without a metric instead of failing. A trial
        named in `explain` has ended: a metric it lacks says what was found
        instead (the runs and tags of its logs; the last line it printed)."""
        ...

    def local_logs(self, sweep: str) -> Path | None:
        """The folder on this machine with the sweep's logs, one sub-folder per trial; None on a cluster."""
        ...

    def tensorboard_proxy(self, sweep: str) -> str | None:
        """The sweep's own TensorBoard through the API server's service proxy; None without one."""
        ...

    def sweeps(self) -> list[str]:
        """The names of the sweeps this backend holds, for errors that must list them."""
        ...

    def lock(self, sweep: str, *, command: str, timeout: float) -> AbstractContextManager[Holder]:
        """Hold the sweep's lock (the commands that write: apply, prune, destroy), waiting up to `timeout` s.

        Another holder past the timeout is a LockHeld error that names it.
        """
        ...

    def unlock(self, sweep: str, lock_id: str) -> Holder | None:
        """Break the sweep's lock held under `lock_id`; refused for any other id."""
        ...

    def relock(self) -> None:
        """Hold the lock taken by `lock` again, if the last apply let go of it (a local apply does,
        once its trials are recorded); apply --wait calls it before planning each later round."""
        ...

    def record_hparams(self, spec: Spec, plan: Plan) -> None:
        """Have the sweep's TensorBoard show the plan's trials in its HParams dashboard (core.hparams).

        Called by apply before it applies a plan of `spec`; locally it writes the
        summaries, on Kubernetes it hands them to the sweep's TensorBoard pod.
        """
        ...

    def apply(self, plan: Plan, *, progress: Progress) -> ApplyResult:
        """Carry out the plan's changes; already-done changes count as done.

        The plan's `prune` records are stored before any delete, so a pruned
        trial never comes back; a revived trial's record is dropped.
        """
        ...
