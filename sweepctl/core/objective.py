"""Where a trial's objective metric comes from: its event files (the default) or its own stdout lines.

Pure data, from the spec's `objective.source` and `objective.pattern`; the
backends read it (`Backend.read_runs(source=...)`), `metrics.stdout` parses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["EVENTS", "STDOUT", "MetricSource", "EVENT_FILES", "pattern_problem"]

EVENTS = "events"
STDOUT = "stdout"


@dataclass(frozen=True, kw_only=True)
class MetricSource:
    """`events`: TensorBoard event files under the trial's log folder; `stdout`: lines the trainer prints.

    `pattern` (stdout only) is a regular expression with `name` and `value`
    groups, for lines the default `name=value` / `name: value` reading misses.
    """

    kind: str = EVENTS
    pattern: str | None = None


EVENT_FILES = MetricSource()  # the default: what the tf-paint trainer writes


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot read metric lines (it does not compile, or lacks a group), else None."""
    try:
        groups = re.compile(pattern).groupindex
    except re.error as err:
        return f"objective.pattern is not a regular expression: {err}"
    missing = [g for g in ("name", "value") if g not in groups]
    if missing:
        return "objective.pattern has no " + " and no ".join(f"(?P<{g}>...) group" for g in missing)
    return None
