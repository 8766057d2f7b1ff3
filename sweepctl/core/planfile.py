"""Saved plans: a plan written to disk by `plan`, applied later by `apply FILE`.

The file carries a format version, the spec's digest and path, the target and
the fingerprint of what the plan saw, so apply can refuse a plan that no longer
describes the world.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

import orjson

from sweepctl import __version__
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import Action, Change, Plan

__all__ = ["FORMAT_VERSION", "dumps", "loads"]

FORMAT_VERSION = 1


def _changes(changes: tuple[Change, ...]) -> list[dict[str, Any]]:
    # Only what apply acts on: unchanged trials are no part of a saved plan.
    return [{**asdict(c), "action": c.action.value} for c in changes if c.action is not Action.NOOP]


def dumps(plan: Plan) -> bytes:
    data = {**{f.name: getattr(plan, f.name) for f in fields(plan)},
            "trials": _changes(plan.trials), "support": _changes(plan.support)}
    return orjson.dumps({"format_version": FORMAT_VERSION, "sweepctl_version": __version__, "plan": data})


def _change(data: dict[str, Any]) -> Change:
    return Change(**{**data, "action": Action(data["action"]), "drift": tuple(data["drift"])})


def loads(text: str, *, source: str) -> Plan:
    """Parse a saved plan; a foreign or newer file is refused with a plain sentence."""
    try:
        doc = json.loads(text)
        if doc.get("format_version") != FORMAT_VERSION:
            raise SweepctlError(
                f"{source}: saved plan format {doc.get('format_version')!r} is not {FORMAT_VERSION}",
                hint=f"it was written by sweepctl {doc.get('sweepctl_version', '?')}; run `sweepctl plan` again",
            )
        data = doc["plan"]
        return Plan(
            **{
                **data,
                "trials": tuple(_change(c) for c in data["trials"]),
                "support": tuple(_change(c) for c in data["support"]),
            }
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise SweepctlError(
            f"{source} is not a saved sweepctl plan ({err.__class__.__name__}: {err})",
            hint="pass a file written by `sweepctl plan -out FILE`, or a spec",
        ) from None
