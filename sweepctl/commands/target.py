"""Which sweep a command without a required spec acts on: `status`, `prune`, `report`.

From a spec, from `--sweep NAME`, or from the last plan or apply here; every
name is checked before it reaches a backend (a folder, a label selector).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sweepctl.backends import open_backend
from sweepctl.backends.base import Backend
from sweepctl.commands.common import Access, backend_for, read_spec
from sweepctl.core.diagnostics import SweepctlError, did_you_mean
from sweepctl.core.objective import EVENT_FILES, MetricSource
from sweepctl.core.plan import Observed
from sweepctl.core.spec import Spec
from sweepctl.workspace import check_sweep_name, last_sweep

__all__ = ["SweepTarget", "find_sweep", "require_sweep"]


@dataclass(frozen=True, kw_only=True)
class SweepTarget:
    """A sweep to read or prune, found from a spec, --sweep NAME, or the last plan or apply.

    `spec` is None when the sweep was named without one; the objective then is
    the default (loss, minimized).
    """

    sweep: str
    backend: Backend
    spec: Spec | None

    @property
    def metric(self) -> str:
        return self.spec.metric if self.spec else "loss"

    @property
    def goal(self) -> str:
        return self.spec.goal if self.spec else "minimize"

    @property
    def source(self) -> MetricSource:
        return self.spec.metric_source if self.spec else EVENT_FILES


def find_sweep(spec_path: Path | None, sweep: str | None, access: Access) -> SweepTarget:
    """The sweep a command without a required spec acts on, or an error that lists the candidates."""
    if sweep is not None:
        check_sweep_name(sweep)
    if spec_path is not None:
        spec = read_spec(spec_path, max_trials=10**9)
        if sweep and sweep != spec.name:
            raise SweepctlError(f"--sweep {sweep} does not match the spec's sweep {spec.name}",
                                hint="pass either the spec or --sweep")
        return SweepTarget(sweep=spec.name, backend=backend_for(spec, access), spec=spec)
    last = last_sweep()
    if last and (sweep is None or sweep == last.sweep):
        spec = None
        if last.spec_path:
            try:
                spec = read_spec(Path(last.spec_path), max_trials=10**9)
            except SweepctlError:
                spec = None  # moved or broken since: the objective falls back to the default
        if spec is not None and spec.name != last.sweep:
            spec = None
        backend = open_backend(access.backend or last.backend, context=access.context,
                               namespace=access.namespace or last.namespace, state_dir=access.state_dir, spec=spec)
        return SweepTarget(sweep=last.sweep, backend=backend, spec=spec)
    backend = open_backend(access.backend or "local", context=access.context, namespace=access.namespace,
                           state_dir=access.state_dir)
    if sweep is not None:
        return SweepTarget(sweep=sweep, backend=backend, spec=None)
    candidates = backend.sweeps()
    raise SweepctlError(
        f"which sweep? No spec was given, and no plan or apply was made here ({backend.target})",
        hint=("pass SPEC or --sweep NAME; sweeps found: " + ", ".join(candidates)) if candidates
        else "pass SPEC or --sweep NAME (no sweep found there; --backend kubernetes looks in the cluster)",
    )


def require_sweep(target: SweepTarget, observed: Observed) -> None:
    """A sweep with nothing at all (no trial, no pruned record) was most likely misnamed."""
    if observed.objects or observed.pruned:
        return
    candidates = [s for s in target.backend.sweeps() if s != target.sweep]
    raise SweepctlError(
        f"sweep {target.sweep} has no trials in {target.backend.target}",
        hint=did_you_mean(target.sweep, candidates) or (
            ("sweeps found: " + ", ".join(candidates)) if candidates else "run `sweepctl apply SPEC` first"),
    )
