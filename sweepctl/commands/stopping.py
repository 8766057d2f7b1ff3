"""Early stopping, read through the backend: which unfinished trials the median rule stops now.

Shared by `prune --rule median` and `apply --wait`. The curves of every trial,
pruned ones included (their logs stay), come from the same source as `status`;
the rule itself is pure (core.stopping). Stopping is pruning: the plan deletes
the trials and records each with its reason and step, so it is never re-proposed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from sweepctl.backends.base import Backend
from sweepctl.core.manifests import TRIAL
from sweepctl.core.objective import EVENT_FILES
from sweepctl.core.plan import Action, Change, Observed, Plan, fingerprint
from sweepctl.core.search import FINISHED
from sweepctl.core.space import EarlyStopping
from sweepctl.core.spec import Spec
from sweepctl.core.stopping import Stop, median_stops
from sweepctl.metrics.ranking import SweepStatus, build_status, default_strategy, pruned_record

__all__ = ["RuleOutcome", "apply_rule"]


@dataclass(frozen=True, kw_only=True)
class RuleOutcome:
    """The sweep's status, the stops the rule decided, and the plan that carries them out (None: none)."""

    status: SweepStatus
    stops: tuple[Stop, ...]
    plan: Plan | None


def apply_rule(*, sweep: str, backend: Backend, spec: Spec | None, metric: str, goal: str, rule: EarlyStopping,
               observed: Observed, keep: int = 3, tensorboard_url: str | None = None) -> RuleOutcome:
    """Judge every unfinished trial of the sweep by the rule; plan to stop (prune) those it stops."""
    live = [o.name for o in observed.objects if TRIAL in o.labels]
    names = live + [n for n in observed.pruned if n not in set(live)]
    runs = backend.read_runs(sweep, names, [metric], tensorboard_url=tensorboard_url,
                             source=spec.metric_source if spec else EVENT_FILES) if names else {}
    series = {n: r.scalars[metric] for n, r in runs.items()}
    status = build_status(sweep=sweep, backend=backend.name, target=backend.target, metric=metric, goal=goal,
                          strategy=default_strategy(goal), keep=keep, observed=observed,
                          series={n: series[n] for n in live if n in series}, notes=backend.notes if names else ())
    unfinished = [t.name for t in status.live if t.state not in FINISHED]
    stops = tuple(median_stops({n: s.points for n, s in series.items()}, unfinished, goal=goal, rule=rule))
    if not stops:
        return RuleOutcome(status=status, stops=(), plan=None)
    rows = {t.name: t for t in status.live}
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    plan = Plan(
        sweep=sweep, namespace=backend.namespace, backend=backend.name, target=backend.target,
        spec_digest=spec.digest if spec else "", fingerprint=fingerprint(observed),
        trials=tuple(Change(action=Action.DELETE, kind=rows[s.name].kind, name=s.name, trial_id=rows[s.name].trial_id,
                            params=rows[s.name].params, state=rows[s.name].state, uid=rows[s.name].uid)
                     for s in stops),
        spec_path=os.path.abspath(spec.source) if spec else None,
        prune={s.name: {**pruned_record(rows[s.name], metric=metric, at=at), "reason": s.reason(metric),
                        "stopped_at": s.step} for s in stops},
    )
    return RuleOutcome(status=status, stops=stops, plan=plan)
