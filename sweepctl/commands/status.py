"""`sweepctl status [SPEC]`: every trial with its state and metric, ranked, the best K marked."""

from __future__ import annotations

import time
from pathlib import Path

from sweepctl.commands.common import Access, paused_gc
from sweepctl.commands.target import find_sweep, require_sweep
from sweepctl.core.diagnostics import SweepctlError
from sweepctl.metrics.ranking import default_strategy, parse_keep
from sweepctl.metrics.sources import sweep_status
from sweepctl.views import View

__all__ = ["run"]


def run(view: View, *, spec_path: Path | None, sweep: str | None, access: Access, keep: str, strategy: str | None,
        tensorboard_url: str | None, watch: bool, interval: float) -> int:
    k = parse_keep(keep)
    if watch and not view.redraws:
        raise SweepctlError("--watch redraws a table for people; -o json prints one document",
                            hint="run `sweepctl status -o json` as often as you need")
    target = find_sweep(spec_path, sweep, access)
    refresh = False
    while True:
        with paused_gc():
            observed = target.backend.observe(target.sweep)
            require_sweep(target, observed)
            status = sweep_status(target.backend, target.sweep, metric=target.metric, goal=target.goal,
                                  strategy=strategy or default_strategy(target.goal), keep=k,
                                  tensorboard_url=tensorboard_url, observed=observed, metrics_required=False,
                                  source=target.source)
        view.status(status, refresh=refresh)
        if not watch:
            return 0
        refresh = True
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return 0
