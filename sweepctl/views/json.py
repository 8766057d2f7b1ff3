"""Machine-readable views: the same models as the human view, as one JSON document on stdout."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sweepctl.backends.base import ApplyResult, Progress, RunningTrial
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import Action, Change, Plan

if TYPE_CHECKING:
    from sweepctl.metrics.ranking import PruneSelection, SweepStatus, TrialStatus
    from sweepctl.metrics.sheet import Sheet

__all__ = ["JsonView", "plan_to_json"]


def _trial(change: Change) -> dict[str, Any]:
    out: dict[str, Any] = {"name": change.name, "id": change.trial_id, "params": dict(change.params)}
    if change.state:
        out["state"] = change.state
    return out


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as `plan -o json` prints it; the human view renders the same fields."""
    return {
        "sweep": plan.sweep,
        "backend": plan.backend,
        "namespace": plan.namespace,
        "target": plan.target,
        "add": [_trial(c) for c in plan.add],
        "delete": [_trial(c) for c in plan.delete],
        "replace": [_trial(c) for c in plan.replace],
        "unchanged": [_trial(c) for c in plan.unchanged],
        "drift": [
            {**_trial(c), "diff": list(c.drift), "action": "replace" if c.action is Action.REPLACE else "none"}
            for c in plan.drifted
        ],
        "pruned": [_trial(c) for c in plan.pruned],
        "tensorboard": [
            {"kind": c.kind, "name": c.name, "action": c.action.name.lower(), "diff": list(c.drift)}
            for c in plan.support
        ],
        "summary": plan.summary,
        "changes": plan.has_changes,
        "requires": list(plan.requires),
        **({"search": dict(plan.search)} if plan.search else {}),
    }


def _number(x: float | None) -> float | str | None:
    """JSON has no NaN or infinity: those are given as strings ("nan", "inf")."""
    return x if x is None or math.isfinite(x) else str(x)


def trial_status_to_json(t: TrialStatus) -> dict[str, Any]:
    """One row of `status -o json`; `metric` is the value that ranks the trial (null: none yet)."""
    out: dict[str, Any] = {
        "name": t.name, "id": t.trial_id, "params": dict(t.params), "state": t.state,
        "metric": _number(t.metric), "latest": _number(t.latest), "best": _number(t.best), "step": t.step,
        "rank": t.rank, "top": t.top,
    }
    if t.note:
        out["note"] = t.note
    if t.failure:
        out["failure"] = t.failure
    return out


def _notes(notes: Sequence[str]) -> None:
    """How the metrics were read, when the user can make it better: on stderr, so stdout stays one document."""
    for note in notes:
        print(f"Note: {note}", file=sys.stderr)


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


class _Silent:
    def done(self, change: Change, error: str | None) -> None:
        pass

    def running(self, trials: Sequence[RunningTrial], *, finished: int, queued: int) -> None:
        pass


class JsonView:
    """Exactly one JSON document per command on stdout, errors included, so scripts can parse it.

    Each method records its part; `finish` prints the document. An apply's
    document holds the plan (or the prune selection) it carried out.
    """

    redraws = False

    def __init__(self) -> None:
        self._doc: Any = None
        self._section = ""

    def _set(self, doc: Any, section: str = "") -> None:
        self._doc, self._section = doc, section

    def plan(self, plan: Plan, *, saved_to: str | None = None, apply_command: str | None = None) -> None:
        self._set({**plan_to_json(plan), "saved_to": saved_to, "apply_command": apply_command}, "plan")

    @contextmanager
    def applying(self, plan: Plan) -> Iterator[Progress]:
        yield _Silent()

    def applied(self, plan: Plan, result: ApplyResult, *, logs: str | None = None,
                look_command: str | None = None) -> None:
        doc: dict[str, Any] = {
            "sweep": plan.sweep,
            "added": result.added,
            "changed": result.changed,
            "destroyed": result.destroyed,
            "errors": result.errors,
            "removed": result.removed,
        }
        if logs:
            doc["logs"] = logs
        if self._section:
            doc[self._section] = self._doc
        self._set(doc)

    def confirm(self, plan: Plan, question: str) -> bool:
        raise SweepctlError(
            "-o json cannot ask for confirmation", hint="add --auto-approve, or use the default text output"
        )

    def message(self, text: str) -> None:
        print(text, file=sys.stderr)

    def manifest(self, obj: dict[str, Any]) -> None:
        self._set(obj)

    def status(self, status: SweepStatus, *, refresh: bool = False) -> None:
        self._set([trial_status_to_json(t) for t in status.trials])
        _notes(status.notes)

    def prune_plan(self, selection: PruneSelection, *, dry_run: bool) -> None:
        s = selection.status
        self._set({
            "sweep": s.sweep, "backend": s.backend, "target": s.target,
            "objective": {"metric": s.metric, "goal": s.goal, "strategy": s.strategy},
            "keep": [trial_status_to_json(t) for t in selection.keep],
            "delete": [trial_status_to_json(t) for t in selection.delete],
            "unscored_kept": [trial_status_to_json(t) for t in selection.unscored_kept],
            "dry_run": dry_run,
        }, "prune")
        _notes(s.notes)

    def report(self, sheet: Sheet) -> None:
        self._set({"path": sheet.path, "tiles": [{"name": t.name, "params": dict(t.params),
                                                  "metric": _number(t.metric), "top": t.top, "image": t.has_image,
                                                  "curve": t.has_curve}
                                                 for t in sheet.tiles]})
        _notes(sheet.notes)

    def error(self, err: SweepctlError) -> None:
        self._set({"error": {"diagnostics": [d.to_json() for d in err.diagnostics]}})

    def finish(self) -> None:
        if self._doc is not None:
            _emit(self._doc)
            self._doc = None
