"""A metric from the lines a trainer prints (`objective.source: stdout`).

The trainer's command is never wrapped or redirected (Katib's is, and users
lose their logs, kubeflow/katib#1318): locally sweepctl already keeps each
trial's `stdout.log`; on Kubernetes the trial pod's log is read through the API.

The format, exactly:
- A line is what a terminal shows: text between newlines, after its last
  carriage return (progress bars redraw with `\\r`).
- Each `name=value` or `name: value` pair on a line is read (DEFAULT): a name
  starts with a letter or `_` and holds letters, digits, `_`, `.`, `-`, `/`,
  and is not preceded by one of those; a value is a decimal number
  (`0.91`, `-1e-3`, `.5`) or nan/inf. So `accuracy=0.91`,
  `epoch 3: accuracy=0.91 loss=0.2` and Keras's `- val_accuracy: 0.9100` all
  give their pairs; `val_accuracy` is never `accuracy`.
- A line matches when one of its pairs has the metric's exact name; the last
  such pair on the line is its value.
- Its step is the line's `step` pair (else its `epoch` pair) when that is a
  whole number, else the count of matching lines so far (1, 2, ...). A step
  given twice keeps the later value.
- `objective.pattern` replaces DEFAULT: a regular expression whose `name` and
  `value` groups give the pairs (found anywhere in each line), with an
  optional `step` group.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from sweepctl.metrics.ranking import Points, Series

__all__ = ["DEFAULT", "parse", "series"]

DEFAULT = (r"(?<![\w./-])(?P<name>[A-Za-z_][\w./-]*)\s*[=:]\s*"
           r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|NaN|inf|Inf|infinity|Infinity))"
           r"(?![\w])")
_STEPS = ("step", "epoch")
_SHOWN = 120  # characters of the last line a note quotes


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse(text: str, metric: str, pattern: str | None = None) -> tuple[Points, str]:
    """The metric's (step, value) points in `text`, and its last non-blank line (for a note)."""
    rx = _compiled(pattern or DEFAULT)
    has_step = "step" in rx.groupindex
    points: dict[int, float] = {}
    count = 0
    last = ""
    for raw in text.split("\n"):
        line = raw.rsplit("\r", 1)[-1]
        if line.strip():
            last = line
        if metric not in line:  # cheap: most lines name other things
            continue
        value = None
        steps: dict[str, str] = {}
        for m in rx.finditer(line):
            name = m.group("name")
            if name == metric:
                value = _number(m.group("value")) if m.group("value") is not None else None
                if value is None:
                    continue
                if has_step and m.group("step") is not None:
                    steps.setdefault("", m.group("step"))
            elif name in _STEPS:
                steps.setdefault(name, m.group("value"))
        if value is None:
            continue
        count += 1
        step = count
        for key in ("", *_STEPS):
            given = _number(steps[key]) if key in steps else None
            if given is not None and math.isfinite(given) and given.is_integer():
                step = int(given)
                break
        points[step] = value
    return Points.of(sorted(points.items())), last.strip()


def series(text: str | None, metric: str, pattern: str | None = None, *, ended: bool = False) -> Series:
    """The metric's series from a trainer's output, or why there is none (no output; no line matched).

    `ended`: the trial has finished, so what is missing will never come."""
    if text is None:
        return Series(error="no output" if ended else "no output yet")
    points, last = parse(text, metric, pattern)
    if points:
        return Series(points=points)
    if not last:
        return Series(error="no output" if ended else "no output yet")
    shown = last if len(last) <= _SHOWN else last[:_SHOWN - 3] + "..."
    return Series(error=f"no line matched '{metric}'; last line: {shown}")
