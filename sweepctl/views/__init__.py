"""Views render the core's models, for people (rich) or for scripts (JSON).

A view is chosen before anything can fail, so even errors come out in the
requested format. The JSON view prints exactly one document per command,
whatever path the command took.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sweepctl.backends.base import ApplyResult, Progress
    from sweepctl.core.diagnostics import SweepctlError
    from sweepctl.core.plan import Plan
    from sweepctl.metrics.ranking import PruneSelection, SweepStatus
    from sweepctl.metrics.sheet import Sheet

__all__ = ["View", "make_view"]


class View(Protocol):
    # Whether this view can redraw in place (status --watch); JSON prints one document.
    redraws: bool

    def plan(self, plan: Plan, *, saved_to: str | None = None, apply_command: str | None = None) -> None:
        """The plan; `apply_command` applies exactly the plan saved to `saved_to`."""

    def applying(self, plan: Plan) -> AbstractContextManager[Progress]: ...

    def applied(self, plan: Plan, result: ApplyResult, *, logs: str | None = None,
                look_command: str | None = None) -> None:
        """What apply did; `logs` and `look_command` say where to look at a local sweep's results."""

    def confirm(self, plan: Plan, question: str) -> bool: ...

    def status(self, status: SweepStatus, *, refresh: bool = False) -> None: ...

    def prune_plan(self, selection: PruneSelection, *, dry_run: bool) -> None: ...

    def report(self, sheet: Sheet) -> None: ...

    def message(self, text: str) -> None: ...

    def manifest(self, obj: dict[str, Any]) -> None:
        """A Kubernetes object to pipe into kubectl: YAML for people, JSON for scripts."""

    def error(self, err: SweepctlError) -> None: ...

    def finish(self) -> None:
        """The command is over: a view that collects its output prints it now, once."""


def make_view(output: str) -> View:
    if output == "json":
        from sweepctl.views.json import JsonView

        return JsonView()
    from sweepctl.views.human import HumanView

    return HumanView()
