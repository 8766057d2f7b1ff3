"""Where a backend's trial metrics come from: event files here, or the sweep's TensorBoard.

This is the only module of the package that knows the backends; it observes
the sweep once and reads every live trial's series.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sweepctl.backends.base import Backend
from sweepctl.core.manifests import TRIAL
from sweepctl.core.plan import Observed
from sweepctl.metrics.events import RunData
from sweepctl.metrics.ranking import SweepStatus, build_status

__all__ = ["read_metrics", "sweep_status"]


def read_metrics(backend: Backend, sweep: str, names: Collection[str], tags: Collection[str], *,
                 tensorboard_url: str | None = None, image_tag: str | None = None,
                 required: bool = True) -> dict[str, RunData]:
    """Each named trial's series of `tags` (and latest `image_tag` picture), by trial name.

    With required=False, a TensorBoard that cannot be reached (still starting,
    say) leaves every trial without a metric instead of failing."""
    if backend.name == "local":
        return _read_local(backend, sweep, names, tags, image_tag=image_tag)
    from sweepctl.metrics import tensorboard

    if tensorboard_url:
        fetch, where = tensorboard.url_fetch(tensorboard_url), tensorboard_url
    else:
        fetch, where = _proxy_fetch(backend, sweep)
    return tensorboard.read_runs(fetch, names, tags, where=where, image_tag=image_tag, required=required)


def _read_local(backend: Any, sweep: str, names: Collection[str], tags: Collection[str], *,
                image_tag: str | None) -> dict[str, RunData]:
    """The trials' event files, resuming from what the last command read.

    The cache sits in the state folder beside the sweeps (`cache/<sweep>/`),
    not in the sweep's own folder, which only apply writes. Reads that fetch
    pictures (the report) go without it: it keeps scalars only.
    """
    from sweepctl.metrics import cache, events

    log_dirs = {n: backend.log_dir(sweep, n) for n in names}
    if image_tag:
        return events.read_runs(log_dirs, tags, image_tag=image_tag)[0]
    where = cache.cache_file(backend.state_dir / "cache" / sweep, tags)
    previous = cache.load(where, tags)
    runs, reads = events.read_runs(log_dirs, tags, previous=previous)
    if reads != previous:
        cache.save(where, tags, reads)
    return runs


def _proxy_fetch(backend: Any, sweep: str) -> tuple[Any, str]:
    """TensorBoard through the API server's service proxy, with the cluster's credentials."""
    from sweepctl.backends.kubernetes import ApiError
    from sweepctl.metrics.tensorboard import FetchError

    cluster, ns = backend.cluster, backend.namespace
    # The Service of manifests.tensorboard_name, by its port's name.
    base = f"/api/v1/namespaces/{ns}/services/{sweep}-tensorboard:http/proxy/"

    def fetch(path: str, query: list[tuple[str, str]]) -> bytes:
        try:
            return cluster.request_bytes("GET", base + path, query=query)
        except ApiError as err:
            raise FetchError(str(err), status=err.status) from None

    return fetch, f"{cluster.server}{base}"


def sweep_status(backend: Backend, sweep: str, *, metric: str, goal: str, strategy: str, keep: int,
                 tensorboard_url: str | None = None, observed: Observed | None = None,
                 metrics_required: bool = True) -> SweepStatus:
    """Observe the sweep, read its live trials' metric, and rank them.

    `status` shows states even while the sweep's TensorBoard starts
    (metrics_required=False); prune must not rank trials it cannot score."""
    observed = observed or backend.observe(sweep)
    names = [o.name for o in observed.objects if TRIAL in o.labels]
    runs = read_metrics(backend, sweep, names, [metric], tensorboard_url=tensorboard_url,
                        required=metrics_required) if names else {}
    return build_status(sweep=sweep, backend=backend.name, target=backend.target, metric=metric, goal=goal,
                        strategy=strategy, keep=keep, observed=observed,
                        series={n: r.scalars[metric] for n, r in runs.items()})
