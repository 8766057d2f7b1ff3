"""`sweepctl destroy SPEC`: remove every object of the sweep, after a plan and a yes."""

from __future__ import annotations

from pathlib import Path

from sweepctl.commands.apply import execute
from sweepctl.commands.common import Access, backend_for, make_plan, read_spec
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, spec_path: Path, access: Access, auto_approve: bool) -> int:
    spec = read_spec(spec_path, max_trials=10**9)  # destroying is never refused for size
    backend = backend_for(spec, access)
    with backend.lock(spec.name, command="destroy", timeout=access.lock_timeout):
        plan = make_plan(spec, backend, destroy=True)
        view.plan(plan)
        if not plan.has_changes:
            return 0
        if not auto_approve and not view.confirm(plan, f"Do you really want to destroy sweep {spec.name}?"):
            raise SweepctlError("Destroy cancelled.", hint="nothing was changed")
        return execute(view, plan, backend, access)
