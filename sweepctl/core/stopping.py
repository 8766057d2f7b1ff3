"""Early stopping by a true median rule: pure curves in, the trials to stop (and why) out.

A trial is stopped at the first logged step s (s >= afterStep) where its best
value by step s is worse than the median of the other trials' values at step s,
counting only the trials that reached step s, and only once at least minTrials
of them did. A trial's value at step s is the last one it logged at or before
s. Unlike Katib's "median stop" (the mean of early averages, checked once at
one step), every step is judged, against the median.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sweepctl.core.space import EarlyStopping

__all__ = ["Stop", "median_stops"]

Curve = Sequence[tuple[int, float]]


@dataclass(frozen=True, kw_only=True)
class Stop:
    """One trial to stop: at which step, its best value by then, and the median it was worse than."""

    name: str
    step: int
    best: float
    median: float
    others: int

    def reason(self, metric: str) -> str:
        return (f"stopped by the median rule at step {self.step}: best {metric} {self.best:.4g} worse than the "
                f"median {self.median:.4g} of {self.others} other trials")


def _value_at(curve: Curve, steps: list[int], step: int) -> float | None:
    i = bisect.bisect_right(steps, step)
    return curve[i - 1][1] if i else None


def median_stops(curves: Mapping[str, Curve], candidates: Collection[str], *, goal: str,
                 rule: EarlyStopping) -> list[Stop]:
    """The candidates (unfinished trials) that the rule stops, by name; `curves` holds every trial's series."""
    worst = math.inf if goal == "minimize" else -math.inf

    def clean(v: float) -> float:
        return worst if math.isnan(v) else v  # a diverged value is the worst there is

    def worse(a: float, b: float) -> bool:
        return a > b if goal == "minimize" else a < b

    steps = {name: [s for s, _ in curve] for name, curve in curves.items()}
    stops = []
    for name in sorted(candidates):
        best: float | None = None
        for step, value in curves.get(name, ()):
            value = clean(value)
            best = value if best is None or worse(best, value) else best
            if step < rule.after_step:
                continue
            others = [
                clean(v) for other, curve in curves.items()
                if other != name and curve and curve[-1][0] >= step
                and (v := _value_at(curve, steps[other], step)) is not None
            ]
            if len(others) < rule.min_trials:
                continue
            median = statistics.median(others)
            if worse(best, median):
                stops.append(Stop(name=name, step=step, best=best, median=median, others=len(others)))
                break
    return stops
