"""A sweep's history, read through its backend: what random and TPE search propose from.

Every trial the sweep has (any state, with the objective as `status` ranks it)
and every trial pruned from it (with the value and step recorded when it was
pruned or stopped). Reading it is I/O; `core.search` turns it into trials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweepctl.core.manifests import TRIAL
from sweepctl.core.plan import PRUNED, Observed
from sweepctl.core.search import PastTrial, Selection, select, tpe_history
from sweepctl.core.spec import Spec
from sweepctl.metrics.ranking import default_strategy

if TYPE_CHECKING:
    from sweepctl.metrics.sources import RunSource  # the module only when status is read

__all__ = ["read_history", "select_trials", "history_digest"]


def read_history(backend: RunSource, spec: Spec, observed: Observed, *, values: bool = True,
                 tensorboard_url: str | None = None) -> list[PastTrial]:
    """Every live and pruned trial of the sweep; `values=False` skips reading metrics (random search)."""
    if not values:
        live = [PastTrial(name=o.name, params=o.params, state=o.state) for o in observed.objects if TRIAL in o.labels]
        pruned = [PastTrial(name=n, params=rec.get("params") or {}, state=PRUNED) for n, rec in observed.pruned.items()]
        return live + [p for p in pruned if p.name not in {t.name for t in live}]
    from sweepctl.metrics.sources import sweep_status

    status = sweep_status(backend, spec.name, metric=spec.metric, goal=spec.goal,
                          strategy=default_strategy(spec.goal), keep=0, tensorboard_url=tensorboard_url,
                          observed=observed, source=spec.metric_source)
    return [PastTrial(name=t.name, params=t.params, state=t.state, value=t.metric, step=t.step)
            for t in status.trials]


def select_trials(spec: Spec, backend: RunSource, observed: Observed, *, tensorboard_url: str | None = None) -> Selection:
    """The trials the spec wants now, given the sweep's history as the backend shows it."""
    return select(spec, read_history(backend, spec, observed, values=spec.search.adaptive,
                                     tensorboard_url=tensorboard_url))


def history_digest(spec: Spec, backend: RunSource, observed: Observed, *, tensorboard_url: str | None = None) -> str:
    """The digest of the history a TPE plan of `spec` proposes from, as it is now."""
    return tpe_history(spec, read_history(backend, spec, observed, tensorboard_url=tensorboard_url))
