"""`sweepctl apply [PLAN|SPEC]`: carry out a saved plan, or plan, confirm and apply."""

from __future__ import annotations

from dataclasses import replace as with_fields
from pathlib import Path

from sweepctl.commands.common import (
    DEFAULT_PLAN,
    Access,
    backend_for,
    check_fresh,
    is_saved_plan,
    make_plan,
    read_plan,
    read_spec,
    spec_of,
)
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import Plan
from sweepctl.backends.base import Backend
from sweepctl.views import View

__all__ = ["run", "execute"]


def run(view: View, *, target: Path | None, access: Access, auto_approve: bool, max_trials: int,
        replace: list[str], replace_drifted: bool) -> int:
    path = target or DEFAULT_PLAN
    if target is None or is_saved_plan(path):
        if replace or replace_drifted:
            raise SweepctlError("--replace works when planning; a saved plan is applied exactly as it was made",
                                hint="pass the spec instead: sweepctl apply SPEC --replace TRIAL")
        plan = read_plan(path)
        backend = backend_for(spec_of(plan), with_fields(access, backend=plan.backend))
        check_fresh(plan, backend)
        return execute(view, plan, backend)
    spec = read_spec(path, max_trials=max_trials)
    backend = backend_for(spec, access)
    plan = make_plan(spec, backend, replace=replace, replace_drifted=replace_drifted)
    view.plan(plan)
    if not plan.has_changes:
        return 0
    if not auto_approve and not view.confirm(plan, "Do you want to perform these actions?"):
        raise SweepctlError("Apply cancelled.", hint="nothing was changed")
    return execute(view, plan, backend)


def execute(view: View, plan: Plan, backend: Backend) -> int:
    """Apply a plan with live progress; non-zero when any change failed."""
    with view.applying(plan) as progress:
        result = backend.apply(plan, progress=progress)
    view.applied(plan, result)
    return 1 if result.errors else 0
