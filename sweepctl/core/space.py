"""The search space: ranges beside lists, the search settings, and the checks they need.

Pure. spec.py calls `space_diagnostics` on the parsed YAML and builds these
values; `search.py` samples from them. A sampled number is rounded to
`SIGNIFICANT_DIGITS` significant digits, so that a trial's name stays short and
its identity (by value) stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sweepctl.core.diagnostics import Diagnostic
from sweepctl.core.searchschema import DEFAULT_PARALLEL, DEFAULT_STARTUP_TRIALS

__all__ = [
    "SIGNIFICANT_DIGITS",
    "Range",
    "Search",
    "EarlyStopping",
    "round_value",
    "space_diagnostics",
    "parse_range",
    "parse_search",
    "parse_early_stopping",
]

SIGNIFICANT_DIGITS = 4


@dataclass(frozen=True, kw_only=True)
class Range:
    """Numbers from `low` to `high`, both included; `log` samples evenly in log space."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not float(value).is_integer():
            return False
        return self.low <= value <= self.high

    def at(self, u: float) -> int | float:
        """The point at fraction u (0 <= u < 1) of the range, rounded as every sampled value is."""
        if self.integer:
            low, high = int(self.low), int(self.high)
            if self.log:
                value = math.floor(math.exp(math.log(low) + u * (math.log(high + 1) - math.log(low))))
            else:
                value = low + math.floor(u * (high - low + 1))
            return min(max(value, low), high)
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return round_value(value, self)

    def describe(self) -> dict[str, Any]:
        return {"min": self.low, "max": self.high, "scale": "log" if self.log else "linear",
                "type": "int" if self.integer else "float"}


@dataclass(frozen=True, kw_only=True)
class Search:
    """How a spec's trials are chosen (see searchschema.SEARCH)."""

    algorithm: str = "grid"
    trials: int | None = None
    parallel: int = DEFAULT_PARALLEL
    seed: int = 0
    startup_trials: int = DEFAULT_STARTUP_TRIALS

    @property
    def adaptive(self) -> bool:
        """Whether proposals depend on the sweep's history (its trials and their objective)."""
        return self.algorithm == "tpe"


@dataclass(frozen=True, kw_only=True)
class EarlyStopping:
    """The median rule's settings (see searchschema.EARLY_STOPPING)."""

    rule: str = "median"
    after_step: int = 0
    min_trials: int = 3


def round_value(value: float, space: Range) -> float:
    """`value` to SIGNIFICANT_DIGITS significant digits, kept inside the range."""
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS - 1}e}")
    rounded = min(max(rounded, space.low), space.high)
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def parse_range(data: Mapping[str, Any]) -> Range:
    return Range(low=data["min"], high=data["max"], log=data.get("scale", "linear") == "log",
                 integer=data.get("type", "float") == "int")


def parse_search(data: Mapping[str, Any]) -> Search:
    return Search(algorithm=data["algorithm"], trials=data["trials"], parallel=data["parallel"], seed=data["seed"],
                  startup_trials=data["startupTrials"])


def parse_early_stopping(data: Mapping[str, Any] | None) -> EarlyStopping | None:
    if data is None:
        return None
    return EarlyStopping(rule=data["rule"], after_step=data["afterStep"], min_trials=data["minTrials"])


# Where a diagnostic points: at(path, message, hint), the path into the YAML document.
At = Callable[[tuple[str | int, ...], str, str | None], Diagnostic]


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def space_diagnostics(data: Mapping[str, Any], at: At, *, max_trials: int) -> Iterator[Diagnostic]:
    """What the schema cannot say about ranges and search settings; data passed the schema's type checks."""
    search = data.get("search") or {}
    algorithm = search.get("algorithm", "grid")
    grid = data["hyperParamValues"]
    ranges = [name for name, v in grid.items() if isinstance(v, dict)]
    for name in ranges:
        spec = grid[name]
        low, high = spec.get("min"), spec.get("max")
        if not (_number(low) and _number(high)):
            continue  # reported by the schema
        path = ("hyperParamValues", name)
        if algorithm == "grid":
            yield at(path, f"hyperParamValues.{name} is a range, and a grid needs a list of values",
                     "add 'search: {algorithm: random, trials: N}' (or tpe) to sample from ranges, "
                     "or list the values to try")
        if not all(map(math.isfinite, (low, high))):
            yield at(path, f"hyperParamValues.{name}: min and max must be finite numbers", None)
        elif low >= high:
            yield at(path, f"hyperParamValues.{name}: min ({low}) must be less than max ({high})",
                     "swap them, or list the single value instead: [" + str(low) + "]")
        elif spec.get("scale") == "log" and low <= 0:
            yield at(path, f"hyperParamValues.{name}: a log scale needs min > 0, got {low}",
                     "start the range above zero, e.g. min: 1.0e-5")
        if spec.get("type") == "int" and not all(float(x).is_integer() for x in (low, high) if math.isfinite(x)):
            yield at(path, f"hyperParamValues.{name}: an int range needs whole-number min and max, "
                     f"got {low} and {high}", "write e.g. {min: 3, max: 9, type: int}")
    if algorithm in ("random", "tpe"):
        trials = search.get("trials")
        if trials is None:
            yield at(("search",), f"search.trials is required with algorithm {algorithm}: it is the budget",
                     "add e.g. 'trials: 24' under search")
        elif _number(trials) and trials > max_trials:
            yield at(("search", "trials"), f"search.trials is {trials:,}, more than the limit of {max_trials:,}",
                     f"raise the limit with --max-trials {trials}, or lower the budget")
        if algorithm == "random" and not ranges and isinstance(trials, int):
            size = math.prod(len(v) for v in grid.values())
            if trials > size:
                yield at(("search", "trials"), f"search.trials is {trials}, but the lists allow only {size} "
                         "distinct trials", f"lower trials to {size} (algorithm grid tries them all), or use ranges")
    elif algorithm == "grid":
        for key in ("trials", "parallel", "startupTrials"):
            if search.get(key) is not None:
                yield at(("search", key), f"search.{key} has no meaning for a grid: it tries every combination",
                         "remove it, or set search.algorithm to random or tpe")
