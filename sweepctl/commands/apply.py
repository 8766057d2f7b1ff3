"""`sweepctl apply [PLAN|SPEC]`: carry out a saved plan, or plan, confirm and apply."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace as with_fields
from pathlib import Path

from sweepctl.backends.base import Backend
from sweepctl.commands.common import (Access, backend_for, check_fresh, check_target, command_line, make_plan, read_spec,
                                      spec_of)
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import Plan
from sweepctl.core.spec import Spec
from sweepctl.views import View
from sweepctl.workspace import DEFAULT_PLAN, is_saved_plan, last_sweep, read_plan, remember_sweep

__all__ = ["run", "execute"]


def run(view: View, *, target: Path | None, access: Access, auto_approve: bool, max_trials: int,
        replace: list[str], replace_drifted: bool, revive: Sequence[str] = (), wait: bool = False,
        interval: float = 5.0, tensorboard_url: str | None = None) -> int:
    if wait:
        if target is None or is_saved_plan(target) or replace or replace_drifted or revive:
            raise SweepctlError("--wait plans and applies again and again from a spec, without other flags",
                                hint="sweepctl apply SPEC --wait")
        from sweepctl.commands import converge

        return converge.run(view, spec_path=target, access=access, auto_approve=auto_approve,
                            max_trials=max_trials, interval=interval, tensorboard_url=tensorboard_url)
    if target is None and revive:
        # Bring back a pruned trial of the last plan's or apply's sweep: plan afresh from its spec.
        last = last_sweep()
        if not last or not last.spec_path:
            raise SweepctlError("--revive: no spec given, and no plan or apply was made here",
                                hint="pass the spec: sweepctl apply SPEC --revive TRIAL")
        target = Path(last.spec_path)
    path = target or DEFAULT_PLAN
    if target is None or is_saved_plan(path):
        if replace or replace_drifted or revive:
            raise SweepctlError("--replace and --revive work when planning; a saved plan is applied exactly as it "
                                "was made", hint="pass the spec instead: sweepctl apply SPEC --replace TRIAL")
        plan = read_plan(path)
        spec = spec_of(plan)
        backend = backend_for(spec, with_fields(access, backend=plan.backend))
        check_target(plan, backend)
        with backend.lock(plan.sweep, command="apply", timeout=access.lock_timeout):
            check_fresh(plan, backend, tensorboard_url=tensorboard_url)
            # What was missing when the plan was made may be there now, or the other way round.
            plan = with_fields(plan, requires=tuple(backend.requirements(spec)))
            return execute(view, plan, backend, access, spec=spec)
    spec = read_spec(path, max_trials=max_trials)
    backend = backend_for(spec, access)
    with backend.lock(spec.name, command="apply", timeout=access.lock_timeout):  # planned and applied under it
        return _plan_and_apply(view, spec, backend, access, auto_approve=auto_approve, replace=replace,
                               replace_drifted=replace_drifted, revive=revive, tensorboard_url=tensorboard_url)


def _plan_and_apply(view: View, spec: Spec, backend: Backend, access: Access, *, auto_approve: bool,
                    replace: list[str], replace_drifted: bool, revive: Sequence[str],
                    tensorboard_url: str | None) -> int:
    plan = make_plan(spec, backend, replace=replace, replace_drifted=replace_drifted, revive=revive,
                     tensorboard_url=tensorboard_url)
    view.plan(plan)
    if not plan.has_changes:
        backend.record_hparams(spec, plan)  # the trials' states since the last apply, for the HParams dashboard
        return 0
    plan.check_requirements()
    if not auto_approve and not view.confirm(plan, "Do you want to perform these actions?"):
        raise SweepctlError("Apply cancelled.", hint="nothing was changed")
    return execute(view, plan, backend, access, spec=spec)


def execute(view: View, plan: Plan, backend: Backend, access: Access, *, spec: Spec | None = None) -> int:
    """Apply a plan with live progress; non-zero when any change failed.

    With the plan's spec, the sweep's HParams summaries are brought up to the plan first.
    """
    plan.check_requirements()
    remember_sweep(plan)  # first: `status` and `prune` without a spec, in another terminal, act on this sweep
    if spec is not None:
        backend.record_hparams(spec, plan)
    with view.applying(plan) as progress:
        result = backend.apply(plan, progress=progress)
    logs = None if plan.destroy else backend.local_logs(plan.sweep)
    look = command_line("tensorboard", os.path.relpath(plan.spec_path), access=access) if logs and plan.spec_path \
        else None
    view.applied(plan, result, logs=str(logs) if logs else None, look_command=look)
    return 1 if result.errors else 0
