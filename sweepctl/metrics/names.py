"""What a metric name addresses: a run subfolder of the trial's log folder, and a tag in it.

`objective.metric: validation/epoch_accuracy` is the tag `epoch_accuracy` in
the event files of the trial's `validation/` folder (Keras's callback); a
plain `loss` is a tag of the trial's own folder. Tags may hold slashes too
(PyTorch users write `Loss/val`), so a name is read as the LONGEST prefix
that names an existing run (a folder holding event files, as TensorBoard
calls it), possibly none, followed by the tag. Matching is exact: no tag
prefix, no folder suffix, no merging of folders (Katib's collector merges
Keras's train and validation series, kubeflow/katib#1188).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

__all__ = ["candidates", "safe", "split", "found_note"]


@lru_cache(maxsize=64)
def candidates(metric: str) -> tuple[tuple[str, str], ...]:
    """Every (run, tag) reading of `metric`, longest run first, ending with ("", metric)."""
    cuts = [i for i, ch in enumerate(metric) if ch == "/" and 0 < i < len(metric) - 1]
    return (*((metric[:i], metric[i + 1:]) for i in reversed(cuts)), ("", metric))


@lru_cache(maxsize=64)
def _runs_to_try(metric: str) -> tuple[tuple[str, str], ...]:
    """The readings with a run that stays inside the trial's folder, longest first (asked once per trial)."""
    return tuple((run, tag) for run, tag in candidates(metric)[:-1] if safe(run))


def safe(run: str) -> bool:
    """Whether `run` stays inside the trial's folder: no empty, `.` or `..` part."""
    return all(part not in ("", ".", "..") for part in run.split("/"))


def split(metric: str, is_run: Callable[[str], bool]) -> tuple[str, str]:
    """(run, tag) of `metric`: the longest prefix that `is_run` accepts, else the trial's own folder."""
    for run, tag in _runs_to_try(metric):
        if is_run(run):
            return run, tag
    return "", metric


def found_note(metric: str, found: Mapping[str, Iterable[str]], *, limit: int = 8) -> str:
    """`no 'validation/epoch_acc'; found validation/epoch_accuracy, ...`: what a run's logs hold instead.

    `found` maps each run ("" for the trial's own folder) to its scalar tags.
    """
    readings = candidates(metric)
    near = {run for run, _ in readings[:-1] if run in found} or {""}  # the folder the name reads as
    wanted = {tag for _, tag in readings}

    def rank(run: str, tag: str) -> tuple[int, str, str]:
        # First what the name could address (its folder), then the same tag in other folders, then the rest.
        return (0 if run in near else 1 if tag in wanted else 2, run, tag)

    names = [f"{run}/{tag}" if run else tag
             for run, tag in sorted(((r, t) for r, tags in found.items() for t in tags), key=lambda rt: rank(*rt))]
    if not names:
        return f"no '{metric}'; found no scalars in its logs"
    shown = ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
    return f"no '{metric}'; found {shown}"
