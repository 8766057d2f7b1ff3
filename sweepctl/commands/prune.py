"""`sweepctl prune --keep best=K | --rule median [SPEC]`: keep the best K trials, or stop by the median rule.

The deletes go through the backend's apply, as any plan's do (uid
preconditions, concurrency, progress); the plan also carries the pruned trials'
records, which the backend stores first, so later plans never re-add them.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from sweepctl.commands.apply import execute
from sweepctl.commands.common import Access, paused_gc
from sweepctl.commands.stopping import apply_rule
from sweepctl.commands.target import SweepTarget, find_sweep, require_sweep
from sweepctl.core.space import EarlyStopping
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.core.plan import Action, Change, Observed, Plan, fingerprint
from sweepctl.metrics.ranking import PruneSelection, default_strategy, parse_keep, pruned_record, select_for_prune
from sweepctl.metrics.sources import sweep_status
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, spec_path: Path | None, sweep: str | None, access: Access, keep: str | None,
        strategy: str | None, include_unscored: bool, auto_approve: bool, dry_run: bool, tensorboard_url: str | None,
        rule: str | None = None) -> int:
    if (keep is None) == (rule is None):
        raise SweepctlError("prune needs exactly one of --keep best=K and --rule median",
                            hint="--keep best=3 keeps the 3 best trials; --rule median stops the trials that the "
                            "median rule stops (settings from the spec's earlyStopping)")
    target = find_sweep(spec_path, sweep, access)
    backend = target.backend
    observed = backend.observe(target.sweep)
    require_sweep(target, observed)
    if rule is not None:
        return _by_rule(view, target, observed, access, auto_approve=auto_approve, dry_run=dry_run,
                        tensorboard_url=tensorboard_url)
    assert keep is not None
    k = parse_keep(keep)
    with paused_gc():
        status = sweep_status(backend, target.sweep, metric=target.metric, goal=target.goal,
                              strategy=strategy or default_strategy(target.goal), keep=k,
                              tensorboard_url=tensorboard_url, observed=observed, source=target.source)
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


def _by_rule(view: View, target: SweepTarget, observed: Observed, access: Access, *, auto_approve: bool,
             dry_run: bool, tensorboard_url: str | None) -> int:
    """Apply the median rule once: stop (prune, with the reason) the unfinished trials it stops."""
    rule = (target.spec.early_stopping if target.spec else None) or EarlyStopping()
    outcome = apply_rule(sweep=target.sweep, backend=target.backend, spec=target.spec, metric=target.metric,
                         goal=target.goal, rule=rule, observed=observed, tensorboard_url=tensorboard_url)
    reasons = {s.name: s.reason(target.metric) for s in outcome.stops}
    live = outcome.status.live
    selection = PruneSelection(
        status=outcome.status, keep=tuple(t for t in live if t.name not in reasons),
        delete=tuple(replace(t, note=reasons[t.name]) for t in live if t.name in reasons), unscored_kept=(),
        include_unscored=False,
        rule=f"the median rule (afterStep {rule.after_step}, minTrials {rule.min_trials})")
    view.prune_plan(selection, dry_run=dry_run)
    if dry_run or outcome.plan is None:
        return 0
    if not auto_approve and not view.confirm(outcome.plan, f"Do you want to stop these {len(outcome.stops)} trials?"):
        raise SweepctlError("Prune cancelled.", hint="nothing was changed")
    return execute(view, outcome.plan, target.backend, access)
