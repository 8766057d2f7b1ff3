"""`sweepctl report [SPEC] --out sweep.png`: one picture that shows which settings paint well."""

from __future__ import annotations

from pathlib import Path

from sweepctl.commands.common import Access
from sweepctl.commands.target import find_sweep, require_sweep
from sweepctl.core.manifests import TRIAL
from sweepctl.core.search import FINISHED
from sweepctl.metrics.ranking import build_status, default_strategy, parse_keep
from sweepctl.metrics.sheet import IMAGE_TAG, draw
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, spec_path: Path | None, sweep: str | None, access: Access, out: Path, keep: str,
        strategy: str | None, tensorboard_url: str | None) -> int:
    k = parse_keep(keep)
    target = find_sweep(spec_path, sweep, access)
    backend = target.backend
    observed = backend.observe(target.sweep)
    require_sweep(target, observed)
    names = [o.name for o in observed.objects if TRIAL in o.labels]
    # One read for the ranking, the curves and the pictures, from where status reads the objective.
    ended = [o.name for o in observed.objects if TRIAL in o.labels and o.state in FINISHED]
    runs = backend.read_runs(target.sweep, names, [target.metric], image_tag=IMAGE_TAG,
                             tensorboard_url=tensorboard_url, source=target.source, explain=ended) if names else {}
    status = build_status(sweep=target.sweep, backend=backend.name, target=backend.target, metric=target.metric,
                          goal=target.goal, strategy=strategy or default_strategy(target.goal), keep=k,
                          observed=observed, series={n: r.scalars[target.metric] for n, r in runs.items()},
                          notes=backend.notes if names else ())
    view.report(draw(status, runs, out))
    return 0
