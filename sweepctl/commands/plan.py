"""`sweepctl plan SPEC`: show what apply would do, and save it for `apply`."""

from __future__ import annotations

from pathlib import Path

from sweepctl.commands.common import Access, backend_for, make_plan, read_spec, save_plan
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, spec_path: Path, access: Access, out: Path, max_trials: int,
        replace: list[str], replace_drifted: bool, detailed_exitcode: bool,
        tensorboard_url: str | None = None) -> int:
    spec = read_spec(spec_path, max_trials=max_trials)
    plan = make_plan(spec, backend_for(spec, access), replace=replace, replace_drifted=replace_drifted,
                     tensorboard_url=tensorboard_url)
    save_plan(plan, out)
    view.plan(plan, saved_to=str(out))
    return 2 if detailed_exitcode and plan.has_changes else 0
