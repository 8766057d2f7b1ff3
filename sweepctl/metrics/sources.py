"""A sweep's status: observe it once, read every live trial's series from its backend, rank.

Where the series come from (event files here, or the sweep's TensorBoard) is
the backend's business: `Backend.read_runs`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

from sweepctl.core.manifests import TRIAL
from sweepctl.core.objective import EVENT_FILES, MetricSource
from sweepctl.core.plan import Observed
from sweepctl.core.search import FINISHED
from sweepctl.metrics.ranking import SweepStatus, build_status

if TYPE_CHECKING:
    from sweepctl.metrics.events import RunData

__all__ = ["RunSource", "sweep_status"]


class RunSource(Protocol):
    """What reading a sweep's status needs of a backend (backends.base.Backend has it all).

    Declared here, a layer below the backends, so that metrics never imports them.
    """

    name: str
    notes: tuple[str, ...]

    @property
    def target(self) -> str: ...

    def observe(self, sweep: str) -> Observed: ...

    def read_runs(self, sweep: str, names: Collection[str], tags: Collection[str], *, image_tag: str | None = None,
                  tensorboard_url: str | None = None, required: bool = True, source: MetricSource = EVENT_FILES,
                  explain: Collection[str] = ()) -> dict[str, RunData]: ...


def sweep_status(backend: RunSource, sweep: str, *, metric: str, goal: str, strategy: str, keep: int,
                 tensorboard_url: str | None = None, observed: Observed | None = None,
                 metrics_required: bool = True, source: MetricSource = EVENT_FILES) -> SweepStatus:
    """Observe the sweep, read its live trials' metric from `source`, and rank them.

    `status` shows states even while the sweep's TensorBoard starts
    (metrics_required=False); prune must not rank trials it cannot score. A
    finished trial without the metric says what its logs hold instead: it
    never looks merely pending."""
    observed = observed or backend.observe(sweep)
    names = [o.name for o in observed.objects if TRIAL in o.labels]
    ended = [o.name for o in observed.objects if TRIAL in o.labels and o.state in FINISHED]
    runs = backend.read_runs(sweep, names, [metric], tensorboard_url=tensorboard_url,
                             required=metrics_required, source=source, explain=ended) if names else {}
    return build_status(sweep=sweep, backend=backend.name, target=backend.target, metric=metric, goal=goal,
                        strategy=strategy, keep=keep, observed=observed,
                        series={n: r.scalars[metric] for n, r in runs.items()},
                        notes=backend.notes if names else ())
