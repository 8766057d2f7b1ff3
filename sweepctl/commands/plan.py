"""`sweepctl plan SPEC`: show what apply would do, and save it for `apply`."""

from __future__ import annotations

from pathlib import Path

from sweepctl.commands.common import Access, backend_for, command_line, make_plan, read_spec
from sweepctl.views import View
from sweepctl.workspace import DEFAULT_PLAN, save_plan

__all__ = ["run"]


def run(view: View, *, spec_path: Path, access: Access, out: Path, max_trials: int,
        replace: list[str], replace_drifted: bool, detailed_exitcode: bool,
        tensorboard_url: str | None = None) -> int:
    spec = read_spec(spec_path, max_trials=max_trials)
    plan = make_plan(spec, backend_for(spec, access), replace=replace, replace_drifted=replace_drifted,
                     tensorboard_url=tensorboard_url)
    save_plan(plan, out)
    # A saved plan names its backend; the flags that reach the same place must be given again.
    apply = command_line("apply", *([] if out == DEFAULT_PLAN else [out]), access=Access(
        context=access.context, namespace=access.namespace, state_dir=access.state_dir))
    view.plan(plan, saved_to=str(out), apply_command=apply)
    return 2 if detailed_exitcode and plan.has_changes else 0
