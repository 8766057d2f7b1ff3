"""Saved plans: a plan written to disk by `plan`, applied later by `apply FILE`.

The file carries a format version, the spec's digest and path, the target and
the fingerprint of what the plan saw, so apply can refuse a plan that no longer
describes the world.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from sweepctl import __version__
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import Action, Change, Plan

__all__ = ["FORMAT_VERSION", "dumps", "loads"]

FORMAT_VERSION = 1


def dumps(plan: Plan) -> str:
    data = asdict(plan)
    for group in ("trials", "support"):
        for change in data[group]:
            change["action"] = change["action"].value
    return json.dumps({"format_version": FORMAT_VERSION, "sweepctl_version": __version__, "plan": data}, indent=1)


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
