"""Machine-readable views: the same models as the human view, as JSON on stdout."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sweepctl.backends.base import ApplyResult, Progress, RunningTrial
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import Action, Change, Plan

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
        "pruned": [],
        "tensorboard": [
            {"kind": c.kind, "name": c.name, "action": c.action.name.lower(), "diff": list(c.drift)}
            for c in plan.support
        ],
        "summary": plan.summary,
        "changes": plan.has_changes,
    }


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


class _Silent:
    def done(self, change: Change, error: str | None) -> None:
        pass

    def running(self, trials: Sequence[RunningTrial], *, finished: int, queued: int) -> None:
        pass


class JsonView:
    """One JSON document per command on stdout; errors too, so scripts can parse them."""

    def plan(self, plan: Plan, *, saved_to: str | None = None) -> None:
        _emit({**plan_to_json(plan), "saved_to": saved_to})

    @contextmanager
    def applying(self, plan: Plan) -> Iterator[Progress]:
        yield _Silent()

    def applied(self, plan: Plan, result: ApplyResult) -> None:
        _emit(
            {
                "sweep": plan.sweep,
                "added": result.added,
                "changed": result.changed,
                "destroyed": result.destroyed,
                "errors": result.errors,
            }
        )

    def confirm(self, plan: Plan, question: str) -> bool:
        raise SweepctlError(
            "-o json cannot ask for confirmation", hint="add --auto-approve, or use the default text output"
        )

    def message(self, text: str) -> None:
        print(text, file=sys.stderr)

    def error(self, err: SweepctlError) -> None:
        _emit({"error": {"diagnostics": [d.to_json() for d in err.diagnostics]}})
