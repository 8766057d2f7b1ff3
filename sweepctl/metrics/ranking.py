"""Ranking trials by the spec's objective: pure data in, pure data out.

A trial's metric is one number taken from its series by a strategy (min, max
or latest); trials are ranked by it, best first, ties broken by name so that
the same data always gives the same ranking. A trial without a metric is never
ranked: it is kept by prune unless asked otherwise.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.manifests import FAILURE, TRIAL
from sweepctl.core.plan import PRUNED, LiveObject, Observed
from sweepctl.core.spec import Scalar

__all__ = [
    "Points",
    "Series",
    "TrialStatus",
    "SweepStatus",
    "PruneSelection",
    "default_strategy",
    "parse_keep",
    "build_status",
    "select_for_prune",
    "pruned_record",
]

_KEEP = re.compile(r"best=(\d+)")


class Points(Sequence[tuple[int, float]]):
    """(step, value) points in step order, each step once, kept as two packed arrays.

    A status ranks a thousand runs of a hundred points each: a tuple and two
    Python numbers per point cost more than the ranking. Reads as a sequence of
    (step, value) tuples; equal to any sequence of the same points (values
    compared bit for bit, so NaN equals NaN).
    """

    __slots__ = ("steps", "values")

    def __init__(self, steps: array, values: array) -> None:
        if steps.typecode != "q" or values.typecode != "d" or len(steps) != len(values):
            raise ValueError("Points needs int64 steps and as many float64 values")
        self.steps = steps
        self.values = values

    @classmethod
    def of(cls, pairs: Iterable[tuple[int, float]]) -> Points:
        """From (step, value) pairs already in step order."""
        pairs = list(pairs)
        return cls(array("q", [s for s, _ in pairs]), array("d", [v for _, v in pairs]))

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, i: int) -> tuple[int, float]: ...

    @overload
    def __getitem__(self, i: slice) -> Points: ...

    def __getitem__(self, i: int | slice) -> tuple[int, float] | Points:
        if isinstance(i, slice):
            return Points(self.steps[i], self.values[i])
        return self.steps[i], self.values[i]

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return zip(self.steps, self.values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Points):
            if not isinstance(other, Sequence):
                return False
            try:
                other = Points.of(other)
            except (TypeError, ValueError):
                return False
        return self.steps == other.steps and self.values.tobytes() == other.values.tobytes()

    def __hash__(self) -> int:
        return hash((self.steps.tobytes(), self.values.tobytes()))

    def __repr__(self) -> str:
        return repr(tuple(self))


@dataclass(frozen=True, kw_only=True)
class Series:
    """One scalar of one trial: (step, value) points in step order, or why there are none."""

    points: Sequence[tuple[int, float]] = ()
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class TrialStatus:
    """One trial as `status` shows it; `metric` is the value that ranks it (None: unscored)."""

    name: str
    params: Mapping[str, Scalar]
    state: str
    kind: str = ""
    uid: str = ""
    trial_id: str | None = None
    step: int | None = None
    latest: float | None = None
    best: float | None = None
    metric: float | None = None
    rank: int | None = None
    top: bool = False
    note: str | None = None
    failure: str | None = None  # a failed trial's exit status and last output lines (local backend)


@dataclass(frozen=True, kw_only=True)
class SweepStatus:
    """Every trial of a sweep, ranked best first, then unscored, then pruned."""

    sweep: str
    backend: str
    target: str
    metric: str
    goal: str
    strategy: str
    keep: int
    trials: tuple[TrialStatus, ...]
    observed: Observed = field(default_factory=Observed, repr=False)
    notes: tuple[str, ...] = ()  # how the metrics were read, when the user can make it better (Backend.notes)

    @property
    def live(self) -> list[TrialStatus]:
        return [t for t in self.trials if t.state != PRUNED]


@dataclass(frozen=True, kw_only=True)
class PruneSelection:
    """What `prune --keep best=K` does: keep the best K, delete the others."""

    status: SweepStatus
    keep: tuple[TrialStatus, ...]
    delete: tuple[TrialStatus, ...]
    unscored_kept: tuple[TrialStatus, ...]
    include_unscored: bool
    rule: str | None = None  # `prune --rule median`: the rule's settings, in words; notes say why each stops


def default_strategy(goal: str) -> str:
    """The best value of the series for the goal: min when minimizing, max when maximizing."""
    return "max" if goal == "maximize" else "min"


def parse_keep(text: str) -> int:
    """`best=K` with K >= 1, or a SweepctlError that says what is accepted."""
    match = _KEEP.fullmatch(text.strip())
    if not match or int(match.group(1)) < 1:
        raise SweepctlError(
            f"--keep {text}: expected best=K with K a whole number of at least 1",
            hint="for example --keep best=3 keeps the 3 best trials by the spec's objective",
        )
    return int(match.group(1))


def _summarise(series: Series, *, goal: str, strategy: str) -> dict[str, Any]:
    points = series.points
    if not points:
        return {"note": series.error or "no data yet"}
    values: Sequence[float] = points.values if isinstance(points, Points) else [v for _, v in points]
    finite = values
    if math.isnan(sum(values)):  # a NaN among them (or both infinities): leave NaNs out; sum runs in C
        finite = [v for v in values if not math.isnan(v)] or [math.nan]
    low, high = min(finite), max(finite)
    metric = {"min": low, "max": high, "latest": values[-1]}[strategy]
    return {"step": points[-1][0], "latest": values[-1], "best": low if goal == "minimize" else high,
            "metric": metric}


def _key(goal: str, metric: float, name: str) -> tuple[bool, float, str]:
    # NaN (a diverged trial) ranks last; ties are broken by name.
    value = metric if goal == "minimize" else -metric
    return (math.isnan(value), 0.0 if math.isnan(value) else value, name)


def build_status(*, sweep: str, backend: str, target: str, metric: str, goal: str, strategy: str, keep: int,
                 observed: Observed, series: Mapping[str, Series], notes: tuple[str, ...] = ()) -> SweepStatus:
    """Rank the live trials by `series` (trial name -> series of the objective); list pruned ones last."""
    rows = [(obj, _summarise(series.get(obj.name, Series(error="no logs")), goal=goal, strategy=strategy))
            for obj in observed.objects if TRIAL in obj.labels]
    scored = sorted((r for r in rows if "metric" in r[1]), key=lambda r: _key(goal, r[1]["metric"], r[0].name))
    unscored = sorted((r for r in rows if "metric" not in r[1]), key=lambda r: r[0].name)

    def trial(obj: LiveObject, summary: dict[str, Any], rank: int | None = None) -> TrialStatus:
        return TrialStatus(name=obj.name, params=obj.params, state=obj.state, kind=obj.kind, uid=obj.uid,
                           trial_id=obj.labels.get(TRIAL), rank=rank, top=rank is not None and rank <= keep,
                           failure=obj.annotations.get(FAILURE), **summary)

    ranked = [trial(obj, summary, rank) for rank, (obj, summary) in enumerate(scored, 1)]
    ranked += [trial(obj, summary) for obj, summary in unscored]
    live = {t.name for t in ranked}
    pruned = [
        TrialStatus(name=name, params=rec.get("params") or {}, state=PRUNED, trial_id=rec.get("id"),
                    step=rec.get("step"), latest=rec.get("latest"), best=rec.get("best"), metric=rec.get("metric"),
                    note=rec.get("reason"))
        for name, rec in sorted(observed.pruned.items())
        if name not in live
    ]
    return SweepStatus(sweep=sweep, backend=backend, target=target, metric=metric, goal=goal, strategy=strategy,
                       keep=keep, trials=(*ranked, *pruned), observed=observed, notes=notes)


def select_for_prune(status: SweepStatus, *, include_unscored: bool) -> PruneSelection:
    """The best `status.keep` scored trials stay; the rest go, and unscored ones only when asked."""
    live = status.live
    scored = [t for t in live if t.rank is not None]
    unscored = [t for t in live if t.rank is None]
    keep = scored[: status.keep]
    delete = scored[status.keep:] + (unscored if include_unscored else [])
    return PruneSelection(status=status, keep=tuple(keep), delete=tuple(delete),
                          unscored_kept=() if include_unscored else tuple(unscored),
                          include_unscored=include_unscored)


def pruned_record(t: TrialStatus, *, metric: str, at: str) -> dict[str, Any]:
    """What is kept of a pruned trial: enough for `status` to list it and `apply --revive` to name it."""
    def num(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else x

    return {"id": t.trial_id, "params": dict(t.params), "state": t.state, "step": t.step, "objective": metric,
            "metric": num(t.metric), "latest": num(t.latest), "best": num(t.best), "pruned_at": at}
