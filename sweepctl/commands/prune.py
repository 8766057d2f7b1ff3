"""`sweepctl prune --keep best=K [SPEC]`: keep the best K trials by the objective, delete the rest.

The deletes go through the backend's apply, as any plan's do (uid
preconditions, concurrency, progress); the plan also carries the pruned trials'
records, which the backend stores first, so later plans never re-add them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sweepctl.commands.apply import execute
from sweepctl.commands.common import Access, paused_gc
from sweepctl.commands.target import find_sweep, require_sweep
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import Action, Change, Plan, fingerprint
from sweepctl.metrics.ranking import default_strategy, parse_keep, pruned_record, select_for_prune
from sweepctl.metrics.sources import sweep_status
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, spec_path: Path | None, sweep: str | None, access: Access, keep: str, strategy: str | None,
        include_unscored: bool, auto_approve: bool, dry_run: bool, tensorboard_url: str | None) -> int:
    k = parse_keep(keep)
    target = find_sweep(spec_path, sweep, access)
    backend = target.backend
    observed = backend.observe(target.sweep)
    require_sweep(target, observed)
    with paused_gc():
        status = sweep_status(backend, target.sweep, metric=target.metric, goal=target.goal,
                              strategy=strategy or default_strategy(target.goal), keep=k,
                              tensorboard_url=tensorboard_url, observed=observed)
    selection = select_for_prune(status, include_unscored=include_unscored)
    view.prune_plan(selection, dry_run=dry_run)
    if dry_run or not selection.delete:
        return 0
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    plan = Plan(
        sweep=target.sweep, namespace=backend.namespace, backend=backend.name, target=backend.target,
        spec_digest=target.spec.digest if target.spec else "", fingerprint=fingerprint(observed),
        trials=tuple(Change(action=Action.DELETE, kind=t.kind, name=t.name, trial_id=t.trial_id, params=t.params,
                            state=t.state, uid=t.uid) for t in selection.delete),
        spec_path=os.path.abspath(target.spec.source) if target.spec else None,
        prune={t.name: pruned_record(t, metric=target.metric, at=at) for t in selection.delete},
    )
    if not auto_approve and not view.confirm(plan, f"Do you want to delete these {len(selection.delete)} trials?"):
        raise SweepctlError("Prune cancelled.", hint="nothing was changed")
    return execute(view, plan, backend, access)
